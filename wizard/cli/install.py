"""``dockerboot-wizard install``: a new machine from a disk, headless (``install.flow``).

It surveys the disk, prints the plan — every partition and filesystem that
would be destroyed, by model, size, label and mountpoint, and what is made —
and asks: for a whole disk the user types the disk's name (or passes
``--yes``), otherwise y/N.  ``--dry-run`` stops after the plan.  Then the
disk, the store, the image, apply (every option of apply's setup) and the
firmware's boot entry; Ctrl-C, SIGTERM or SIGHUP stop the private dockerd
and unmount before exiting.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import replace
from pathlib import Path

from wizard.cli.apply import add_setup_options, settings_from_args
from wizard.cli.output import EXIT_ERROR, exit_on_signals, print_event
from wizard.cli.precheck import read_passwords
from wizard.common.errors import ConfigError
from wizard.disk.disks import Chosen, Target, typed_confirms
from wizard.flows import apply as apply_mod
from wizard.flows import changes
from wizard.install import flow, sizes


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``install`` subcommand to the CLI's subparsers."""
    ap = sub.add_parser("install", help="set up a new machine on a disk, free space or an "
                                        "empty partition (headless)",
                        description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--disk", metavar="DEV",
                       help="the whole disk: a new GPT with an ESP and a btrfs partition "
                            "(everything on it is lost)")
    where.add_argument("--free-space", metavar="DEV",
                       help="a new btrfs partition in the largest free space of this GPT "
                            "disk; its ESP is reused, nothing else changes")
    where.add_argument("--partition", metavar="DEV", help="this empty partition, formatted")
    ap.add_argument("--esp", metavar="DEV",
                    help="the ESP partition (default: the disk's; the new one with --disk)")
    ap.add_argument("--label", required=True, help="label of the new btrfs partition")
    ap.add_argument("--image", required=True, help="NAME:TAG to boot")
    ap.add_argument("--image-archive", metavar="FILE",
                    help="load the image from this file (docker save, OCI layout): no registry")
    ap.add_argument("--for-another-machine", action="store_true",
                    help="the disk will boot another UEFI machine (a disk to move, a VM "
                         "image): this machine's UEFI is not checked, no boot entry written")
    add_setup_options(ap)
    ap.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    ap.add_argument("--yes", action="store_true",
                    help="do not ask (with --disk: instead of typing the disk's name)")


def target_from_args(args: argparse.Namespace) -> Target:
    """The ``Target`` the options name."""
    mode, device = next((m, d) for m, d in (("disk", args.disk), ("free", args.free_space),
                                            ("partition", args.partition)) if d)
    return Target(mode, device, args.label, args.esp, here=not args.for_another_machine)


def cmd_install(args: argparse.Namespace) -> int:
    """Plan, show, confirm, install."""
    apply_mod.require_root()
    archive = Path(args.image_archive) if args.image_archive else None
    if archive is not None and not archive.is_file():
        raise ConfigError(f"--image-archive {archive} is not a file",
                          "give the file `docker save NAME:TAG -o FILE` wrote")
    settings = replace(settings_from_args(args, None), esp=None)  # --esp: a partition here
    settings.validate()
    passwords = read_passwords(args.user, args.password_file)
    target = target_from_args(args)
    disk, plan = flow.plan(target, need=sizes.need(archive), boot_bytes=sizes.BOOT_BYTES)
    chosen = Chosen(target, disk, plan)
    print(chosen.describe())
    print(f"then: the image {settings.image} into a docker store on LABEL={target.label}, "
          "the boot chain on the ESP (the removable path EFI/BOOT where it is free), the "
          "machine set up as `apply` does, and " + (
              f"the firmware's boot entry \"{flow.entry_title(target.label)}\" (efibootmgr, "
              "where EFI variables can be written)" if target.here else
              "no boot entry here (the disk goes to another machine)"))
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    if plan is not None and not _confirmed(chosen, args.yes):
        print("nothing was changed", file=sys.stderr)
        return EXIT_ERROR
    request = changes.ApplyRequest(settings=settings, passwords=passwords)
    with exit_on_signals():
        for event in flow.install(target, plan, request, archive=archive,
                                  cancel=threading.Event()):
            print_event(event)
    print(f"done: LABEL={target.label} boots {settings.image}. " + (
          f"Reboot and choose the disk (or \"dockerboot {target.label}\") in the firmware's "
          "boot menu; the system you installed from stays in that menu to come back to"
          if target.here else "Put the disk in the UEFI machine it is for: its firmware "
          "boots it from the removable path, no boot entry needed"))
    return 0


def _confirmed(chosen: Chosen, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError("refusing to change a disk without confirmation",
                          "run on a terminal, or pass --yes")
    if not chosen.asks_for_name:
        return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")
    target, destroyed = chosen.target, chosen.plan.destroyed if chosen.plan else []
    typed = input(f"Everything on {target.device} is lost"
                  + (f" ({len(destroyed)} partitions)" if destroyed else "")
                  + f". Type {target.device} to go ahead: ").strip()
    if not typed_confirms(chosen, typed):
        raise ConfigError(f"typed {typed!r}, not {target.device}: nothing was changed",
                          f"run again and type {target.device} exactly")
    return True
