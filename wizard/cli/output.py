"""What every headless command shares: exit codes, progress lines, the question, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator

import docker.errors
import requests.exceptions

from wizard.common.errors import ConfigError, WizardError
from wizard.common.events import Event, LogLine, Progress, StepDone, StepStarted
from wizard.common.faults import message, one_line

EXIT_ERROR = 1
EXIT_USAGE = 2


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


def guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command's handler: user mistakes and faults end in one line on stderr."""
    try:
        return handler(args)
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


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into SystemExit, so ``finally`` blocks (daemons, mounts) run."""
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
