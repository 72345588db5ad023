"""Step 1, partition: btrfs filesystems found through udev, and their mounts.

udev (through pyudev) is the source of truth for what exists (label, UUID,
size, device); ``/proc/self/mountinfo`` for where it is mounted.  A btrfs
device can be mounted several times with different subvolumes, so every mount
keeps its *root* (the subvolume path inside the filesystem): ``/`` is the top
level, ``/docker`` the ``docker`` subvolume.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.common import leftovers
from wizard.common.commands import run
from wizard.common.errors import PartitionError
from wizard.common.mountinfo import MountEntry, read_mountinfo

if TYPE_CHECKING:  # udev's bindings are loaded where they are used (not at start-up)
    import pyudev

_HEX = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True)
class Partition:
    """A block device carrying a btrfs filesystem, as udev reports it."""

    label: str
    """Filesystem label (``root=LABEL=…``); empty when the filesystem has none."""
    uuid: str
    """Filesystem UUID."""
    device: str
    """Device node, e.g. ``/dev/loop3p2``."""
    size: int
    """Size of the block device in bytes."""
    devnum: tuple[int, int]
    """Major and minor number of the block device."""
    mountpoints: tuple[MountEntry, ...] = ()
    """Current mounts of this device (one per mounted subvolume or bind mount)."""
    error: str | None = None
    """Why its top level cannot be read (one line: problem — fix), set by
    ``check_readable``; None when readable or not checked."""

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable dict (for ``dockerboot-wizard partitions --json``)."""
        data = asdict(self)
        data["mountpoints"] = [{"mountpoint": m.mountpoint, "root": m.root,
                                "options": m.options} for m in self.mountpoints]
        return data


@dataclass(frozen=True)
class BlockEvent:
    """A udev hotplug event that may change the list of btrfs partitions."""

    action: str
    """udev action: ``add``, ``change``, ``remove``, …"""
    device: str
    """Device node."""
    label: str
    """Filesystem label now (empty when none or not btrfs any more)."""
    is_btrfs: bool
    """Whether the device carries btrfs after the event."""


def is_on(entry: MountEntry, partition: Partition) -> bool:
    """Whether a mount entry is a mount of ``partition``'s btrfs filesystem.

    btrfs reports an anonymous device number in mountinfo, so the block
    device is recognised by the mount source: its path or its ``st_rdev``.
    """
    if entry.fstype != "btrfs":
        return False
    if entry.source == partition.device or entry.devnum == partition.devnum:
        return True
    with contextlib.suppress(OSError):
        if os.path.realpath(entry.source) == os.path.realpath(partition.device):
            return True
        st = os.stat(entry.source)
        return (os.major(st.st_rdev), os.minor(st.st_rdev)) == partition.devnum
    return False


def _label(dev: pyudev.Device) -> str:
    # ID_FS_LABEL replaces unsafe characters; ID_FS_LABEL_ENC keeps them \xNN-escaped.
    enc = dev.properties.get("ID_FS_LABEL_ENC")
    if enc is not None:
        raw = _HEX.sub(lambda m: bytes([int(m.group(1), 16)]), enc.encode())
        return raw.decode("utf-8", "replace")
    label: str = dev.properties.get("ID_FS_LABEL", "")  # pyudev is untyped
    return label


def _partition(dev: pyudev.Device, mounts: list[MountEntry]) -> Partition:
    try:
        size = dev.attributes.asint("size") * 512  # sysfs counts 512-byte sectors
    except (KeyError, ValueError):
        size = 0
    num = dev.device_number
    part = Partition(label=_label(dev), uuid=dev.properties.get("ID_FS_UUID", ""),
                     device=dev.device_node or f"/dev/{dev.sys_name}", size=size,
                     devnum=(os.major(num), os.minor(num)))
    own = tuple(m for m in mounts if is_on(m, part))
    return replace(part, mountpoints=own)


def list_btrfs(context: pyudev.Context | None = None, *,
               probe: bool = False) -> list[Partition]:
    """All block devices udev knows to carry btrfs, sorted by label then device.

    Args:
        context: a pyudev context (a new one by default).
        probe: also try to read each top level (read-only): one that
            cannot be mounted is still listed, with its ``error`` set (``check_readable``).

    """
    import pyudev

    context = context or pyudev.Context()
    mounts = read_mountinfo()
    devices = context.list_devices(subsystem="block", ID_FS_TYPE="btrfs")
    found = [_partition(d, mounts) for d in devices
             if d.properties.get("ID_FS_TYPE") == "btrfs" and d.device_node]
    if probe:
        found = [check_readable(p) for p in found]
    return sorted(found, key=lambda p: (p.label, p.device))


def check_readable(partition: Partition) -> Partition:
    """``partition``, with ``error`` set when its top level cannot be read.

    The top level is mounted read-only for the check (or an existing mount
    is read); nothing is ever written.
    """
    try:
        with top_level(partition, read_only=True) as top:
            os.listdir(top)
    except PartitionError as e:
        return replace(partition, error=str(e))
    except OSError as e:
        return replace(partition, error=str(PartitionError(
            f"cannot read the top level of {partition.device}: {e.strerror}",
            "check the partition with `btrfs check`")))
    return replace(partition, error=None)


def find_by_label(label: str, context: pyudev.Context | None = None) -> Partition:
    """The btrfs partition with this filesystem label.

    Raises:
        PartitionError: no filesystem has the label, it is not btrfs, or two
            different btrfs filesystems share it (``LABEL=`` would be ambiguous).

    """
    import pyudev

    context = context or pyudev.Context()
    hint = "`dockerboot-wizard partitions` lists the btrfs partitions and their labels"
    btrfs = [p for p in list_btrfs(context) if p.label == label]
    if not btrfs:
        others = [d for d in context.list_devices(subsystem="block")
                  if d.properties.get("ID_FS_TYPE") and _label(d) == label]
        if others:
            d = others[0]
            raise PartitionError(
                f"LABEL={label} is a {d.properties['ID_FS_TYPE']} filesystem on "
                f"{d.device_node}, not btrfs", f"pick a btrfs partition — {hint}")
        raise PartitionError(f"no btrfs partition labelled {label}", f"check {hint}")
    if len({p.uuid for p in btrfs}) > 1:
        devices = ", ".join(p.device for p in btrfs)
        raise PartitionError(f"several btrfs filesystems are labelled {label} ({devices})",
                             "give each a unique label with `btrfs filesystem label`")
    return btrfs[0]  # several devices of one multi-device filesystem: any will do


def _run(*cmd: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        why = "; ".join(ln.strip() for ln in result.stderr.splitlines() if ln.strip())
        raise PartitionError(f"{' '.join(cmd)} failed: {why}",
                             "check the partition with `btrfs check` and that you are root")


@contextlib.contextmanager
def top_level(partition: Partition, *, read_only: bool = False) -> Iterator[Path]:
    """Yield a path where the partition's btrfs top level (subvolid=5) is mounted.

    An existing mount of the top level is reused (a writable one unless
    ``read_only``); otherwise the top level is mounted (``ro`` with
    ``read_only``) on a private directory in ``leftovers.RUN_DIR``, which is
    unmounted and removed afterwards, also when the block raises.  What a
    killed wizard left there is cleaned first (``leftovers.remove_stale_mounts``).

    Args:
        partition: the btrfs partition.
        read_only: the caller only reads (discovery): never mount read-write.

    Raises:
        PartitionError: the mount failed.

    """
    leftovers.remove_stale_mounts()
    for entry in reversed(read_mountinfo()):  # last = topmost on a stacked mountpoint
        if entry.mountpoint.startswith(f"{leftovers.RUN_DIR}/"):
            continue  # another wizard's mount: it goes when that wizard ends
        if is_on(entry, partition) and entry.root == "/" and (read_only or not entry.read_only):
            yield Path(entry.mountpoint)
            return
    tmp = tempfile.mkdtemp(prefix=leftovers.mount_dir_prefix(), dir=leftovers.private_run_dir())
    try:
        _run("mount", "-t", "btrfs", "-o", "subvolid=5,ro" if read_only else "subvolid=5",
             partition.device, tmp)
        try:
            yield Path(tmp)
        finally:
            if subprocess.run(["umount", tmp], capture_output=True).returncode != 0:
                # Busy (a shell cd'ed in?): detach lazily rather than leave it behind.
                subprocess.run(["umount", "-l", tmp], capture_output=True)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(tmp)


@contextlib.contextmanager
def mounted(dev: str, mountpoint: Path, options: str = "subvolid=5") -> Iterator[Path]:
    """Mount ``dev`` (the btrfs top level by default) for the duration of the block."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    run("mount", "-t", "btrfs", "-o", options, dev, mountpoint)
    try:
        yield mountpoint
    finally:
        run("umount", mountpoint, check=False)


def monitor_btrfs(callback: Callable[[BlockEvent], None],
                  context: pyudev.Context | None = None) -> pyudev.MonitorObserver:
    """Start a udev observer thread calling ``callback`` on btrfs-relevant block events.

    Reported: events of devices carrying btrfs, plus every ``change`` and
    ``remove`` (a device that *stopped* carrying btrfs, e.g. a detached loop
    device, no longer has ``ID_FS_TYPE``).  The callback runs in the observer
    thread; a UI must hand the event over to its own thread.

    Returns:
        The started observer; call ``.stop()`` to end it.

    """
    import pyudev

    monitor = pyudev.Monitor.from_netlink(context or pyudev.Context())
    monitor.filter_by("block")

    def on_device(dev: pyudev.Device) -> None:
        is_btrfs = dev.properties.get("ID_FS_TYPE") == "btrfs"
        if is_btrfs or dev.action in ("change", "remove"):
            callback(BlockEvent(action=dev.action or "", device=dev.device_node or "",
                                label=_label(dev) if is_btrfs else "", is_btrfs=is_btrfs))

    observer = pyudev.MonitorObserver(monitor, callback=on_device, name="dockerboot-udev")
    observer.daemon = True
    observer.start()
    return observer
