"""Building blocks of the disposable sandbox: loop disks, udev, the rootfs tarballs.

Everything runs as root against the real kernel.  ``wizard.sandbox`` puts
these together for ``dockerboot-wizard sandbox``; the test lab
(``tests/lab/lab.py``) re-exports them, with ``run`` (``wizard.common.commands``),
``mounted`` (``wizard.disk.partitions``) and the private dockerd
(``wizard.store.private_daemon``).  Names are unique per call, so several
sandboxes and test runs can share one machine without touching each other's
loop devices, labels or daemons.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wizard.common.commands import run
from wizard.common.errors import SandboxError
from wizard.common.resources import asset

UDEVD_CANDIDATES = ("/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd",
                    "/sbin/udevd")
"""Where distributions put the udev daemon."""
UDEVD = UDEVD_CANDIDATES[0]


def ensure_udevd() -> bool:
    """Start systemd-udevd if it is not running, so loop devices get udev properties.

    The daemon is left running afterwards: it is the system's device manager,
    not sandbox state, and other users of udev may rely on it by then.

    Returns:
        True when this call started it.

    Raises:
        SandboxError: no udev daemon is installed.

    """
    if run("pgrep", "-x", "systemd-udevd", check=False).returncode == 0:
        return False
    udevd = next((c for c in UDEVD_CANDIDATES if Path(c).exists()), None)
    if udevd is None:
        raise SandboxError("systemd-udevd is not installed", "install it: `apt-get install udev`")
    run(udevd, "--daemon")
    time.sleep(0.5)
    return True


def udev_settle() -> None:
    """Replay block ``add`` events and wait until udev has processed them."""
    ensure_udevd()
    run("udevadm", "trigger", "--action=add", "--subsystem-match=block")
    run("udevadm", "settle", "--timeout=30")


def unique_label(prefix: str = "dbw") -> str:
    """A btrfs label no other run uses (``LABEL=`` needs labels to be unique)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Disk:
    """A loop-backed disk: the image file, its loop device and its btrfs partition."""

    image: Path
    loop: str
    btrfs_dev: str
    label: str


@contextlib.contextmanager
def loop_disk(workdir: Path, *, label: str | None = None, size: str = "4G",
              gpt: bool = False, esp_size: str = "64M") -> Iterator[Disk]:
    """A sparse disk image ``workdir/disk.img`` on a loop device with a fresh btrfs.

    With ``gpt=True`` the image gets a GPT: partition 1 is a FAT ESP of
    ``esp_size`` at 1 MiB, partition 2 the btrfs filesystem (so mtools can reach the ESP at
    ``image@@1M``).  The image file stays after the block; ``attach_disk``
    attaches it again (e.g. after a QEMU boot).
    """
    label = label or unique_label()
    image = workdir / "disk.img"
    run("truncate", "-s", size, image)
    if gpt:
        run("sgdisk", "-o", "-n", f"1:1M:+{esp_size}", "-t", "1:ef00", "-c", "1:ESP",
            "-n", "2:0:0", "-t", "2:8300", "-c", "2:dockerboot", image)
    with attach_disk(image, label=label, gpt=gpt, fresh=True) as disk:
        yield disk


@contextlib.contextmanager
def attach_disk(image: Path, *, label: str, gpt: bool, fresh: bool = False) -> Iterator[Disk]:
    """Attach a disk image to a loop device (``fresh`` also makes the filesystems).

    Detaching at the end drops the loop device's cache, so a later QEMU boot
    of the image file sees everything that was written.
    """
    loop = run("losetup", "--show", "-f", image).stdout.strip()
    esp = None
    try:
        if gpt:
            # The kernel does not scan loop partitions by itself here.  `-u`,
            # not `-a`: a loop device detached while its partitions were busy
            # keeps them (no partscan flag), and `-a` then fails on the next
            # image attached to it; `-u` adds, resizes and drops to match.
            esp, dev = f"{loop}p1", f"{loop}p2"
            _add_partitions(loop, (esp, dev))
        else:
            dev = loop
        if fresh:
            if esp:
                run("mkfs.vfat", "-F", "32", "-n", "ESP", esp)
            run("mkfs.btrfs", "-q", "-f", "-L", label, dev)
        udev_settle()
        yield Disk(image=image, loop=loop, btrfs_dev=dev, label=label)
    finally:
        run("sync")
        run("udevadm", "settle", check=False)
        if gpt:
            _drop_partitions(loop)
        run("losetup", "-d", loop, check=False)
        udev_settle()


def _add_partitions(loop: str, nodes: tuple[str, ...], tries: int = 50) -> None:
    """``partx -u`` until the partitions' device nodes are there.

    Seen once under CI's load: the mount right after found no ``/dev/loop0p2``
    (a loop device just freed by another test, its partitions dropped meanwhile).
    """
    for _ in range(tries):
        run("partx", "-u", loop, check=False)
        if all(Path(n).exists() for n in nodes):
            return
        udev_settle()
        time.sleep(0.1)
    raise SandboxError(f"the partitions of {loop} did not appear ({', '.join(nodes)})",
                       "detach stale loop devices (losetup -D), then run again")


def _drop_partitions(loop: str, tries: int = 20) -> None:
    """``partx -d`` until the kernel lists no partition of ``loop``.

    A partition udev is still probing is busy for a moment; one left behind
    outlives the detach (no partscan flag) and hides the next filesystem put
    on that loop device from libblkid, which skips a whole disk that has
    partitions (``btrfs device scan`` then misses it).
    """
    name = Path(loop).name
    for _ in range(tries):
        run("partx", "-d", loop, check=False)
        if not any(Path("/sys/block", name).glob(f"{name}p*")):
            return
        time.sleep(0.1)
        udev_settle()


ROOTFS_VARIANTS = ("initramfs-tools", "dracut", "initramfs-tools-systemd", "dracut-systemd",
                   "initramfs-tools-systemd-sb", "dracut-systemd-sb", "initramfs-tools-bpo",
                   "dracut-bpo")
"""What ``assets/sandbox/build-rootfs.sh`` builds."""


def rootfs_tarball(variant: str) -> Path:
    """The cached debootstrapped Debian rootfs tarball (built on first use: minutes).

    Args:
        variant: ``initramfs-tools`` or ``dracut`` (the generator inside), optionally
            with ``-systemd``: plus systemd, dbus, sudo and docker.io, for a real
            boot to a login prompt; or with ``-bpo``: the same image after a kernel
            update, only the bookworm-backports kernel (6.12) left, the 6.1 one purged;
            ``<generator>-systemd-sb``: the systemd one plus Debian's signed shim
            and GRUB (``shim-signed``, ``grub-efi-amd64-signed``).

    Returns:
        ``<cache>/rootfs-<suite>-<variant>.tar``.

    Raises:
        CommandError: debootstrap or apt failed (e.g. no Debian mirror reachable).

    """
    if variant not in ROOTFS_VARIANTS:
        raise SandboxError(f"unknown sample image variant {variant!r}",
                           f"use one of: {', '.join(ROOTFS_VARIANTS)}")
    script = asset("sandbox/build-rootfs.sh")
    out = run("sh", script, variant, timeout=3600).stdout.strip().splitlines()[-1]
    return Path(out)
