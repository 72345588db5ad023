"""Reading the VM's serial console.

The hook's lines, systemd's failures, an emergency shell, the last lines shown.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]?|\x1b[()][A-Za-z0-9]")
_KERNEL_TS = re.compile(r"^\[ *\d+\.\d+\] ")
EMERGENCY = (r"You are in emergency mode", r"Entering emergency mode",
             r"Give root password for maintenance", r"root account is locked",
             r"\(initramfs\) ", r"dracut:/# ", r"Kernel panic")
"""What the serial console shows when the boot did not get to a normal system."""
KVM_FAILED = r"KVM internal error"
"""QEMU's line when KVM opens but cannot run the guest (some nested VMs): TCG instead."""
_STATUS = re.compile(r"^\[ *(OK|FAILED|DEPEND|TIME|INFO|WARN) *\]")
_FAILED = re.compile(r"\[(FAILED|DEPEND)\]|\[ TIME \] Timed out|Kernel panic")


def clean(line: str) -> str:
    """A serial line without escape sequences, CRs and a kernel timestamp."""
    return _KERNEL_TS.sub("", _ANSI.sub("", line).replace("\r", "")).strip()


def hook_lines(serial: str) -> list[str]:
    """The hook's ``dockerboot: …`` lines of a serial log, in order."""
    out = []
    for raw in serial.splitlines():
        line = clean(raw)
        at = line.find("dockerboot: ")
        if at >= 0 and not _STATUS.match(line):  # not a unit's description in systemd's status
            out.append(line[at:])
    return out


def failures(serial: str) -> list[str]:
    """The lines of systemd's ``[FAILED]``, ``[DEPEND]``, time-outs and a kernel panic, in order."""
    return [clean(raw) for raw in serial.splitlines() if _FAILED.search(_ANSI.sub("", raw))]


def emergency(serial: str) -> bool:
    """Whether the boot ended in an emergency shell (systemd's, the initramfs's) or a panic."""
    text = _ANSI.sub("", serial)
    return any(re.search(p, text) for p in EMERGENCY)


def tail(serial: str, lines: int = 12) -> list[str]:
    """The serial console's last ``lines`` non-empty lines, cleaned."""
    return [ln for ln in (clean(raw) for raw in serial.splitlines()) if ln][-lines:]
