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
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_grub_secure_boot import ok
from tests.lab import lab, scenario
from wizard.sandbox.console import Console, booted

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

USER, PASSWORD = "ida", "ida-pw-3"
IMAGE = "dbw-install/dracut:first"


def sudo(console: Console, command: str) -> str:
    return ok(console, f"echo {PASSWORD} | sudo -S -p '' {command}")


def install(loop: str, label: str, archive: Path, pw: Path, *,
            kill_at: str | None = None) -> tuple[int, str]:
    """``dockerboot-wizard install`` as typed; ``kill_at``: SIGKILL it when a line has that."""
    cmd = ["dockerboot-wizard", "install", "--disk", loop, "--for-another-machine",
           "--label", label, "--image", IMAGE, "--image-archive", str(archive),
           "--user", USER, "--password-file", str(pw), "--admin", USER,
           "--hostname", "newbox", "--kernel-options", "console=ttyS0", "--yes"]
    out = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL) as proc:
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


def test_a_blank_disk_becomes_a_machine_that_boots(tmp_path_factory: pytest.TempPathFactory
                                                   ) -> None:
    work = tmp_path_factory.mktemp("install")
    archive = work / "image.tar"
    (work / "build").mkdir()
    with lab.docker_disk(work / "build") as dd:  # somewhere else, as `docker save` would be
        # dracut (systemd in the initramfs): the other generator through the same chain.
        scenario.build_image(dd.daemon, "dracut", IMAGE, marker="installed", systemd=True,
                             secure_boot=True)
        image_id = dd.daemon.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        dd.daemon.docker("save", "-o", archive, IMAGE, timeout=900)
    disk = work / "disk.img"
    lab.run("truncate", "-s", "8G", disk)
    pw = work / "pw"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
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
