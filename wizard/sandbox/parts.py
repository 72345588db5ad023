"""Building blocks of the disposable sandbox: loop disks, udev, mounts, a private dockerd.

Everything runs as root against the real kernel.  ``wizard.sandbox`` puts
these together for ``dockerboot-wizard sandbox``; the test lab
(``tests/lab/lab.py``) re-exports them.  Names are unique per call, so several
sandboxes and test runs can share one machine without touching each other's
loop devices, labels or daemons.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from wizard.common.errors import SandboxError
from wizard.common.resources import asset
from wizard.store.pins import PIN_LABEL

UDEVD_CANDIDATES = ("/lib/systemd/systemd-udevd", "/usr/lib/systemd/systemd-udevd",
                    "/sbin/udevd")
"""Where distributions put the udev daemon."""
UDEVD = UDEVD_CANDIDATES[0]


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
            run("partx", "-u", loop)
            esp, dev = f"{loop}p1", f"{loop}p2"
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


@contextlib.contextmanager
def mounted(dev: str, mountpoint: Path, options: str = "subvolid=5") -> Iterator[Path]:
    """Mount ``dev`` (the btrfs top level by default) for the duration of the block."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    run("mount", "-t", "btrfs", "-o", options, dev, mountpoint)
    try:
        yield mountpoint
    finally:
        run("umount", mountpoint, check=False)


@dataclass
class Dockerd:
    """A private dockerd with the classic btrfs graph driver."""

    host: str
    """``unix://…`` address for ``DOCKER_HOST``."""
    data_root: Path
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """Environment for a docker client (SDK or CLI) talking to this daemon."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str | os.PathLike[str], check: bool = True,
               timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon (``run``'s ``check`` and ``timeout``)."""
        return run("docker", *args, env=self.env(), check=check, timeout=timeout)


@contextlib.contextmanager
def dockerd(data_root: Path, *, storage_driver: str = "btrfs",
            state: Path | None = None) -> Iterator[Dockerd]:
    """Start a private dockerd on ``data_root``; stop it and its containers afterwards.

    It has no bridge and no iptables rules (nothing on the sandbox needs a
    network, and the host's firewall stays untouched), and its own socket,
    exec-root and pidfile (in ``state``, a new directory; default: one in /tmp), so it
    never meets the system's dockerd.

    Raises:
        SandboxError: dockerd exited or did not answer within 20 seconds.

    """
    if state is None:
        state = Path(tempfile.mkdtemp(prefix="dbw-dockerd-"))
    else:
        state.mkdir(mode=0o700)
    sock = state / "docker.sock"
    log_path = state / "dockerd.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["dockerd", f"--storage-driver={storage_driver}", f"--data-root={data_root}",
             f"--exec-root={state}/exec", f"--pidfile={state}/dockerd.pid",
             f"--host=unix://{sock}", "--bridge=none", "--iptables=false",
             "--ip-forward=false"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    d = Dockerd(host=f"unix://{sock}", data_root=data_root, process=proc)
    try:
        for _ in range(200):
            if proc.poll() is not None:
                raise SandboxError(f"the sandbox's dockerd exited: {_tail(log_path)}",
                                   "is the data-root on btrfs and the btrfs module loaded?")
            if sock.exists() and d.docker("version", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise SandboxError(f"the sandbox's dockerd did not come up: {_tail(log_path)}",
                               "see the dockerd log lines above")
        yield d
    finally:
        with contextlib.suppress(Exception):
            # Running leftovers go; a generation's pin (never started) is the
            # partition's, like its images: it stays for the next daemon.
            rows = d.docker("ps", "-a", "--format",
                            f'{{{{.ID}}}} {{{{.Label "{PIN_LABEL}"}}}}', check=False).stdout
            ids = [row.split()[0] for row in rows.splitlines() if len(row.split()) == 1]
            if ids:
                d.docker("rm", "-f", *ids, check=False)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # dockerd leaves its exec-root mounts behind on a hard stop.
        run("umount", "-R", "-l", f"{state}/exec", check=False)
        shutil.rmtree(state, ignore_errors=True)


def _tail(path: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"


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
