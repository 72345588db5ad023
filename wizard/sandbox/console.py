"""Log in on a booted disk's serial console: QEMU's serial line driven through pexpect.

``booted()`` boots a disk like ``qemu.boot`` (the same QEMU command
line) but with the serial line on QEMU's stdio, a pty that pexpect reads and
writes, and yields a ``Console``: wait for text, log in through the image's
own getty and PAM, run shell commands with their exit status, power off, or
hand the console to the user's terminal (the sandbox demo).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pexpect

from wizard.common.errors import SandboxError
from wizard.sandbox import qemu

TAIL = 3000
"""Characters of the console an error shows."""
LOGIN = r"(?<![Ll]ast )login: "
"""getty's prompt (not the "Last login: …" line of a successful login)."""
PASSWORD = r"[Pp]assword: "
READY = "DBW-LOGGED-IN"
# After the login: a shell set up for scripts.  Nothing echoes, no pager, no
# colours, no 80-column truncation; the marker is typed with an empty quote
# inside so that an echo of the typed line never matches it.
SETUP = ("stty -echo cols 250 rows 50 2>/dev/null; PS1='DBW# ' PS2=''; unset PROMPT_COMMAND; "
         "export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat SYSTEMD_COLORS=0; echo DBW-LOGGED''-IN")
KERNEL_LINE = re.compile(r"^\[ *\d+\.\d{6}\] .*(\n|$)", re.MULTILINE)
"""A kernel log line (``[   32.803433] …``), interleaved with a command's output."""
NUDGE = 30.0
"""Seconds to wait for getty's next prompt before sending a newline to get a fresh one."""


class SerialTimeout(SandboxError, AssertionError):
    """Awaited text did not come on the serial console, or QEMU exited first.

    ``str()`` is problem and fix, then the console's last ``TAIL`` characters (``tail``).
    """

    def __init__(self, problem: str, fix: str, tail: str) -> None:
        super().__init__(problem, fix)
        self.tail = tail

    def __str__(self) -> str:
        return f"{super().__str__()}\n--- the console's last lines ---\n{self.tail}"


class _Log:
    """pexpect's ``logfile_read`` (text from ``expect``, bytes from ``interact``), and ``echo``."""

    def __init__(self, path: Path, echo: TextIO | None) -> None:
        self._file = open(path, "wb")  # closed by Console.close
        self.echo = echo

    def write(self, data: str | bytes) -> None:
        raw = data if isinstance(data, bytes) else data.encode(errors="replace")
        self._file.write(raw)
        if self.echo is not None:
            self.echo.write(raw.decode(errors="replace").replace("\r", ""))
            self.echo.flush()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Console:
    """The serial console of a running QEMU guest (made by ``booted``)."""

    def __init__(self, child: pexpect.spawn[str], log: Path, sink: _Log, deadline: float) -> None:
        self.child = child
        self.log = log
        """Everything the guest printed."""
        self._sink = sink
        self._deadline = deadline
        self.started = time.monotonic()
        """When QEMU started (``time.monotonic``)."""
        self._at_login = False

    @classmethod
    def spawn(cls, cmd: list[str], log: Path, *, timeout: float = 900,
              echo: TextIO | None = None) -> Console:
        """Start ``cmd`` on a pty (``booted`` starts QEMU; tests start a fake getty)."""
        sink = _Log(log, echo)
        try:
            child: pexpect.spawn[str] = pexpect.spawn(
                cmd[0], cmd[1:], encoding="utf-8", codec_errors="replace", dimensions=(50, 250),
                echo=False)
        except BaseException:
            sink.close()
            raise
        child.logfile_read = sink
        return cls(child, log, sink, time.monotonic() + timeout)

    def _fail(self, problem: str) -> SerialTimeout:
        with contextlib.suppress(ValueError):  # already closed
            self._sink.flush()
        tail = self.log.read_text(errors="replace").replace("\r", "")[-TAIL:]
        return SerialTimeout(problem, f"read the console log {self.log}", tail)

    def _wait(self, patterns: list[str], timeout: float, what: str = "") -> int | None:
        """Index of the first pattern seen within ``timeout`` (None: nothing came)."""
        what = what or repr(patterns[0])
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._fail(f"the time for the serial console ran out waiting for {what}")
        i = self.child.expect([*patterns, pexpect.EOF, pexpect.TIMEOUT],
                              timeout=min(timeout, left))
        if i == len(patterns):
            raise self._fail(f"QEMU exited while waiting for {what} on the serial console")
        return None if i == len(patterns) + 1 else i

    def _found(self) -> tuple[str, str, re.Match[str]]:
        """What came before the pattern ``_wait`` last found, its text and its match."""
        before, after, match = self.child.before, self.child.after, self.child.match
        # A regex pattern matched (EOF and TIMEOUT were ruled out): all three are set.
        assert isinstance(before, str) and isinstance(after, str) and isinstance(match, re.Match)
        return before, after, match

    def expect(self, pattern: str, timeout: float = 300, what: str = "") -> str:
        """Wait for the regex ``pattern``; return the text before it plus the match.

        ``what`` names the awaited text in the error (default: the pattern).

        Raises:
            SerialTimeout: not seen within ``timeout`` seconds, or QEMU exited.

        """
        if self._wait([pattern], timeout, what) is None:
            raise self._fail(f"no {what or repr(pattern)} on the serial console "
                             f"within {timeout:.0f}s")
        # A caller that waited for the login prompt itself: login() need not wait again.
        before, after, _ = self._found()
        self._at_login = re.search(LOGIN + "$", after) is not None
        return before + after

    def sendline(self, text: str) -> None:
        """Type ``text`` and a newline on the console."""
        self._at_login = False
        self.child.sendline(text)

    def login(self, user: str, password: str, timeout: float = 600, *,
              prompt_shown: bool = False) -> None:
        """Log in at getty's prompt and set up the shell for ``run``.

        ``prompt_shown``: the caller read the login prompt off ``child`` itself
        (the try waits for several patterns at once), so it is not awaited again.

        Boot messages can interleave with the prompt: when no password
        prompt follows the user name within ``NUDGE`` seconds, a newline asks
        getty for a fresh prompt and the name is typed again.

        Raises:
            SerialTimeout: no login prompt, or no shell, within ``timeout`` seconds.
            SandboxError: the guest refused the user name or password.

        """
        deadline = time.monotonic() + timeout
        if not (self._at_login or prompt_shown):
            self.expect(LOGIN, timeout, "login prompt")
        while True:
            if time.monotonic() > deadline:
                raise self._fail(f"no password prompt for {user} within {timeout:.0f}s")
            self.sendline(user)
            seen = self._wait([PASSWORD, LOGIN], NUDGE, "password prompt")
            if seen == 0:
                break
            if seen is None:
                self.sendline("")
                self._wait([LOGIN], NUDGE, "login prompt")
        self.sendline(password)
        self.sendline(SETUP)
        while True:
            seen = self._wait([READY, "Login incorrect", LOGIN], NUDGE, "a shell")
            if seen == 0:
                return
            if seen is not None:
                raise SandboxError(f"the guest refused the login of {user!r}",
                                   "check the user name and the password set by the wizard")
            if time.monotonic() > deadline:
                raise self._fail(f"no shell after logging in as {user} within {timeout:.0f}s")
            self.sendline(SETUP)  # typed while login still held the terminal: again

    def run(self, command: str, timeout: float = 120) -> tuple[int, str]:
        """Run a shell command as the logged-in user.

        Returns:
            Its exit status and its output (stdout and stderr, without the
            command line, a prompt, kernel log lines or trailing newlines).

        Raises:
            SerialTimeout: it did not finish within ``timeout`` seconds.

        """
        token = uuid.uuid4().hex[:12]
        # The braces make the shell parse the whole command before running it,
        # so the end marker is never read as the command's input.
        self.sendline(f"echo DBW-B''{token}; {{ {command}\n}}; echo DBW-E''{token}:$?")
        self.expect(f"DBW-B{token}\r*\n", timeout, f"the start of {command!r}")
        self.expect(f"DBW-E{token}:(\\d+)\r*\n", timeout, f"the end of {command!r}")
        before, _, match = self._found()
        status = int(match.group(1))
        output = KERNEL_LINE.sub("", before.replace("\r", "")).rstrip("\n")
        return status, output

    def logout(self) -> None:
        """Leave the shell; getty shows a login prompt again."""
        self.sendline("exit")
        self.expect(LOGIN, 120, "login prompt")

    def poweroff(self, password: str | None = None, timeout: float = 300) -> int:
        """``systemctl poweroff`` (through ``sudo -S`` with ``password``); QEMU's exit status."""
        if password is None:
            self.sendline("systemctl poweroff")
        else:
            self.sendline("sudo -S -p 'DBW-SUDO''-PW:' systemctl poweroff")
            # No prompt when sudo needs no password: the guest just goes down.
            if self.child.expect(["DBW-SUDO-PW:", pexpect.EOF, pexpect.TIMEOUT], 60) == 0:
                self.sendline(password)
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float = 300) -> int:
        """Wait until QEMU exits (a power-off, or a reboot under ``-no-reboot``): its status.

        Raises:
            SerialTimeout: still running after ``timeout`` seconds.

        """
        if self.child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=timeout) == 1:
            raise self._fail(f"the guest was still running after {timeout:.0f}s")
        self.child.wait()
        return self.child.exitstatus if self.child.exitstatus is not None else -1

    def interact(self, escape: str = "\x1d") -> None:
        """Hand the console to this process's terminal until ``escape`` (Ctrl-]) is typed.

        Then QEMU is killed: leaving the console powers the VM off.
        """
        self._sink.echo = None  # the terminal shows the console itself now
        self.child.interact(escape_character=escape)
        self.close()

    def close(self) -> None:
        """Kill QEMU if it still runs and close the log (idempotent)."""
        if self.child.isalive():
            self.child.close(force=True)
        self._sink.close()


@contextlib.contextmanager
def booted(disk_image: Path, log: Path, *, memory: str = "1536", timeout: float = 900,
           echo: TextIO | None = None, nvram: Path | None = None,
           secure_boot: bool = False) -> Iterator[Console]:
    """Boot ``disk_image`` with OVMF, the serial console on a pty; yield a ``Console``.

    QEMU runs with ``qemu.qemu_command`` (the machine of ``qemu.boot``) and is
    killed when the block ends; the disk must not be on a loop device meanwhile.  ``log``
    receives everything the guest prints, ``memory`` is in MiB, ``timeout`` bounds all
    waits on the console together, ``echo`` shows the console live (not in ``interact``),
    ``nvram`` is an OVMF variable store kept between boots (None: a fresh one),
    ``secure_boot`` the firmware with Secure Boot enforced (``qemu.qemu_command``).

    Raises:
        SandboxError: QEMU is not installed.

    """
    if shutil.which("qemu-system-x86_64") is None:
        raise qemu.qemu_missing()
    # Ctrl-C typed on the console goes to the guest, not to QEMU (signal=off).
    serial = ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
    cmd = qemu.qemu_command(disk_image, qemu.ovmf_vars_copy(log, nvram, secure_boot=secure_boot),
                            memory, serial, secure_boot=secure_boot)
    console = Console.spawn(cmd, log, timeout=timeout, echo=echo)
    try:
        yield console
    finally:
        console.close()
