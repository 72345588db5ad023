"""Running external commands, and the environment they see.

``run`` is the one way the sandbox, the install and the test lab call a
program: text output captured, a failure raised as ``CommandError`` with
the program's last line (and its whole output as a note).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping

from wizard.common.errors import SandboxError, WizardError


class CommandError(SandboxError):
    """An external command of the sandbox failed; ``output`` holds what it printed."""

    def __init__(self, cmd: list[str], returncode: int, output: str) -> None:
        tail = next((line for line in reversed(output.splitlines()) if line.strip()), "")
        super().__init__(f"`{' '.join(cmd)}` failed (exit {returncode}): {tail}".rstrip(": "),
                         "see the command's output above; run `make setup` if a tool is missing")
        self.output = output
        # pytest and tracebacks show notes: the whole output, for debugging.
        self.add_note(output)


def run(*cmd: str | os.PathLike[str], check: bool = True, timeout: float | None = None,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command (text, captured, checked).

    Args:
        *cmd: program and arguments.
        check: raise on a non-zero exit (``False`` to inspect failures).
        timeout: seconds before ``subprocess.TimeoutExpired``; None waits forever.
        env: the command's environment; None inherits this process's.

    Raises:
        CommandError: the command exited non-zero (with ``check`` on, the default).
        SandboxError: the program does not exist.

    """
    args = [str(c) for c in cmd]
    try:
        return subprocess.run(args, check=check, timeout=timeout, env=env, text=True,
                              capture_output=True)
    except subprocess.CalledProcessError as e:
        raise CommandError(args, e.returncode, f"{e.stdout or ''}\n{e.stderr or ''}") from e
    except FileNotFoundError as e:
        raise SandboxError(f"{args[0]} is not installed",
                           "run `sudo make setup` (installs the sandbox's tools)") from e


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore them.

    The wizard's docker client reads ``DOCKER_HOST``: the sandbox's or
    install's private daemon.
    """
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def output_or(error: type[WizardError], install: str, fix: str,
              *cmd: str | os.PathLike[str]) -> str:
    """The standard output of ``cmd``; a missing program or a failure as ``error``, one line.

    For the product's own tools (the disk's, the ESP's), whose failures are the
    user's to fix: ``install`` is the fix when the program is missing, ``fix``
    when it fails (its last line of stderr is named).
    """
    args = [str(c) for c in cmd]
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise error(f"{args[0]} is not installed", install) from e
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise error(f"`{' '.join(args)}` failed: {tail}", fix)
    return done.stdout
