"""The mount table, ``/proc/self/mountinfo`` (proc(5)), parsed in one place.

Used by everything that asks where a filesystem is mounted: the partitions,
docker's data-root, the ESP, the leftovers of a killed run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
"""The mount table of this process."""
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One line of ``/proc/self/mountinfo`` (proc(5)), escapes decoded."""

    mount_id: int
    """Unique mount ID."""
    parent_id: int
    """Mount ID of the parent mount."""
    devnum: tuple[int, int]
    """``st_dev`` of the filesystem; for btrfs an anonymous device, not the block device."""
    root: str
    """Path inside the filesystem that is mounted here (btrfs: the subvolume, ``/`` = top)."""
    mountpoint: str
    """Where it is mounted."""
    options: str
    """Per-mount options (``rw,noatime``)."""
    fstype: str
    """Filesystem type (``btrfs``)."""
    source: str
    """Mount source, usually the block device (``/dev/loop3``)."""
    super_options: str
    """Per-superblock options (btrfs: ``rw,space_cache=v2,subvolid=256,subvol=/docker``)."""

    @property
    def read_only(self) -> bool:
        """True when this mount is read-only."""
        return "ro" in self.options.split(",")


def _unescape(field: str) -> str:
    # The kernel escapes space, tab, newline and backslash as \ooo in mountinfo.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse the text of ``/proc/<pid>/mountinfo`` into entries, in file order.

    Args:
        text: the file's content.

    Returns:
        One entry per well-formed line; later entries are mounted on top of
        earlier ones on the same mountpoint.

    """
    entries = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)  # optional fields (shared:N …) end at "-"
            major, minor = fields[2].split(":")
            entries.append(MountEntry(
                mount_id=int(fields[0]), parent_id=int(fields[1]),
                devnum=(int(major), int(minor)), root=_unescape(fields[3]),
                mountpoint=_unescape(fields[4]), options=fields[5],
                fstype=_unescape(fields[sep + 1]), source=_unescape(fields[sep + 2]),
                super_options=fields[sep + 3] if len(fields) > sep + 3 else ""))
        except (ValueError, IndexError):
            continue  # a malformed line must not hide all other mounts
    return entries


def read_mountinfo(path: Path = MOUNTINFO) -> list[MountEntry]:
    """The mounts of this process (``/proc/self/mountinfo``), or those in ``path``."""
    return parse_mountinfo(Path(path).read_text(errors="surrogateescape"))
