"""``dockerboot-wizard sandbox``: try the wizard on a disposable disk, then boot it in QEMU.

Creates the sandbox (``wizard.sandbox``), points ``DOCKER_HOST`` at its
private dockerd and opens the wizard pre-filled with its partition, sample
image and ESP directory (or, with ``--apply-demo``, runs the headless
``apply`` instead).  With ``--boot`` the disk is then booted through rEFInd
to the sample image's login prompt: in a terminal the serial console is
handed to the user (Ctrl-] leaves and powers the VM off); without one the
demo user logs in by itself and runs two commands.  Everything is removed on
exit, also on Ctrl-C, SIGTERM or SIGHUP (a closed terminal), unless
``--keep`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from wizard.cli import apply
from wizard.cli.output import exit_on_signals
from wizard.common.commands import environ
from wizard.common.errors import SandboxError
from wizard.flows.flow import WizardState
from wizard.sandbox import GENERATORS, SAMPLE_KERNEL_OPTIONS, Sandbox
from wizard.settings import config

DEMO_USER = "alice"
"""User the headless demo creates and logs in as."""
DEMO_PASSWORD = "sandbox"
ESCAPE = "\x1d"
"""Ctrl-]: leaves the console (and powers the VM off)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]
               ) -> argparse.ArgumentParser:
    """Add the ``sandbox`` subcommand to the CLI's subparsers."""
    p = sub.add_parser("sandbox", help="try the wizard on a disposable loop-backed disk",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--boot", action="store_true",
                   help="afterwards boot the disk in QEMU through rEFInd without asking "
                        "(in a terminal the sandbox asks; without one it boots only with this)")
    p.add_argument("--keep", action="store_true", help="keep the disk image and ESP at the end")
    p.add_argument("--apply-demo", action="store_true",
                   help="no TUI: run the headless apply with a sample hostname and user")
    p.add_argument("--generator", default="initramfs-tools", choices=GENERATORS,
                   help="initramfs generator inside the sample image")
    p.add_argument("--size", default="8G", help="size of the sparse disk image")
    return p


def _apply_demo(box: Sandbox) -> int:
    """What a user would type: ``dockerboot-wizard apply`` with the sandbox's values."""
    password = box.machine.workdir / "demo-password"
    password.write_text(DEMO_PASSWORD + "\n")
    os.chmod(password, 0o600)
    argv = ["apply", "--label", box.label, "--esp", str(box.esp), "--image", box.image,
            "--hostname", "sandbox-box", "--user", DEMO_USER, "--password-file", str(password),
            "--admin", DEMO_USER,
            "--kernel-options", SAMPLE_KERNEL_OPTIONS, "--yes"]
    print("$ dockerboot-wizard " + " ".join(a if a != str(password) else "…" for a in argv),
          flush=True)
    return apply.run(argv)


def _tui(box: Sandbox, open_tui: Callable[[WizardState], int] | None) -> int:
    """Open the wizard (handed in by the UI layer) pre-filled with the sandbox."""
    if open_tui is None:
        raise SandboxError("the interactive wizard is not available from here",
                           "run `dockerboot-wizard sandbox`, or add --apply-demo")
    return open_tui(WizardState(settings=box.settings()))


def wants_boot(args: argparse.Namespace, ask: Callable[[str], str] | None) -> bool:
    """Whether to boot the applied disk: ``--boot``, else ask when there is a terminal.

    Args:
        args: the parsed ``sandbox`` arguments.
        ask: ``input`` when stdin is a terminal, None otherwise (scripts are never asked).

    """
    if args.boot:
        return True
    if ask is None:
        return False
    try:
        answer = ask("sandbox: boot the sandbox disk in QEMU through rEFInd now? [Y/n] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("", "y", "yes")


def _console(box: Sandbox, users: tuple[str, ...], say: Callable[[str], None]) -> None:
    """Boot to the login prompt: the terminal gets the console, or the demo user logs in."""
    from wizard.sandbox.console import SerialTimeout

    if sys.stdin.isatty():
        who = ", ".join(users) or "(nobody: no user was created in the wizard)"
        say(f"log in as {who} with the password you chose (the headless demo: "
            f"{DEMO_USER} / {DEMO_PASSWORD}); Ctrl-] leaves the console and powers the VM off")
        with box.console() as console:
            console.interact(ESCAPE)
        say("left the console; the VM is off")
        return
    with box.console(echo=sys.stdout) as console:
        try:
            console.login(DEMO_USER, DEMO_PASSWORD)
            user = console.run("id -un")[1]
            hostname = console.run("cat /etc/hostname")[1]
        except SerialTimeout as e:
            raise SandboxError(f"no shell on the sandbox's serial console: {e.problem}",
                               f"read the console above (saved in {console.log})") from e
    print(flush=True)
    say(f"logged in on the serial console: id -un → {user}, /etc/hostname → {hostname}")
    say("the VM is off")


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Create the sandbox, run the wizard on it, optionally boot the result."""
    from wizard import sandbox

    def say(line: str) -> None:
        print(f"sandbox: {line}", flush=True)

    with exit_on_signals(), sandbox.sandbox(generator=args.generator, keep=args.keep,
                                             size=args.size, log=say) as box:
        say(f"ready: partition LABEL={box.label}, image {box.image}, ESP directory {box.esp}")
        say(f"export DOCKER_HOST={box.docker_host}")
        with environ(box.env()):
            code = _apply_demo(box) if args.apply_demo else _tui(box, args.open_tui)
        if code:
            return code
        saved = config.load(box.machine.workdir / "mnt")
        if saved is None:
            say("nothing was applied to the sandbox disk")
            return 0
        say(f"applied: LABEL={saved.label} boots {saved.image}")
        if not wants_boot(args, input if sys.stdin.isatty() else None):
            say("not booted (`dockerboot-wizard sandbox --boot` boots without asking)")
            return 0
        say("booting the sandbox disk in QEMU through rEFInd (no KVM: a minute or two)…")
        _console(box, saved.users, say)
    return 0
