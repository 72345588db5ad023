"""Headless commands for a configured partition: ``update``, ``rollback`` and ``status``.

All three start from the partition's saved config (what ``apply`` wrote);
``update`` and ``rollback`` print the plan, ask (unless ``--yes``) and carry
it out in one locked session; ``status`` writes nothing and takes no lock.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from wizard.boot import bootloader
from wizard.boot.status import summary
from wizard.cli.output import EXIT_ERROR, confirm, print_event
from wizard.common.errors import ConfigError
from wizard.settings.config import Settings

PROC_CMDLINE = Path("/proc/cmdline")


def add_parsers(sub: Any) -> None:
    """Add ``update``, ``rollback`` and ``status`` to the CLI's subparsers."""
    up = sub.add_parser("update", help="a new generation for the image the tag points at now "
                                       "(a build only when the kernel or initramfs inputs "
                                       "changed)")
    up.add_argument("--pull", action="store_true", help="docker pull the tag first")
    rb = sub.add_parser("rollback", help="make the previous generation the default again, "
                                         "its image pinned by ID")
    for p in (up, rb):
        p.add_argument("--label", required=True, help="label of the btrfs partition")
        p.add_argument("--esp", help="ESP directory holding rEFInd (default: the saved one)")
        p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    st = sub.add_parser("status", help="what boots, what booted, what is pending")
    st.add_argument("--label", required=True, help="label of the btrfs partition")
    st.add_argument("--json", action="store_true",
                    help="versioned JSON (docs/status-json.md)")


def saved_settings(label: str, esp: str | None = None) -> Settings:
    """The partition's saved config (read-only mount); ``esp`` overrides its ESP.

    Raises:
        ConfigError: the partition has no saved config (never applied).

    """
    from wizard.disk import partitions
    from wizard.settings import config

    with partitions.top_level(partitions.find_by_label(label), read_only=True) as top:
        saved = config.load(top)
    if saved is None:
        raise ConfigError(f"no saved config on LABEL={label}: nothing was applied to it",
                          "run `dockerboot-wizard apply --label LABEL --image NAME:TAG` first")
    return replace(saved, esp=esp) if esp else saved


def cmd_update(args: argparse.Namespace) -> int:
    """``update`` and ``rollback``: plan, show, confirm, execute."""
    from wizard.flows import apply, update

    apply.require_root()
    settings = saved_settings(args.label, args.esp)
    if getattr(args, "pull", False):
        from wizard.store import docker_daemon

        print(f"==> pulling {settings.image}", flush=True)
        docker_daemon.connect().images.pull(settings.image)
    with apply.open_session(settings, lock=not args.dry_run) as session:
        plan = (update.plan_rollback(session) if args.command == "rollback"
                else update.plan_update(session))
        print(plan.text)
        if plan.new is None and not plan.writes_entries:
            return 0
        if args.dry_run:
            print("dry run: nothing was changed")
            return 0
        if not args.yes and not confirm("Go ahead?"):
            print("nothing was changed")
            return EXIT_ERROR
        for event in update.execute(session, plan, cancel=threading.Event()):
            print_event(event)
    new = plan.new
    if new is not None:
        what = (f"generation {new.record.number} ({new.record.image_ref} "
                f"@{(new.record.image_id or '')[7:19]}, kernel {new.record.kernel_version})")
        print("done: " + bootloader.next_boot(bootloader.decode(plan.refind_old),
                                              settings.default_entry, args.label, what))
        if new.record.pinned:
            print(f"the rollback holds until {settings.image} moves to another image, or "
                  "until update is run by hand: the automatic update leaves it alone")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the partition's status (text, or the versioned JSON)."""
    from wizard.flows import update

    out = update.partition_status(saved_settings(args.label), _own_cmdline(args.label))
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print("\n".join(summary(out)))
    return 0


def _own_cmdline(label: str) -> str | None:
    # Inside the booted system /proc/cmdline tells the generation; elsewhere it is noise.
    try:
        text = PROC_CMDLINE.read_text()
    except OSError:
        return None
    return text if f"root=LABEL={label}" in text.split() or f"LABEL={label}" in text else None
