"""``dockerboot-wizard try``: boot what the next real boot would boot, in a VM, first.

The default entry's generation (or ``--generation N|previous``), its
command line, the image the hook resolves and the top layer, all from a
copy of the partition (``wizard.trial``): nothing on it is written and its
dockerd keeps running.  In a terminal the serial console is handed over
(Ctrl-] leaves and powers the VM off); ``--headless`` waits for the login
prompt and reports it, ``--json`` as one object; with ``--user`` and
``--password-file`` it also logs in there and reports systemd's failed
units.  The exit status is 0 only when the login prompt came without an
emergency shell (and, with a login, the login worked and no unit failed):
a script can gate a reboot on it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from wizard.cli.output import EXIT_ERROR, print_event
from wizard.cli.precheck import read_passwords
from wizard.common.errors import ConfigError
from wizard.common.events import drive
from wizard.trial import guest, plan, run

ESCAPE = "\x1d"


def add_parser(sub: Any) -> None:
    """Add ``try`` to the CLI's subparsers."""
    p = sub.add_parser("try", help="boot what the next real boot would boot in a VM, over a "
                                   "copy: nothing on the partition changes",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--label", required=True, help="label of the configured btrfs partition")
    p.add_argument("--generation", help="N, or `previous` (default: the default entry's)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--console", action="store_true",
                      help="hand over the serial console (the default on a terminal)")
    mode.add_argument("--headless", action="store_true",
                      help="wait for the login prompt and report it (the default otherwise)")
    p.add_argument("--json", action="store_true", help="headless: print one JSON object")
    p.add_argument("--timeout", type=float, default=900,
                   help="headless: seconds to wait for the login prompt (default 900)")
    p.add_argument("--network", choices=plan.NETWORKS, default="none",
                   help="the VM's network (default: none)")
    p.add_argument("--accel", choices=plan.ACCELS, default="auto",
                   help="auto: KVM where /dev/kvm works, else TCG")
    p.add_argument("--workdir", type=Path, help="where the scratch disk goes (default /var/tmp)")
    p.add_argument("--keep", action="store_true",
                   help="keep the scratch disk and the serial log afterwards")
    p.add_argument("--user", help="headless: log in as NAME at the login prompt and report "
                                  "systemd's failed units (needs --password-file)")
    p.add_argument("--password-file", help="the --user's password on the first line of FILE "
                                           "(- for stdin); never printed")


def credentials(args: argparse.Namespace, headless: bool) -> guest.Credentials | None:
    """The ``--user``'s name and password, read before anything is mounted or booted.

    Raises:
        ConfigError: one of the two flags without the other, with the console,
            or a password file that is missing, unreadable or empty.

    """
    if args.user is None and args.password_file is None:
        return None
    if args.user is None or args.password_file is None:
        raise ConfigError("--user and --password-file go together",
                          "give both, or neither (then the try stops at the login prompt)")
    if not headless:
        raise ConfigError("--user is for the headless try (on the console you log in yourself)",
                          "add --headless (or --json)")
    password = read_passwords([args.user], [args.password_file])[args.user]
    return guest.Credentials(args.user, password)


def cmd_try(args: argparse.Namespace) -> int:
    """Prepare the copy, boot it; the console, or the headless report."""
    headless = args.headless or args.json or not (args.console or sys.stdin.isatty())
    # With --json, stdout holds the one object only: progress goes to stderr.
    out = sys.stderr if args.json else sys.stdout

    def show(event: Any) -> None:
        stdout, sys.stdout = sys.stdout, out
        try:
            print_event(event)
        finally:
            sys.stdout = stdout

    login = credentials(args, headless)
    if headless:
        result = drive(run.run(args.label, args.generation, timeout=args.timeout,
                               network=args.network, accel=args.accel, workdir=args.workdir,
                               keep=args.keep, login=login), show)
        if args.json:
            print(json.dumps(result.to_json(), indent=2))
        else:
            for line in _summary(result):
                print(line)
        return 0 if result.ok else EXIT_ERROR
    prepared = drive(run.prepare(args.label, args.generation, network=args.network,
                                 accel=args.accel, workdir=args.workdir, keep=args.keep), show)
    try:
        print(f"try: the serial console of generation {prepared.target.generation.number}; "
              "Ctrl-] leaves and powers the VM off", flush=True)
        run.console(prepared, ESCAPE)
        print("try: left the console; the VM is off, the partition unchanged")
    finally:
        prepared.cleanup()
        for line in prepared.left:
            print(f"try: {line}", file=sys.stderr)
    return 0


def _summary(result: run.Result) -> list[str]:
    lines = [f"try: {'login prompt reached' if result.login_prompt else 'NO login prompt'}"
             f"{' — EMERGENCY MODE' if result.emergency else ''} after "
             f"{result.seconds:.0f}s ({result.boot_seconds:.0f}s in the VM)"]
    lines += [f"  hook: {line}" for line in result.hook_lines]
    lines += [f"  failed: {line}" for line in result.failed]
    if result.inside is not None:
        lines.append(f"  login: {result.inside.line()}")
    if result.reason:
        lines.append(f"try: NOT OK — {result.reason}")
    return lines
