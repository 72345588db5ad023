"""fstab lines for the top layer, from the discovered partitions (DESIGN §4).

Inside the booted system the top layer's ``etc/fstab`` mounts docker's
data-root subvolume at ``/var/lib/docker`` (so ``docker pull`` there updates
the store the next boot reads) and, when wanted, a persistent ``/home``
subvolume: everything else is reset at every boot.  Pure functions: the TUI
offers the lines, the user picks, ``merge_line`` puts one into the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.disk.partitions import Partition

HOME_SUBVOLUME = "home"
"""Default name of the persistent ``/home`` subvolume at the partition's top level."""
JOURNAL_SUBVOLUME = "journal"
"""Name of the persistent ``/var/log/journal`` subvolume at the partition's top level."""


@dataclass(frozen=True)
class Suggestion:
    """One offered fstab line and why."""

    line: str
    """The fstab line, without line end."""
    why: str
    """What it is for, shown next to it."""

    @property
    def mountpoint(self) -> str:
        """The line's second field."""
        return self.line.split()[1]


def escape(field: str) -> str:
    """Escape a field the way fstab(5) wants it (space, tab, newline, backslash as octal)."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in field)


def spec(partition: Partition) -> str:
    """``LABEL=<label>`` (stable and readable), else ``UUID=<uuid>``."""
    return f"LABEL={escape(partition.label)}" if partition.label else f"UUID={partition.uuid}"


def line(partition: Partition, mountpoint: str, subvolume: str, options: str = "") -> str:
    """One btrfs fstab line mounting ``subvolume`` of ``partition`` at ``mountpoint``."""
    opts = f"subvol={escape(subvolume)}" + (f",{options}" if options else "")
    return f"{spec(partition)} {escape(mountpoint)} btrfs {opts} 0 0"


def suggestions(partitions: list[Partition], boot_label: str | None,
                docker_path: str = "docker") -> list[Suggestion]:
    """Lines worth offering: the data-root and ``/home`` on the boot partition first.

    Args:
        partitions: btrfs partitions from udev.
        boot_label: label of the partition the machine boots from (holds the data-root).
        docker_path: docker's data-root relative to that partition's top level.

    Returns:
        For the boot partition: ``/var/lib/docker`` and a persistent ``/home``;
        for every other partition: a ``/mnt/<label>`` mount of its top level.

    """
    out: list[Suggestion] = []
    boot = [p for p in partitions if boot_label and p.label == boot_label]
    for p in boot[:1]:
        out.append(Suggestion(line(p, "/var/lib/docker", docker_path),
                              "docker's data-root: `docker pull` here updates what boots next"))
        out.append(Suggestion(line(p, "/home", HOME_SUBVOLUME, "nofail"),
                              f"persistent /home (apply creates subvolume {HOME_SUBVOLUME!r})"))
    for p in partitions:
        if p in boot[:1]:
            continue
        name = p.label or p.uuid[:8]
        out.append(Suggestion(line(p, f"/mnt/{name}", "/"), f"{p.device}: its top level"))
    return out


def merge_line(text: str, new_line: str) -> str:
    """Put ``new_line`` into fstab ``text``, replacing the entry for the same mountpoint.

    Every other byte (comments, spacing, line ends, order) is kept; a new
    mountpoint is appended, with a line end added to a last line lacking one.
    """
    target = new_line.split()[1]
    lines = text.splitlines(keepends=True)
    for i, old in enumerate(lines):
        fields = old.split()
        if len(fields) >= 2 and not fields[0].startswith("#") and fields[1] == target:
            ending = old[len(old.rstrip("\r\n")):]
            lines[i] = new_line + ending
            return "".join(lines)
    if text and not text.endswith("\n"):
        text += "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
    return text + new_line + "\n"
