"""Headless commands: apply, install, update, rollback, status, partitions, images, try, sandbox.

Each command lives in its own module (``apply``, ``update``, ``sandbox``); this one
builds the parser and dispatches.  User mistakes end in one line on stderr and
a non-zero exit, never a traceback (``output.guarded``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence

from wizard.cli import apply, install, sandbox, trial, update
from wizard.cli.output import EXIT_USAGE, guarded
from wizard.flows.flow import WizardState


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the headless commands."""
    parser = argparse.ArgumentParser(
        prog="dockerboot-wizard",
        description="Boot this machine straight into a Docker image. "
                    "Without a command the interactive wizard opens.")
    sub = parser.add_subparsers(dest="command")
    apply.add_parser(sub)
    install.add_parser(sub)
    for name, text in (("partitions", "list btrfs partitions"), ("images", "list local images")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
    update.add_parsers(sub)
    sandbox.add_parser(sub)
    trial.add_parser(sub)
    return parser


def cmd_partitions(args: argparse.Namespace) -> int:
    """List btrfs partitions from udev."""
    from wizard.disk import partitions

    found = partitions.list_btrfs(probe=True)
    if args.json:
        print(json.dumps([p.to_json() for p in found], indent=2))
    elif not found:
        print("no btrfs partitions found")
    else:
        for p in found:
            mounts = ",".join(m.mountpoint for m in p.mountpoints) or "-"
            print(f"{p.label or '-':20} {p.uuid} {p.device:18} {p.size / 2**30:8.1f}G  {mounts}"
                  + (f"  error: {p.error}" if p.error else ""))
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    """List local images and tags of the daemon."""
    from wizard.store import docker_daemon

    found = docker_daemon.list_images(docker_daemon.connect())
    if args.json:
        print(json.dumps([i.to_json() for i in found], indent=2))
    else:
        for i in found:
            print(f"{i.ref:50} {i.short_id:14} {i.size / 2**20:9.1f}M  {i.created}")
    return 0


def main(argv: Sequence[str] | None = None, *,
         open_tui: Callable[[WizardState], int] | None = None) -> int:
    """Run a command; return the exit code.

    ``open_tui`` opens the interactive wizard with a pre-filled state (the
    UI layer passes it in, so the core never imports the UI); ``sandbox``
    without ``--apply-demo`` needs it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.open_tui = open_tui
    handlers = {"apply": apply.cmd_apply, "install": install.cmd_install,
                "partitions": cmd_partitions, "images": cmd_images,
                "update": update.cmd_update, "rollback": update.cmd_update,
                "status": update.cmd_status, "sandbox": sandbox.cmd_sandbox,
                "try": trial.cmd_try}
    if args.command not in handlers:
        parser.print_help()
        return EXIT_USAGE
    return guarded(handlers[args.command], args)
