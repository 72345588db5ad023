"""A new machine from an image without the signed shim + GRUB: install puts rEFInd there.

The sample initramfs-tools image (no ``shim-signed``, no
``grub-efi-amd64-signed``) saved to an archive; a blank sparse disk;
``install --disk`` with no ``--bootloader``.  The image cannot carry GRUB
with Secure Boot, so install lays out rEFInd from this machine's ``refind``
package on the new ESP (the removable path, its stock ``refind.conf``) and
apply adds its block.  OVMF without Secure Boot and with empty NVRAM boots
it: rEFInd's default entry, the hook, the image's test init reporting the
snapshot root.  A rerun changes nothing on the ESP's rEFInd.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.lab import lab, qemu, scenario
from wizard.sandbox import TEST_INIT_KERNEL_OPTIONS

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

IMAGE = "dbw-install/plain:first"


def install(loop: str, label: str, archive: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dockerboot-wizard", "install", "--disk", loop, "--for-another-machine",
         "--label", label, "--image", IMAGE, "--image-archive", str(archive),
         "--hostname", "plainbox", "--kernel-options", TEST_INIT_KERNEL_OPTIONS, "--yes"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=2400)


def esp_file(disk: Path, name: str) -> bytes:
    out = subprocess.run(["mtype", "-i", f"{disk}@@1M", f"::/{name}"], capture_output=True,
                         check=True)
    return out.stdout


def test_an_image_without_the_signed_pair_boots_through_refind_install_put_there(
        tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    (tmp_path / "build").mkdir()
    with lab.docker_disk(tmp_path / "build") as dd:
        scenario.build_image(dd.daemon, "initramfs-tools", IMAGE, marker="plain")
        dd.daemon.docker("save", "-o", archive, IMAGE, timeout=900)
    disk = tmp_path / "disk.img"
    lab.run("truncate", "-s", "6G", disk)
    label = lab.unique_label()
    loop = lab.run("losetup", "--show", "-f", disk).stdout.strip()
    try:
        done = install(loop, label, archive)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr
        assert "rEFInd from this machine's refind package put in EFI/BOOT" in done.stdout
        assert "written: rEFInd" in done.stdout, done.stdout[-4000:]
        first = hashlib.sha256(esp_file(disk, "EFI/BOOT/BOOTX64.EFI")).hexdigest()
        again = install(loop, label, archive)
        assert again.returncode == 0, again.stdout[-4000:] + again.stderr
        assert "rEFInd is on the ESP already" in again.stdout
    finally:
        lab.run("sync")
        lab.run("partx", "-d", loop, check=False)
        lab.run("losetup", "-d", loop, check=False)
        lab.udev_settle()
    assert hashlib.sha256(esp_file(disk, "EFI/BOOT/BOOTX64.EFI")).hexdigest() == first
    with open("/usr/share/refind/refind/refind_x64.efi", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == first  # the package's own loader
    conf = esp_file(disk, "EFI/BOOT/refind.conf").decode()
    stock = Path("/usr/share/refind/refind/refind.conf-sample").read_text()
    assert conf.startswith(stock.splitlines()[0]) and f"LABEL={label}" in conf

    serial = qemu.boot(disk, tmp_path / "boot.serial.log", timeout=900)
    facts = qemu.facts(serial)
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["root_subvol"] == "/docker_rwlayer" and facts["image_marker"] == "plain"
    assert facts["hostname"] == "plainbox"
    assert os.path.getsize(disk) == 6 << 30
