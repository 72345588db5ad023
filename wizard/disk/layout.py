"""A disk for a new machine: what is on it, what install may do to it, and the plan.

Three targets (``install``): a whole disk (a new GPT with an ESP and a
btrfs partition), the free space of a GPT disk that holds other systems (a
btrfs partition there; their ESP reused), an existing empty partition.  The
plan names everything that would be destroyed, by model, size, label and
mountpoint, before anything is written; what is refused is refused in one
line, before anything is written either.  Only ``write`` changes the disk.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.common.commands import output_or
from wizard.common.errors import PartitionError
from wizard.common.names import check_label

MIB = 1 << 20
GIB = 1 << 30
ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
"""The GPT partition type of an EFI system partition."""
EFI = Path("/sys/firmware/efi")
"""There when this machine booted by UEFI; None in ``efi=`` skips the check (another
machine's disk)."""
MIN_ESP = 512 * MIB
"""What installers make today: room for two generations of the usual kernel + initramfs."""
CHAIN_BYTES = 16 * MIB
"""shim, GRUB, MokManager and their backups."""
_COLUMNS = "NAME,PATH,TYPE,SIZE,MODEL,PTTYPE,FSTYPE,LABEL,PARTTYPE,PARTLABEL,MOUNTPOINTS"


@dataclass(frozen=True)
class Part:
    """A partition as ``lsblk`` sees it."""

    path: str
    size: int
    fstype: str | None = None
    label: str | None = None
    parttype: str | None = None
    mountpoints: tuple[str, ...] = ()
    partlabel: str | None = None
    """The GPT partition name (``write`` names the btrfs partition after its label)."""

    def describe(self) -> str:
        """``/dev/sdb1 (vfat "EFI", 512 MiB, mounted on /boot/efi)``: for the plan."""
        what = [f"{self.fstype} \"{self.label}\"" if self.fstype and self.label
                else self.fstype or "no filesystem", human(self.size)]
        if self.mountpoints:
            what.append("mounted on " + ", ".join(self.mountpoints))
        return f"{self.path} ({', '.join(what)})"


@dataclass(frozen=True)
class Disk:
    """A whole disk, its partition table and partitions."""

    path: str
    size: int
    model: str = ""
    pttype: str | None = None
    """``gpt``, ``dos`` (MBR) or None (blank)."""
    parts: tuple[Part, ...] = ()
    mountpoints: tuple[str, ...] = ()
    """Mounts of the disk itself (a filesystem without a partition table)."""

    def describe(self) -> str:
        """``/dev/sdb: Samsung SSD 870, 500.1 GB, GPT``: for the plan."""
        table = {"gpt": "GPT", "dos": "MBR"}.get(self.pttype or "", "no partition table")
        return f"{self.path}: {self.model or 'unknown model'}, {human(self.size)}, {table}"

    @property
    def mounted(self) -> list[str]:
        """Every mountpoint of the disk and its partitions (``[SWAP]`` for swap)."""
        return [*self.mountpoints, *(m for p in self.parts for m in p.mountpoints)]

    @property
    def esp(self) -> Part | None:
        """The disk's EFI system partition, if it has one."""
        return next((p for p in self.parts if (p.parttype or "").lower() == ESP_TYPE), None)


@dataclass
class DiskPlan:
    """What ``write`` does to a disk, said before it is done."""

    disk: Disk
    target: str
    """``disk`` (a new GPT), ``free`` (a partition in the free space) or ``partition``."""
    label: str
    esp_size: int = 0
    """The new ESP (``disk`` only); 0: the disk's own ESP is reused."""
    partition: Part | None = None
    """``partition``: the empty partition that becomes the btrfs one."""
    free: tuple[int, int] = (0, 0)
    """``free``: the first and last sector of the largest free region."""
    destroyed: list[str] = field(default_factory=list)
    """One line per partition or filesystem that is lost."""

    def describe(self) -> str:
        """The plan in lines: what is destroyed, then what is made."""
        lines = [self.disk.describe()]
        lines += [f"  destroyed: {d}" for d in self.destroyed] or ["  destroyed: nothing"]
        if self.target == "disk":
            lines += ["  new GPT partition table",
                      f"  new: EFI system partition, FAT32, {human(self.esp_size)}",
                      f"  new: btrfs \"{self.label}\", the rest "
                      f"({human(self.disk.size - self.esp_size - 2 * MIB)})"]
        elif self.target == "free":
            size = (self.free[1] - self.free[0] + 1) * 512
            esp = self.disk.esp
            lines += [f"  new: btrfs \"{self.label}\" in the free space ({human(size)})",
                      f"  reused: the ESP {esp.path if esp else '?'} (its files are kept)"]
        elif self.partition is not None:
            lines.append(f"  formatted: {self.partition.path} as btrfs \"{self.label}\"")
        return "\n".join(lines)


def human(size: int) -> str:
    """``512 MiB``, ``8.0 GiB``: sizes as the plan says them."""
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size // MIB} MiB"


def _run(*cmd: str) -> str:
    return output_or(PartitionError, "install util-linux, gdisk, dosfstools and btrfs-progs",
                     "check the device, then run again", *cmd)


def parse_lsblk(text: str) -> Disk:
    """The ``Disk`` of ``lsblk --json --bytes -o _COLUMNS DEV`` output (DEV a whole disk).

    Raises:
        PartitionError: DEV is not a whole disk.

    """
    [dev] = json.loads(text)["blockdevices"]
    if dev.get("type") != "disk" and dev.get("type") != "loop":
        raise PartitionError(f"{dev['path']} is a {dev.get('type')}, not a whole disk",
                             "give the disk (e.g. /dev/sdb), or --partition for a partition")
    return disk_from_json(dev)


def disk_from_json(dev: dict[str, Any]) -> Disk:
    """The ``Disk`` of one whole device of ``lsblk --json --bytes -o _COLUMNS``."""

    def mounts(d: dict[str, Any]) -> tuple[str, ...]:
        return tuple(m for m in (d.get("mountpoints") or []) if isinstance(m, str))

    parts = tuple(Part(c["path"], int(c["size"]), c.get("fstype"), c.get("label"),
                       c.get("parttype"), mounts(c), c.get("partlabel"))
                  for c in dev.get("children") or [] if c.get("type") == "part")
    return Disk(dev["path"], int(dev["size"]), (dev.get("model") or "").strip(),
                dev.get("pttype"), parts, mounts(dev))


def survey(device: str) -> Disk:
    """What is on the whole disk ``device`` (lsblk), nothing written.

    Raises:
        PartitionError: no such device, or not a whole disk.

    """
    if not Path(device).exists():
        raise PartitionError(f"no device {device}", "give a disk from `lsblk -d`")
    return parse_lsblk(lsblk(device))


def lsblk(*devices: str) -> str:
    """``lsblk --json --bytes -o _COLUMNS`` of ``devices`` (every block device when none).

    Raises:
        PartitionError: lsblk is missing or failed (one line).

    """
    return _run("lsblk", "--json", "--bytes", "-o", _COLUMNS, *devices)


def esp_size(boot_bytes: int) -> int:
    """The ESP for a new disk, in whole MiB, at least ``MIN_ESP``.

    Two generations' kernel + initramfs (``boot_bytes`` each), one more being
    copied (systemd-boot's copies), and the boot chain.
    """
    need = 3 * boot_bytes + CHAIN_BYTES
    return max(MIN_ESP, -(-need // MIB) * MIB)


def _refuse_mounted(disk: Disk) -> None:
    if "/" in disk.mounted:
        raise PartitionError(f"{disk.path} holds the running system's root (/)",
                             "install to another disk, or boot a live USB and install from it")
    if disk.mounted:
        raise PartitionError(f"{disk.path} has mounted filesystems "
                             f"({', '.join(disk.mounted)})",
                             "unmount them (and swapoff), or choose another disk")


def _refuse_bios(efi: Path | None) -> None:
    if efi is not None and not efi.is_dir():
        raise PartitionError("this machine did not boot by UEFI (no /sys/firmware/efi): "
                             "dockerboot boots through UEFI only",
                             "switch the firmware to UEFI mode (CSM off) and boot again, or "
                             "pass --for-another-machine when the disk goes to a UEFI machine")


def plan_disk(disk: Disk, label: str, *, need: int, boot_bytes: int,
              efi: Path | None = EFI) -> DiskPlan:
    """A new GPT on the whole ``disk``: an ESP and a btrfs partition labelled ``label``.

    ``need``: the bytes the btrfs partition must hold at least (the image, its
    roots); ``boot_bytes``: one generation's kernel + initramfs.

    Raises:
        PartitionError: a bad label, a mounted filesystem (the root above all),
            too small a disk, a machine that did not boot by UEFI.

    """
    check_label(label)
    _refuse_bios(efi)
    _refuse_mounted(disk)
    esp = esp_size(boot_bytes)
    if disk.size < esp + need + 2 * MIB:
        raise PartitionError(f"{disk.path} is {human(disk.size)}: the ESP and the image need "
                             f"{human(esp + need + 2 * MIB)}", "choose a larger disk")
    destroyed = [p.describe() for p in disk.parts] or (
        ["its partition table"] if disk.pttype else [])
    return DiskPlan(disk, "disk", label, esp_size=esp, destroyed=destroyed)


def plan_free(disk: Disk, label: str, free: tuple[int, int], *, need: int,
              efi: Path | None = EFI) -> DiskPlan:
    """A btrfs partition in ``free`` (sectors, ``largest_free``) of a GPT ``disk`` with an ESP.

    Raises:
        PartitionError: a bad label, an MBR disk, no ESP, too little free space,
            a machine that did not boot by UEFI.

    """
    check_label(label)
    _refuse_bios(efi)
    if disk.pttype == "dos":
        raise PartitionError(f"{disk.path} has an MBR partition table: UEFI boots from GPT",
                             f"back it up, then convert it (`sgdisk --mbrtogpt {disk.path}`), "
                             "or install to a whole disk")
    if disk.pttype != "gpt":
        raise PartitionError(f"{disk.path} has no partition table, so no free space to use",
                             "use --disk to give it a new GPT")
    if disk.esp is None:
        raise PartitionError(f"{disk.path} has no EFI system partition to reuse",
                             "use --esp to name the machine's ESP, or install to a whole disk")
    size = (free[1] - free[0] + 1) * 512 if free[1] > free[0] else 0
    if size < need:
        raise PartitionError(f"{disk.path} has {human(size)} free in one piece: the image "
                             f"needs {human(need)}", "free space (shrink a partition), or "
                             "choose another disk")
    return DiskPlan(disk, "free", label, free=free)


def plan_partition(disk: Disk, path: str, label: str, *, need: int,
                   efi: Path | None = EFI) -> DiskPlan:
    """The empty partition ``path`` of ``disk`` formatted btrfs ``label``.

    Raises:
        PartitionError: a bad label, not a partition of ``disk``, mounted,
            holding a filesystem, too small, a machine that did not boot by UEFI.

    """
    check_label(label)
    _refuse_bios(efi)
    part = next((p for p in disk.parts if p.path == path), None)
    if part is None:
        raise PartitionError(f"{path} is not a partition of {disk.path}",
                             f"give one of: {', '.join(p.path for p in disk.parts) or 'none'}")
    if part.mountpoints:
        raise PartitionError(f"{path} is mounted ({', '.join(part.mountpoints)})",
                             "unmount it, or choose another partition")
    if part.fstype:
        raise PartitionError(f"{part.describe()} is not empty",
                             f"if what is on it can go, wipe it first (`wipefs -a {path}`)")
    if part.size < need:
        raise PartitionError(f"{path} is {human(part.size)}: the image needs {human(need)}",
                             "choose a larger partition")
    return DiskPlan(disk, "partition", label, partition=part,
                    destroyed=[f"{part.describe()}: nothing on it"])


def largest_free(device: str) -> tuple[int, int]:
    """The first (aligned) and last sector of ``device``'s largest free region (sgdisk)."""
    first = int(_run("sgdisk", "-f", device).split()[-1])
    last = int(_run("sgdisk", "-E", device).split()[-1])
    return first, last


def _settle(device: str) -> None:
    """The kernel and udev told of a new partition table (lsblk reads udev's database)."""
    _run("partx", "-u", device)
    _udev_changed(device)


def _udev_changed(device: str) -> None:
    # udev learns of a new table or label from an inotify "change" event that may come
    # after a plain settle returns: ask for the event, then wait for it.
    subprocess.run(["udevadm", "trigger", "--action=change", device], capture_output=True,
                   check=False)
    subprocess.run(["udevadm", "settle", "--timeout=30"], capture_output=True, check=False)


def _nodes(device: str) -> list[tuple[str, int]]:
    """The partitions' device nodes and first sectors, from the table itself."""
    table = json.loads(_run("sfdisk", "--json", device))["partitiontable"]
    return [(p["node"], int(p["start"])) for p in table.get("partitions", [])]


def write(plan: DiskPlan) -> Iterator[str]:
    """Carry ``plan`` out: partition and format; one line per step done.

    Yields:
        What was just done (for the progress display).

    Raises:
        PartitionError: the disk is not as planned any more (nothing is written
            then), or a tool failed (the line names it).

    """
    dev = plan.disk.path
    now = survey(dev)
    if now.parts != plan.disk.parts or now.pttype != plan.disk.pttype or now.mounted:
        # Between the plan shown and this write, the disk changed (a mount, a partition).
        raise PartitionError(f"{dev} changed since the plan was made"
                             + (f" ({', '.join(now.mounted)} mounted)" if now.mounted else ""),
                             "run install again to see the new plan")
    if plan.target == "disk":
        for p in plan.disk.parts:
            _run("wipefs", "-a", p.path)
        _run("sgdisk", "--zap-all", dev)
        _run("sgdisk", f"-n1:0:+{plan.esp_size // MIB}M", "-t1:ef00", "-c1:EFI system",
             "-n2:0:0", "-t2:8300", f"-c2:{plan.label}", dev)
        _settle(dev)
        yield f"{dev}: new GPT, an ESP of {human(plan.esp_size)} and a btrfs partition"
        (esp, _), (btrfs, _) = _nodes(dev)[:2]
        _run("mkfs.vfat", "-F", "32", "-n", "EFI", esp)
        _udev_changed(esp)
        yield f"{esp}: FAT32 (the ESP)"
    elif plan.target == "free":
        first, last = plan.free
        _run("sgdisk", f"-n0:{first}:{last}", "-t0:8300", f"-c0:{plan.label}", dev)
        _settle(dev)
        btrfs = next(n for n, start in _nodes(dev) if start == first)
        yield f"{btrfs}: new partition in the free space"
    else:
        assert plan.partition is not None
        btrfs = plan.partition.path
    # -f only on a partition made just now (an old signature in the space it took);
    # an existing partition was empty at plan time and must still be.
    force = ["-f"] if plan.target != "partition" else []
    _run("mkfs.btrfs", *force, "-L", plan.label, btrfs)
    _udev_changed(btrfs)  # install finds it by its label next
    yield f"{btrfs}: btrfs \"{plan.label}\""
