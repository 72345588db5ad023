"""Inside the tried VM: log in on its serial console and ask systemd what failed.

With ``try --user NAME --password-file FILE`` the headless try does not stop
at the login prompt: it logs in through the image's own getty and PAM (the
sandbox's ``Console.login``), lets systemd finish starting
(``systemctl is-system-running --wait``, bounded) and lists the failed units
(``systemctl --failed``).  A refused password or a missing shell is one line
in the result, never an exception: the try itself worked, the system it
booted did not let the user in.  The password is typed only after getty's
password prompt (which does not echo); it is blanked from the serial log and
from everything read off it all the same, in case a guest echoes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from wizard.common.errors import WizardError
from wizard.sandbox.console import Console

HIDDEN = "********"
"""What stands for the password wherever the guest showed it."""
SETTLE = 300
"""Seconds systemd may still take to finish starting after the login prompt."""
STATE = f"timeout {SETTLE} systemctl is-system-running --wait"
FAILED = "systemctl --failed --plain --no-legend --no-pager"
STATES = ("initializing", "starting", "running", "degraded", "maintenance", "stopping",
          "offline", "unknown")
"""What ``systemctl is-system-running`` prints."""
_UNIT = re.compile(r"^[\w@:.\\-]+\.(service|socket|mount|automount|swap|target|device|path|"
                   r"timer|slice|scope)$")


@dataclass(frozen=True)
class Credentials:
    """Who logs in on the VM's console (``try --user/--password-file``)."""

    user: str
    password: str = field(repr=False)
    """Never shown: left out of ``repr``, blanked by ``hide``."""

    def hide(self, text: str) -> str:
        """``text`` with every occurrence of the password blanked."""
        return text.replace(self.password, HIDDEN) if self.password else text

    def hide_file(self, path: Path) -> None:
        """Blank the password in the file ``path`` (the serial log), if it is there at all."""
        try:
            data = path.read_bytes()
        except OSError:
            return
        secret = self.password.encode()
        if secret and secret in data:
            path.write_bytes(data.replace(secret, HIDDEN.encode()))


@dataclass(frozen=True)
class Inside:
    """What the login on the VM's console found."""

    user: str
    logged_in: bool
    system_state: str = ""
    """``systemctl is-system-running`` once systemd settled (``running``, ``degraded``, …)."""
    failed_units: tuple[str, ...] = ()
    reason: str = ""
    """One line: why the login or a command after it did not work (empty: it did)."""

    def line(self) -> str:
        """One line for what the login found."""
        if not self.logged_in:
            return f"NOT logged in: {self.reason}"
        state = f"systemd {self.system_state or 'state unknown'}"
        if self.failed_units:
            return f"logged in as {self.user}: {state}, failed units: " + \
                ", ".join(self.failed_units)
        if self.reason:
            return f"logged in as {self.user}: {state}; {self.reason}"
        return f"logged in as {self.user}: {state}, no failed unit"


def inspect(console: Console, who: Credentials, timeout: float = 600) -> Inside:
    """Log in at the login prompt ``console`` just showed; systemd's state and failed units."""
    try:
        console.login(who.user, who.password, timeout=timeout, prompt_shown=True)
    except WizardError as e:
        return Inside(who.user, False, reason=who.hide(f"no shell as {who.user}: {e.problem}"))
    try:
        _, out = console.run(STATE, timeout=SETTLE + 60)
        state = next((w for w in reversed(out.split()) if w in STATES), "")
        status, out = console.run(FAILED, timeout=120)
    except WizardError as e:
        return Inside(who.user, True,
                      reason=who.hide(f"logged in as {who.user}, then: {e.problem}"))
    # Only unit names: a status line of systemd's that lands in the output is not one.
    units = tuple(line.split()[0] for line in out.splitlines()
                  if line.split() and _UNIT.match(line.split()[0]))
    reason = "" if status == 0 else f"`{FAILED}` exited with status {status}"
    return Inside(who.user, True, state, units, reason)
