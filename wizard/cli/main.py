"""Headless command line: apply, update, rollback, status, partitions, images (and sandbox).

User mistakes end in one line on stderr and a non-zero exit, never a
traceback; the core raises ``WizardError`` and this module reports it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

import docker.errors
import requests.exceptions

from wizard.cli.precheck import precheck, read_passwords
from wizard.common.errors import ConfigError, WizardError
from wizard.common.events import Event, LogLine, Progress, StepDone, StepStarted
from wizard.common.faults import message, one_line
from wizard.flows import apply as apply_mod
from wizard.flows.flow import WizardState
from wizard.settings import config
from wizard.settings.config import Settings

_T = TypeVar("_T")

EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the headless commands."""
    parser = argparse.ArgumentParser(
        prog="dockerboot-wizard",
        description="Boot this machine straight into a Docker image. "
                    "Without a command the interactive wizard opens.")
    sub = parser.add_subparsers(dest="command")
    ap = sub.add_parser("apply", help="configure a partition to boot an image (headless)")
    ap.add_argument("--label", required=True, help="label of the btrfs partition")
    ap.add_argument("--image", help="NAME:TAG to boot (default: the saved config's)")
    ap.add_argument("--esp", help="ESP directory holding rEFInd (default: the mounted ESP)")
    ap.add_argument("--refind-conf", help="path of refind.conf (default: search the ESP)")
    ap.add_argument("--hostname", help="hostname written to the top layer")
    ap.add_argument("--user", action="append", default=[], help="create this user")
    ap.add_argument("--password-file", action="append", default=[],
                    help="file with the user's password on its first line, or - for stdin")
    ap.add_argument("--admin", action="append", default=[], metavar="NAME",
                    help="make this user an administrator (the image's sudo or wheel group)")
    for flag, text in (("home", "a persistent /home subvolume holding the users' homes"),
                       ("journal", "a persistent journal (/var/log/journal subvolume)"),
                       ("docker-store", "the booted system's docker uses the store it boots "
                                        "from (fstab line and daemon.json)"),
                       ("auto-update", "the booted system builds a new generation by itself "
                                       "when a docker pull or build moves the tag"),
                       ("keep-previous-root", "the boot hook keeps the root of the boot "
                                              "before, read-only, as <rwlayer>.previous "
                                              "for one boot")):
        ap.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None,
                        help=f"{text} (default: on)")
    ap.add_argument("--kernel-options", help="extra kernel parameters, appended")
    ap.add_argument("--toplayer-only", action="store_true",
                    help="reconfigure only the top layer (and the saved config) from the "
                         "saved config: no initramfs build, no boot entry; takes seconds")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    ap.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for name, text in (("partitions", "list btrfs partitions"), ("images", "list local images")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
    from wizard.cli.sandbox import add_parser as add_sandbox_parser
    from wizard.cli.update import add_parsers as add_boot_parsers

    add_boot_parsers(sub)
    add_sandbox_parser(sub)
    return parser


def settings_from_args(args: argparse.Namespace, saved: Settings | None) -> Settings:
    """Merge command-line options over the saved config of the partition."""
    if saved is None and not args.image:
        raise ConfigError(f"no saved config on LABEL={args.label} and no --image",
                          "pass --image NAME:TAG")
    base = saved or Settings(label=args.label, image=args.image)
    admins = (tuple(dict.fromkeys([*base.admins, *args.admin])) if getattr(args, "admin", None)
              else base.admins)
    return replace(base, label=args.label, image=_given(args.image, base.image),
                   esp=_given(args.esp, base.esp),
                   refind_conf=_given(args.refind_conf, base.refind_conf),
                   hostname=_given(args.hostname, base.hostname),
                   kernel_options=_given(args.kernel_options, base.kernel_options),
                   home=_given(getattr(args, "home", None), base.home),
                   journal=_given(getattr(args, "journal", None), base.journal),
                   docker_store=_given(getattr(args, "docker_store", None), base.docker_store),
                   auto_update=_given(getattr(args, "auto_update", None), base.auto_update),
                   keep_previous_root=_given(getattr(args, "keep_previous_root", None),
                                             base.keep_previous_root),
                   admins=admins)


def _given(option: _T | None, current: _T) -> _T:
    """A command-line option's value when it was given, else the ``current`` one."""
    return current if option is None else option


def check_toplayer_only(args: argparse.Namespace) -> None:
    """Refuse options ``--toplayer-only`` would silently not apply (boot entry, initramfs)."""
    given = [opt for opt, key in (("--image", "image"), ("--esp", "esp"),
                                  ("--refind-conf", "refind_conf"),
                                  ("--kernel-options", "kernel_options"),
                                  ("--[no-]keep-previous-root", "keep_previous_root"))
             if getattr(args, key, None) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be used with --toplayer-only (it "
                          "rebuilds no initramfs and writes no boot entry)",
                          "leave them out, or run apply without --toplayer-only")


def print_event(event: Event) -> None:
    """Print one core event as a line of progress."""
    match event:
        case StepStarted(step=step, label=label):
            print(f"==> [{step}] {label}", flush=True)
        case StepDone(step=step, detail=detail):
            print(f"    [{step}] done{': ' + detail if detail else ''}", flush=True)
        case LogLine(text=text):
            print(f"    {text}", flush=True)
        case Progress():
            pass


def confirm(prompt: str) -> bool:
    """Ask on the terminal; refuse (raise) when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        raise ConfigError("refusing to change the system without confirmation",
                          "pass --yes, or run on a terminal")
    return input(f"{prompt} [y/N] ").strip().lower() in ("y", "yes")


def cmd_apply(args: argparse.Namespace) -> int:
    """Preview, show, confirm and apply: ``changes.preview`` then ``changes.apply``."""
    from wizard.disk import partitions
    from wizard.flows import changes

    apply_mod.require_root()
    steps = apply_mod.TOPLAYER_ONLY if args.toplayer_only else apply_mod.EXECUTE_STEPS
    if args.toplayer_only:
        check_toplayer_only(args)
    # Every name and password before any daemon call or mount: a typo costs nothing.
    precheck(args)
    passwords = read_passwords(args.user, args.password_file)
    with partitions.top_level(partitions.find_by_label(args.label), read_only=True) as top:
        saved = config.load(top)
    if args.toplayer_only and saved is None:
        raise ConfigError(f"no saved config on LABEL={args.label}, so there is no setup "
                          "whose top layer --toplayer-only could change",
                          "run a full `dockerboot-wizard apply --label LABEL --image "
                          "NAME:TAG` first")
    request = changes.ApplyRequest(settings=settings_from_args(args, saved),
                                   passwords=passwords, steps=steps)
    preview = changes.preview(request, lock=not args.dry_run)
    print(preview.text)
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    if not args.yes and not confirm("Apply these changes?"):
        print("nothing was changed", file=sys.stderr)
        return EXIT_ERROR
    for event in changes.apply(request, cancel=threading.Event()):
        print_event(event)
    image = preview.plan.settings.image
    if args.toplayer_only:
        print(f"done: the top layer of LABEL={args.label} is updated; the next boot lays it "
              f"over a fresh root of {image}")
        return 0
    print(f"done: the next boot of LABEL={args.label} starts {image}")
    return 0


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
    from wizard.cli.sandbox import cmd_sandbox
    from wizard.cli.update import cmd_status, cmd_update

    handlers = {"apply": cmd_apply, "partitions": cmd_partitions, "images": cmd_images,
                "update": cmd_update, "rollback": cmd_update, "status": cmd_status,
                "sandbox": cmd_sandbox}
    if args.command not in handlers:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handlers[args.command](args)
    except WizardError as e:
        print(f"dockerboot-wizard: {one_line(str(e))}", file=sys.stderr)
        return EXIT_ERROR
    except (OSError, docker.errors.DockerException,
            requests.exceptions.RequestException) as e:
        # A full disk, an I/O error, a read-only ESP, a daemon gone mid-run: one line too.
        print(f"dockerboot-wizard: {message(e)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 — a bug still ends in one line, not a traceback
        if os.environ.get("DOCKERBOOT_WIZARD_DEBUG"):
            raise
        print(f"dockerboot-wizard: {message(e)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dockerboot-wizard: interrupted; nothing after the last finished step changed",
              file=sys.stderr)
        return 130
