"""The machine's whole disks, and where on one of them a new machine goes.

The TUI's New machine route lists the disks (``list_disks``: one ``lsblk``
for all of them), the user names a ``Target`` on one, and ``Chosen`` keeps
the disk as it was surveyed with the plan shown for it
(``wizard.disk.layout``).  Nothing here writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wizard.disk import layout

MODES = ("disk", "free", "partition")
"""Where on a disk: the whole disk, its free space, an empty partition (``DiskPlan.target``)."""


@dataclass(frozen=True)
class Target:
    """Where the new machine goes, as the user named it (``install`` and the Disk step)."""

    mode: str
    """One of ``MODES``."""
    device: str
    """The whole disk (``disk``, ``free``) or the partition (``partition``)."""
    label: str
    """The new btrfs partition's label."""
    esp: str | None = None
    """The ESP partition to use; None: the disk's own (or the new one)."""
    here: bool = True
    """The disk boots this machine, which must have booted by UEFI (a boot entry is
    written); False: it goes to another UEFI machine (a disk to move, a VM image)."""


@dataclass(frozen=True)
class Chosen:
    """A target with the disk as surveyed and the plan shown for it."""

    target: Target
    disk: layout.Disk
    plan: layout.DiskPlan | None
    """None: the labelled btrfs partition is there already (an earlier run made it)."""

    def describe(self) -> str:
        """The plan's text, or what a rerun finds (nothing is formatted then)."""
        if self.plan is not None:
            return self.plan.describe()
        return (f"{self.disk.describe()}\n  LABEL={self.target.label} is there already "
                "(an earlier run): nothing is formatted; the rest carries on")

    @property
    def asks_for_name(self) -> bool:
        """Whether the user must type the disk's name to go ahead (a whole disk is lost)."""
        return self.plan is not None and self.target.mode == "disk"


def typed_confirms(chosen: Chosen, typed: str) -> bool:
    """Whether ``typed`` lets the install of ``chosen`` go ahead.

    A whole disk goes only when the text typed, blanks around it aside, is
    the disk's device name exactly (``install``'s question); anything else
    needs no typing.
    """
    return not chosen.asks_for_name or typed.strip() == chosen.target.device


def parse_disks(text: str) -> list[layout.Disk]:
    """The whole disks of ``lsblk --json --bytes -o ...`` output (every device listed).

    Disks and attached loop devices (a disk image, the lab's disks); not
    partitions, CD drives, zram or empty loop devices.
    """
    devices: list[dict[str, Any]] = json.loads(text).get("blockdevices") or []
    return [layout.disk_from_json(d) for d in devices
            if d.get("type") in ("disk", "loop") and int(d.get("size") or 0) > 0
            and not str(d.get("name", "")).startswith("zram")]


def list_disks() -> list[layout.Disk]:
    """Every whole disk of this machine with its partitions (one ``lsblk``), nothing written.

    Raises:
        PartitionError: lsblk is missing or failed.

    """
    return parse_disks(layout.lsblk())
