"""A new machine from a blank disk: ``install --disk`` from an image archive, then a real boot.

A blank sparse disk image on a loop device, nothing prepared: no partition
table, no filesystem, no daemon, no bootloader.  The image comes from a
``docker save`` archive (no registry is reachable).  ``dockerboot-wizard
install --disk`` as a user types it, with ``--for-another-machine`` because
this host did not boot by UEFI (the disk goes to a VM).  This kernel cannot
mount vfat, so install writes the new ESP through mtools (``wizard.disk.fat``)
— exactly what the firmware reads, no copy made by the test.

The image is a dracut one (systemd in the initramfs) with Debian's signed
shim + GRUB; no ``--bootloader`` is given, so the empty ESP and the pair
choose GRUB.  Then OVMF as a new PC ships it (Secure Boot enforced,
Microsoft's keys, empty NVRAM) boots the removable path install wrote:
shim → the image's GRUB → its signed kernel (locked down) → dracut's
systemd → the hook → the image's own systemd.  The wizard's
user logs in on the serial console; ``docker info`` in the booted system
shows the btrfs store with the image in it.

The free space of a disk that holds another system (a GPT ESP with that
system's files, an ext4 partition) gets the new partition, the install
killed at every one of its steps and rerun each time: the rerun after the
kill between the new partition and its filesystem formats that partition
(the free space it took is gone).  The other partition, the partition
table's entries of the other two and every file of the other system on the
ESP are unchanged byte for byte; with empty NVRAM and Secure Boot on, the
removable path install wrote boots the new system (the image's test init
reports what it booted: the chain and the hook, once; the login is the
blank disk's).  Both share one image archive (one worker, built once).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_grub_secure_boot import ok
from tests.lab import lab, scenario
from wizard.sandbox import TEST_INIT_KERNEL_OPTIONS
from wizard.sandbox.console import Console, booted
from wizard.sandbox.qemu import facts

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side,
              pytest.mark.xdist_group("install")]

USER, PASSWORD = "ida", "ida-pw-3"
IMAGE = "dbw-install/dracut:first"


def sudo(console: Console, command: str) -> str:
    return ok(console, f"echo {PASSWORD} | sudo -S -p '' {command}")


def install(loop: str, label: str, archive: Path, pw: Path, *, kill_at: str | None = None,
            where: str = "--disk", options: str = "console=ttyS0",
            path: str | None = None) -> tuple[int, str]:
    """``dockerboot-wizard install`` as typed; ``kill_at``: SIGKILL it when a line has that.

    ``path``: the wizard's PATH (a stand-in tool first), else this one's.
    """
    cmd = ["dockerboot-wizard", "install", where, loop, "--for-another-machine",
           "--label", label, "--image", IMAGE, "--image-archive", str(archive),
           "--user", USER, "--password-file", str(pw), "--admin", USER,
           "--hostname", "newbox", "--kernel-options", options, "--yes"]
    out = []
    env = {**os.environ, "PATH": path} if path else None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if kill_at is not None and kill_at in line:
                proc.kill()  # the wizard only: its private dockerd is left running
                break
        return proc.wait(timeout=2400), "".join(out)


def install_dirs() -> list[Path]:
    run_dir = Path("/run/dockerboot-wizard")
    return sorted(run_dir.glob("install-*")) if run_dir.is_dir() else []


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The image as ``docker save`` wrote it somewhere else, and its ID."""
    work = tmp_path_factory.mktemp("saved")
    archive = work / "image.tar"
    with lab.docker_disk(work) as dd:
        # dracut (systemd in the initramfs): the other generator through the same chain.
        scenario.build_image(dd.daemon, "dracut", IMAGE, marker="installed", systemd=True,
                             secure_boot=True)
        image_id = dd.daemon.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        dd.daemon.docker("save", "-o", archive, IMAGE, timeout=900)
    return archive, image_id


def password_file(work: Path) -> Path:
    pw = work / "pw"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return pw


def test_a_blank_disk_becomes_a_machine_that_boots(tmp_path_factory: pytest.TempPathFactory,
                                                   saved: tuple[Path, str]) -> None:
    work = tmp_path_factory.mktemp("install")
    archive, image_id = saved
    disk = work / "disk.img"
    lab.run("truncate", "-s", "8G", disk)
    pw = password_file(work)
    label = lab.unique_label()
    loop = lab.run("losetup", "--show", "-f", disk).stdout.strip()
    others = install_dirs()  # another module's install may run beside this one
    try:
        # Killed once the image is in the new store: its dockerd and mount stay behind.
        code, out = install(loop, label, archive, pw, kill_at="    [image] done")
        assert code == -9, out[-4000:]
        assert "no partition table" in out and "destroyed: nothing" in out
        assert f"[disk] done: LABEL={label} on {loop}" in out
        assert f"[image] done: {IMAGE} loaded from {archive}" in out
        left = [d for d in install_dirs() if d not in others]
        assert left and (left[0] / "dockerd/dockerd.pid").is_file()
        # The rerun stops what the killed one left, formats nothing, and finishes.
        code, out = install(loop, label, archive, pw)
        assert code == 0, out[-4000:]
        assert "stopped the docker daemon a killed install left" in out
        assert "is there already (an earlier run): nothing is formatted" in out
        assert f"[image] done: {IMAGE} is there already" in out
        assert "/EFI/BOOT/BOOTX64.EFI: new" in out and "the disk goes to another machine" in out
        # No --bootloader: an empty ESP and an image with the signed pair choose GRUB.
        assert "written: GRUB (no rEFInd on the ESP" in out, out[-4000:]
        assert [d for d in install_dirs() if d not in others] == []
        assert str(left[0]) not in Path("/proc/self/mountinfo").read_text()
    finally:
        lab.run("sync")
        lab.run("partx", "-d", loop, check=False)
        lab.run("losetup", "-d", loop, check=False)
    fat = f"{disk}@@1M"
    listing = lab.run("mdir", "-/", "-b", "-i", fat, "::/").stdout.split()
    assert {"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/dockerboot/shimx64.efi",
            "::/EFI/dockerboot/grub.cfg"} <= set(listing), listing

    with booted(disk, work / "boot.serial.log", secure_boot=True) as console:
        console.login(USER, PASSWORD, timeout=900)
        assert "SecureBoot enabled" in ok(console, "mokutil --sb-state")
        assert "[integrity]" in ok(console, "cat /sys/kernel/security/lockdown")
        assert ok(console, "cat /etc/dbw-image-marker") == "installed"
        assert ok(console, "findmnt -n -o FSROOT /") == "/docker_rwlayer"
        assert ok(console, "cat /etc/hostname") == "newbox"
        state = console.run("systemctl is-system-running --wait", timeout=600)[1]
        failed = ok(console, "systemctl --failed --no-legend --plain")
        assert (state, failed) == ("running", ""), f"{state}: {failed}"
        assert sudo(console, "docker info --format '{{.Driver}}'") == "btrfs"
        assert sudo(console, f"docker image inspect -f '{{{{.Id}}}}' {IMAGE}") == image_id
        console.poweroff(PASSWORD)
    serial = (work / "boot.serial.log").read_text(errors="replace")
    assert "EFI stub: UEFI Secure Boot is enabled." in serial, serial[-3000:]
    assert re.search(r"systemd\[1\]|Welcome to .*dracut", serial), serial[-5000:]


KILLS = ("new partition in the free space", "==> [image]", "==> [initramfs]", "==> [firmware]")
"""Where the free-space install is killed, one kill per run: in the disk step between
the partition and its filesystem, loading the image, in apply, at the boot entry."""


def other_system(loop: str, work: Path) -> dict[str, str]:
    """Another system's files on the ESP ``{loop}p1``, and their SHA-256 by path."""
    # Windows and Fedora (another vendor's GRUB: Debian's signed GRUB, the image's,
    # would read a Debian grub.cfg on the ESP before its own, and is refused then).
    files = {"EFI/Microsoft/Boot/bootmgfw.efi": os.urandom(300_000),
             "EFI/Microsoft/Boot/BCD": os.urandom(30_000),
             "EFI/fedora/grubx64.efi": os.urandom(200_000),
             "EFI/fedora/grub.cfg": b"search --fs-uuid 1234 --set root\nset timeout=5\n"}
    for name, data in files.items():
        (work / "f").write_bytes(data)
        parts = name.split("/")
        for depth in range(1, len(parts)):
            lab.run("mmd", "-D", "s", "-i", f"{loop}p1", "::/" + "/".join(parts[:depth]),
                    check=False)
        lab.run("mcopy", "-i", f"{loop}p1", work / "f", f"::/{name}")
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def esp_files(loop: str, names: list[str], work: Path) -> dict[str, str]:
    out = {}
    for name in names:
        lab.run("mcopy", "-o", "-i", f"{loop}p1", f"::/{name}", work / "back")
        out[name] = hashlib.sha256((work / "back").read_bytes()).hexdigest()
    return out


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_free_space_beside_another_system_after_a_kill_at_every_step_boots(
        tmp_path_factory: pytest.TempPathFactory, saved: tuple[Path, str]) -> None:
    work = tmp_path_factory.mktemp("free")
    archive, _ = saved
    disk = work / "disk.img"
    lab.run("truncate", "-s", "8G", disk)
    lab.run("sgdisk", "-n1:1M:+400M", "-t1:ef00", "-c1:EFI system", "-n2:0:+1G", "-t2:8300",
            "-c2:other", disk)
    pw = password_file(work)
    label = lab.unique_label()
    loop = lab.run("losetup", "--show", "-f", disk).stdout.strip()
    try:
        lab.run("partx", "-u", loop)
        lab.udev_settle()
        lab.run("mkfs.vfat", "-F", "32", "-n", "EFI", f"{loop}p1")
        (work / "home").mkdir()
        (work / "home" / "notes.txt").write_text("the other system's own file\n")
        lab.run("mkfs.ext4", "-q", "-L", "other", "-d", work / "home", f"{loop}p2")
        theirs = other_system(loop, work)
        table = [lab.run("sgdisk", "-i", n, loop).stdout for n in ("1", "2")]
        ext4 = sha256_of(f"{loop}p2")
        others = install_dirs()  # another module's install may run beside this one
        # The first kill must land between the partition and its filesystem: mkfs.btrfs
        # stands still there (a stand-in first on PATH), so the kill cannot come late.
        shim = work / "slow"
        shim.mkdir()
        (shim / "mkfs.btrfs").write_text(f"#!/bin/sh\necho $$ > {shim}/pid\nexec sleep 600\n")
        (shim / "mkfs.btrfs").chmod(0o755)
        runs = []
        for kill in (*KILLS, None):
            slow = f"{shim}:{os.environ['PATH']}" if kill == KILLS[0] else None
            code, out = install(loop, label, archive, pw, kill_at=kill, where="--free-space",
                                options=TEST_INIT_KERNEL_OPTIONS, path=slow)
            assert code == (-9 if kill else 0), (kill, out[-4000:])
            runs.append(out)
            time.sleep(0.5)
            if slow and (shim / "pid").exists():  # the stand-in had started: it goes too
                os.kill(int((shim / "pid").read_text()), signal.SIGKILL)
        # Killed between the partition and its filesystem: the rerun formats that one.
        assert "reused: the ESP" in runs[0] and "destroyed: nothing" in runs[0]
        assert "formatted: " in runs[1] and f'as btrfs "{label}"' in runs[1], runs[1][-4000:]
        # Killed loading the image: the rerun stops the daemon it left, loads again.
        assert "stopped the docker daemon a killed install left" in runs[2], runs[2][-4000:]
        assert f"[image] done: {IMAGE} loaded from {archive}" in runs[2]
        assert all("nothing is formatted" in out for out in runs[2:])
        assert f"[image] done: {IMAGE} is there already" in runs[-1]
        assert "the disk goes to another machine" in runs[-1]
        assert [d for d in install_dirs() if d not in others] == []
        # Nothing of the other system changed.
        assert sha256_of(f"{loop}p2") == ext4
        assert [lab.run("sgdisk", "-i", n, loop).stdout for n in ("1", "2")] == table
        assert esp_files(loop, list(theirs), work) == theirs
        listing = lab.run("mdir", "-/", "-b", "-i", f"{loop}p1", "::/").stdout.split()
        assert {"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/dockerboot/shimx64.efi"} <= set(listing)
    finally:
        lab.run("sync")
        lab.run("partx", "-d", loop, check=False)
        lab.run("losetup", "-d", loop, check=False)
        lab.udev_settle()

    log = work / "boot.serial.log"
    with booted(disk, log, secure_boot=True) as console:
        console.wait_exit(900)
    serial = log.read_text(errors="replace")
    seen = facts(serial)
    assert "EFI stub: UEFI Secure Boot is enabled." in serial, serial[-3000:]
    assert seen.get("done") == "yes", serial[-5000:]
    assert seen["root_subvol"] == "/docker_rwlayer" and seen["image_marker"] == "installed"
    assert seen["hostname"] == "newbox"
