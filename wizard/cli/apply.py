"""``dockerboot-wizard apply``: configure a partition to boot an image, headless.

It previews, shows the plan, asks (unless ``--yes``) and applies through the
same two calls the TUI's Review makes (``changes.preview``, ``changes.apply``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from wizard.boot import bootloader
from wizard.cli.output import EXIT_ERROR, confirm, guarded, print_event
from wizard.cli.precheck import precheck, read_passwords
from wizard.common.errors import ConfigError
from wizard.flows import apply as apply_mod
from wizard.flows import bootchain, sdboot
from wizard.settings import config
from wizard.settings.config import BOOTLOADERS, Settings

_T = TypeVar("_T")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``apply`` subcommand to the CLI's subparsers."""
    ap = sub.add_parser("apply", help="configure a partition to boot an image (headless)")
    ap.add_argument("--label", required=True, help="label of the btrfs partition")
    ap.add_argument("--image", help="NAME:TAG to boot (default: the saved config's)")
    ap.add_argument("--esp", help="the ESP's directory (default: the mounted ESP)")
    add_setup_options(ap)
    ap.add_argument("--toplayer-only", action="store_true",
                    help="reconfigure only the top layer (and the saved config) from the "
                         "saved config: no initramfs build, no boot entry; takes seconds")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    ap.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def add_setup_options(ap: argparse.ArgumentParser) -> None:
    """The options of what a machine is set up as (bootloader, users, top layer).

    ``install`` takes them too.
    """
    ap.add_argument("--bootloader", choices=BOOTLOADERS,
                    help="grub: the image's signed shim + GRUB on the ESP (Secure Boot on); "
                         "refind: entries in rEFInd's refind.conf (Secure Boot off); default: "
                         "the saved choice, else rEFInd when the ESP has it, else GRUB")
    ap.add_argument("--mixed-distribution", action=argparse.BooleanOptionalAction, default=None,
                    help="add the entries to a distribution's GRUB that did not sign the "
                         "image's kernel (boots only with Secure Boot off; saved)")
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
    ap.add_argument("--default-entry", metavar="yes|no",
                    help="when refind.conf has your own default_selection: yes makes the "
                         "wizard's default entry rEFInd's default (yours commented out, "
                         "backup kept), no keeps yours (saved for later runs)")


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
                   default_entry=_given(getattr(args, "default_entry", None),
                                        base.default_entry),
                   bootloader=_given(getattr(args, "bootloader", None), base.bootloader),
                   mixed_distribution=_given(getattr(args, "mixed_distribution", None),
                                             base.mixed_distribution),
                   admins=admins)


def _given(option: _T | None, current: _T) -> _T:
    """A command-line option's value when it was given, else the ``current`` one."""
    return current if option is None else option


def check_toplayer_only(args: argparse.Namespace) -> None:
    """Refuse options ``--toplayer-only`` would silently not apply (boot entry, initramfs)."""
    given = [opt for opt, key in (("--image", "image"), ("--esp", "esp"),
                                  ("--refind-conf", "refind_conf"),
                                  ("--kernel-options", "kernel_options"),
                                  ("--[no-]keep-previous-root", "keep_previous_root"),
                                  ("--default-entry", "default_entry"),
                                  ("--bootloader", "bootloader"),
                                  ("--[no-]mixed-distribution", "mixed_distribution"))
             if getattr(args, key, None) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be used with --toplayer-only (it "
                          "rebuilds no initramfs and writes no boot entry)",
                          "leave them out, or run apply without --toplayer-only")


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
    answer = "" if args.dry_run else _ask_default_entry(preview.plan, args.yes)
    if answer:
        # The user's own default_selection: their answer (saved), then the plan with it.
        request = replace(request, settings=replace(request.settings, default_entry=answer))
        preview = changes.preview(request, lock=True)
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
    chain = preview.plan.chain
    if chain is not None and chain.loader == "systemd-boot":
        print(f"done: systemd-boot's entries for {image} are in {bootchain.cfg_path(chain)}, "
              f"the kernels in {chain.esp}/EFI/dockerboot; " + sdboot.describe_default(
                  chain.esp, args.label, preview.plan.settings.default_entry))
        return 0
    if chain is not None and chain.custom is not None:
        print(f"done: {bootchain.describe_default(chain, preview.plan.settings.default_entry)}; "
              f"the entries for {image} are in {chain.custom.path}")
        return 0
    if chain is not None:
        print(f"done: the next boot of LABEL={args.label} starts {image} through the "
              f"image's GRUB on {chain.esp}/EFI/dockerboot (also EFI/BOOT where that was free)")
        return 0
    text = bootloader.decode(preview.plan.refind_old or b"")
    print("done: " + bootloader.next_boot(text, preview.plan.settings.default_entry,
                                          args.label, image))
    return 0


def _ask_default_entry(plan: apply_mod.Plan, yes: bool) -> str:
    """"yes" or "no": whether the user's own ``default_selection`` is to be replaced.

    "" when nothing was asked.
    Only when refind.conf has one and no answer was given (``--default-entry``,
    or saved): without a terminal, or with ``--yes``, it refuses in one line.

    Raises:
        ConfigError: the question is open and cannot be asked.

    """
    if plan.settings.default_entry:
        return ""
    if plan.chain is not None and plan.chain.loader == "grub" and plan.chain.custom is not None:
        return _ask(bootchain.describe_default(plan.chain, ""), yes,
                    f"Make the wizard's default entry {plan.chain.custom.distro}'s GRUB default "
                    "(with boot counting; your system stays in its menu)?")
    if plan.refind_old is None:
        return ""
    text = bootloader.decode(plan.refind_old)
    if not bootloader.user_defaults(text):
        return ""
    return _ask(bootloader.describe_default(text, ""), yes,
                "Make the wizard's default entry rEFInd's default (yours is commented out, "
                "a backup kept)?")


def _ask(problem: str, yes: bool, question: str) -> str:
    if yes or not sys.stdin.isatty():
        raise ConfigError(problem, "pass --default-entry yes (the wizard's default entry is the "
                          "default) or --default-entry no (the bootloader boots what yours says)")
    print(problem)
    return "yes" if confirm(question) else "no"


def run(argv: Sequence[str]) -> int:
    """``dockerboot-wizard apply ARGS…`` as typed (the sandbox's headless demo)."""
    parser = argparse.ArgumentParser(prog="dockerboot-wizard")
    add_parser(parser.add_subparsers(dest="command"))
    return guarded(cmd_apply, parser.parse_args(argv))
