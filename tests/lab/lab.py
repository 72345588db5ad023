"""Real components for integration and e2e tests (DESIGN §7).

Everything here runs as root against the real kernel: loop devices, btrfs,
systemd-udevd, a private dockerd per disk.  Names are unique per call so that
several test runs can share the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UDEVD = "/lib/systemd/systemd-udevd"


def run(*cmd: str | os.PathLike, **kw) -> subprocess.CompletedProcess:
    """Run a command, raising with its output on failure."""
    kw.setdefault("check", True)
    kw.setdefault("text", True)
    kw.setdefault("capture_output", True)
    try:
        return subprocess.run([str(c) for c in cmd], **kw)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{cmd} failed ({e.returncode}):\n{e.stdout}\n{e.stderr}") from e


def ensure_udevd() -> None:
    """Start systemd-udevd if it is not running, so loop devices get udev properties."""
    if run("pgrep", "-x", "systemd-udevd", check=False).returncode != 0:
        run(UDEVD, "--daemon")
        time.sleep(0.5)


def udev_settle() -> None:
    """Replay block 'add' events and wait until udev has processed them."""
    ensure_udevd()
    run("udevadm", "trigger", "--action=add", "--subsystem-match=block")
    run("udevadm", "settle", "--timeout=30")


def unique_label(prefix: str = "dbw") -> str:
    """A btrfs label no other test run uses (labels must be unique for LABEL=)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Disk:
    """A loop-backed disk: whole image, the btrfs partition and maybe an ESP."""

    image: Path
    loop: str
    btrfs_dev: str
    label: str
    esp_dev: str | None = None


@contextlib.contextmanager
def loop_disk(workdir: Path, *, label: str | None = None, size: str = "4G",
              gpt: bool = False) -> Iterator[Disk]:
    """A sparse disk image on a loop device with a fresh btrfs filesystem.

    With ``gpt=True`` the image gets a GPT: partition 1 is a 64 MiB FAT ESP at
    1 MiB, partition 2 the btrfs filesystem (so mtools can reach the ESP at
    ``image@@1M``).  The image file stays after the block; ``attach_disk``
    attaches it again (e.g. after a QEMU boot).
    """
    label = label or unique_label()
    image = workdir / "disk.img"
    run("truncate", "-s", size, image)
    if gpt:
        run("sgdisk", "-o", "-n", "1:1M:+64M", "-t", "1:ef00", "-c", "1:ESP",
            "-n", "2:0:0", "-t", "2:8300", "-c", "2:dockerboot", image)
    with attach_disk(image, label=label, gpt=gpt, fresh=True) as disk:
        yield disk


@contextlib.contextmanager
def attach_disk(image: Path, *, label: str, gpt: bool, fresh: bool = False) -> Iterator[Disk]:
    """Attach an existing disk image to a loop device (``fresh`` also makes filesystems).

    Detaching at the end drops the loop device's cache, so a later QEMU boot
    of the image file sees everything that was written.
    """
    loop = run("losetup", "--show", "-f", image).stdout.strip()
    esp = None
    try:
        if gpt:
            # The kernel does not scan loop partitions by itself here.
            run("partx", "-a", loop)
            esp, dev = f"{loop}p1", f"{loop}p2"
        else:
            dev = loop
        if fresh:
            if esp:
                run("mkfs.vfat", "-F", "32", "-n", "ESP", esp)
            run("mkfs.btrfs", "-q", "-f", "-L", label, dev)
        udev_settle()
        yield Disk(image=image, loop=loop, btrfs_dev=dev, label=label, esp_dev=esp)
    finally:
        run("sync")
        run("udevadm", "settle", check=False)
        if gpt:
            run("partx", "-d", loop, check=False)
        run("losetup", "-d", loop, check=False)
        udev_settle()


@contextlib.contextmanager
def mounted(dev: str, mountpoint: Path, options: str = "subvolid=5") -> Iterator[Path]:
    """Mount ``dev`` (btrfs top level by default) for the duration of the block."""
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
    data_root: Path
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """Environment for a docker client (SDK or CLI) talking to this daemon."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str | os.PathLike, **kw) -> subprocess.CompletedProcess:
        """Run the docker CLI against this daemon."""
        return run("docker", *args, env=self.env(), **kw)


@contextlib.contextmanager
def dockerd(data_root: Path, *, storage_driver: str = "btrfs") -> Iterator[Dockerd]:
    """Start a private dockerd on ``data_root``; stop it (and its containers) afterwards."""
    state = Path(tempfile.mkdtemp(prefix="dbw-dockerd-"))
    sock = state / "docker.sock"
    log = open(state / "dockerd.log", "w")
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
                raise RuntimeError((state / "dockerd.log").read_text())
            if sock.exists() and d.docker("version", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("dockerd did not come up:\n" + (state / "dockerd.log").read_text())
        yield d
    finally:
        with contextlib.suppress(Exception):
            ids = d.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                d.docker("rm", "-f", *ids, check=False)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        # dockerd leaves its exec-root mounts behind on a hard stop.
        run("umount", "-R", "-l", f"{state}/exec", check=False)
        shutil.rmtree(state, ignore_errors=True)


def rootfs_tarball(variant: str) -> Path:
    """The cached debootstrapped rootfs tarball (built on first use, minutes)."""
    script = Path(__file__).with_name("build-rootfs.sh")
    out = run("sh", script, variant, timeout=3600).stdout.strip().splitlines()[-1]
    return Path(out)
