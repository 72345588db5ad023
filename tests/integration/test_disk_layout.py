"""A disk for a new machine, for real: sparse images on loop devices, sgdisk, mkfs, udev.

A blank disk gets a GPT with an ESP and a btrfs partition udev finds by its
label; the free space of a disk holding another system gets a btrfs partition
while that system's ESP and partition keep every byte; a disk with a mounted
filesystem is refused and keeps every byte too.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.lab import lab
from wizard.common.commands import run
from wizard.common.errors import PartitionError
from wizard.disk import fat, layout, partitions
from wizard.disk.layout import GIB, MIB
from wizard.sandbox import parts

pytestmark = pytest.mark.lab
NEED = 1 * GIB
BOOT = 60 * MIB


@contextlib.contextmanager
def loop(image: Path) -> Iterator[str]:
    dev = run("losetup", "--show", "-f", image).stdout.strip()
    try:
        run("partx", "-u", dev, check=False)  # a blank disk has none: exit 1
        parts.udev_settle()
        yield dev
    finally:
        run("sync")
        run("udevadm", "settle", check=False)
        parts._drop_partitions(dev)
        run("losetup", "-d", dev, check=False)
        parts.udev_settle()


def digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def efi(tmp_path: Path) -> Path:
    (tmp_path / "efi").mkdir()  # this host did not boot by UEFI: the check is given a dir
    return tmp_path / "efi"


def test_a_blank_disk_gets_an_esp_and_a_labelled_btrfs(tmp_path: Path, efi: Path) -> None:
    image = tmp_path / "blank.img"
    run("truncate", "-s", "3G", image)
    label = lab.unique_label()
    with loop(image) as dev:
        disk = layout.survey(dev)
        assert disk.pttype is None and disk.parts == ()
        plan = layout.plan_disk(disk, label, need=NEED, boot_bytes=BOOT, efi=efi)
        assert "destroyed: nothing" in plan.describe()
        done = list(layout.write(plan))
        assert done[-1] == f'{dev}p2: btrfs "{label}"'
        after = layout.survey(dev)
        assert after.pttype == "gpt" and [p.fstype for p in after.parts] == ["vfat", "btrfs"]
        assert after.esp is not None and after.esp.path == f"{dev}p1"
        assert after.esp.size == layout.MIN_ESP
        assert partitions.find_by_label(label).device == f"{dev}p2"  # udev has it
        # The same disk again: everything on it is named before it goes.
        again = layout.plan_disk(after, label, need=NEED, boot_bytes=BOOT, efi=efi)
        assert f'destroyed: {dev}p2 (btrfs "{label}", ' in again.describe()


def test_free_space_leaves_the_other_system_byte_for_byte(tmp_path: Path, efi: Path) -> None:
    image = tmp_path / "dual.img"
    run("truncate", "-s", "3G", image)
    run("sgdisk", "-n1:1M:+200M", "-t1:ef00", "-n2:0:+800M", "-t2:8300", image)
    label = lab.unique_label()
    with loop(image) as dev:
        run("mkfs.vfat", "-F", "32", "-n", "SYSTEM", f"{dev}p1")
        run("mkfs.ext4", "-q", "-L", "other", f"{dev}p2")
        loader = tmp_path / "bootmgfw.efi"
        loader.write_bytes(b"MZ another system's loader")
        run("mmd", "-i", f"{dev}p1", "::/EFI", "::/EFI/Microsoft")
        run("mcopy", "-i", f"{dev}p1", loader, "::/EFI/Microsoft/bootmgfw.efi")
        before = {p: digest(f"{dev}{p}") for p in ("p1", "p2")}
        disk = layout.survey(dev)
        plan = layout.plan_free(disk, label, layout.largest_free(dev), need=NEED, efi=efi)
        assert "destroyed: nothing" in plan.describe()
        assert f"reused: the ESP {dev}p1" in plan.describe()
        list(layout.write(plan))
        assert {p: digest(f"{dev}{p}") for p in ("p1", "p2")} == before
        after = layout.survey(dev)
        assert [(p.fstype, p.label) for p in after.parts] == [
            ("vfat", "SYSTEM"), ("ext4", "other"), ("btrfs", label)]
        assert partitions.find_by_label(label).device == f"{dev}p3"


def test_a_disk_with_a_mounted_filesystem_is_refused_and_kept(tmp_path: Path,
                                                              efi: Path) -> None:
    image = tmp_path / "busy.img"
    run("truncate", "-s", "2G", image)
    run("sgdisk", "-n1:1M:+300M", "-t1:8300", "-n2:0:+300M", "-t2:8300", image)
    with loop(image) as dev:
        run("mkfs.ext4", "-q", f"{dev}p1")
        before = digest(dev)
        (tmp_path / "mnt").mkdir()
        run("mount", "-o", "ro", f"{dev}p1", tmp_path / "mnt")
        try:
            disk = layout.survey(dev)
            with pytest.raises(PartitionError, match=f"{dev} has mounted filesystems"):
                layout.plan_disk(disk, lab.unique_label(), need=NEED, boot_bytes=BOOT,
                                 efi=efi)
            with pytest.raises(PartitionError, match=f"{dev}p1 is mounted"):
                layout.plan_partition(disk, f"{dev}p1", lab.unique_label(), need=100 * MIB,
                                      efi=efi)
        finally:
            run("umount", tmp_path / "mnt")
        assert digest(dev) == before
        # The other, empty partition: formatted after the same plan.
        label = lab.unique_label()
        plan = layout.plan_partition(layout.survey(dev), f"{dev}p2", label, need=100 * MIB,
                                     efi=efi)
        list(layout.write(plan))
        assert partitions.find_by_label(label).device == f"{dev}p2"


def test_the_esp_as_a_directory_writes_back_only_what_changed(tmp_path: Path) -> None:
    image = tmp_path / "esp.img"
    run("truncate", "-s", "300M", image)
    run("sgdisk", "-n1:1M:+200M", "-t1:ef00", image)
    with loop(image) as dev:
        esp = f"{dev}p1"
        run("mkfs.vfat", "-F", "32", "-n", "SYSTEM", esp)
        theirs = tmp_path / "bootmgfw.efi"
        theirs.write_bytes(b"MZ another system's loader")
        run("mmd", "-i", esp, "::/EFI", "::/EFI/Microsoft")
        run("mcopy", "-i", esp, theirs, "::/EFI/Microsoft/bootmgfw.efi")
        with fat.esp_directory(esp) as where:
            assert (where / "EFI/Microsoft/bootmgfw.efi").read_bytes() == theirs.read_bytes()
            (where / "EFI/dockerboot/x").mkdir(parents=True)
            (where / "EFI/dockerboot/x/grub.cfg").write_text("ours\n")
        assert not where.exists()
        listing = run("mdir", "-b", "-/", "-i", esp, "::/").stdout.split()
        assert "::/EFI/dockerboot/x/grub.cfg" in listing
        assert "::/EFI/Microsoft/bootmgfw.efi" in listing
        got = run("mtype", "-i", esp, "::/EFI/dockerboot/x/grub.cfg").stdout
        assert got == "ours\n"
        with fat.esp_directory(esp) as where:
            (where / "EFI/dockerboot/x/grub.cfg").unlink()
        listing = run("mdir", "-b", "-/", "-i", esp, "::/").stdout.split()
        assert "::/EFI/dockerboot/x/grub.cfg" not in listing
        copy = tmp_path / "back.efi"
        run("mcopy", "-i", esp, "::/EFI/Microsoft/bootmgfw.efi", copy)
        assert copy.read_bytes() == theirs.read_bytes()


def wizard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wizard.cli", "install", *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def root_disk() -> str:
    source = run("findmnt", "-n", "-o", "SOURCE", "/").stdout.strip()
    parent = run("lsblk", "-n", "-d", "-o", "PKNAME", source).stdout.strip()
    return f"/dev/{parent}" if parent else source


def test_install_refuses_in_one_line_and_changes_nothing(tmp_path: Path) -> None:
    small, mbr, big = tmp_path / "small.img", tmp_path / "mbr.img", tmp_path / "big.img"
    run("truncate", "-s", "1G", small)
    run("truncate", "-s", "8G", big)
    run("truncate", "-s", "2G", mbr)
    subprocess.run(["sfdisk", "-q", str(mbr)], input="label: dos\n,500M,83\n", text=True,
                   check=True, capture_output=True)
    root = root_disk()
    other = tmp_path / "other.img"
    run("truncate", "-s", "300M", other)
    taken = lab.unique_label()
    run("mkfs.btrfs", "-q", "-L", taken, other)
    with loop(small) as tiny, loop(mbr) as dos, loop(big) as blank, loop(other) as theirs:
        before = {d: digest(d) for d in (tiny, dos)}
        r = wizard(f"--disk={blank}", "--label", taken, "--image", "a:b",
                   "--for-another-machine", "--yes")  # another disk's label: ambiguous
        assert r.returncode == 1 and r.stderr.strip().endswith(
            f"LABEL={taken} is taken by {theirs}: the boot finds its partition by label "
            "— choose another label"), r.stderr
        cases = {
            f"--disk={root}": f"{root} holds the running system's root (/)",
            f"--disk={tiny}": f"{tiny} is 1.0 GiB: the ESP and the image need",
            f"--free-space={dos}": f"{dos} has an MBR partition table: UEFI boots from GPT",
        }
        for where, expected in cases.items():
            r = wizard(where, "--label", lab.unique_label(), "--image", "a:b",
                       "--for-another-machine", "--yes")
            assert r.returncode == 1 and expected in r.stderr, (where, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        r = wizard(f"--disk={tiny}", "--label", "bad/label", "--image", "a:b", "--yes")
        assert r.returncode == 1 and "label" in r.stderr and len(r.stderr.splitlines()) == 1
        # A typo in the typed confirmation: nothing happens.
        child = pexpect.spawn(sys.executable, ["-m", "wizard.cli", "install", f"--disk={blank}",
                                               "--label", lab.unique_label(), "--image", "a:b",
                                               "--for-another-machine"],
                              encoding="utf-8", timeout=120, dimensions=(40, 200))
        child.expect(f"Type {blank} to go ahead: ")
        child.sendline(blank + "x")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 1
        assert f"typed '{blank}x', not {blank}: nothing was changed" in child.before
        assert {d: digest(d) for d in (tiny, dos)} == before
        with open(blank, "rb") as f:  # no table: not a byte written at its start
            assert layout.survey(blank).pttype is None and not any(f.read(1 << 20))


def test_a_disk_that_changed_after_the_plan_is_not_written(tmp_path: Path, efi: Path) -> None:
    image = tmp_path / "late.img"
    run("truncate", "-s", "3G", image)
    run("sgdisk", "-n1:1M:+300M", "-t1:8300", image)
    with loop(image) as dev:
        run("mkfs.ext4", "-q", f"{dev}p1")
        plan = layout.plan_disk(layout.survey(dev), lab.unique_label(), need=NEED,
                                boot_bytes=BOOT, efi=efi)
        (tmp_path / "mnt").mkdir()
        # Mounted after the plan was shown; read-only, or ext4's lazy init would write to it.
        run("mount", "-o", "ro", f"{dev}p1", tmp_path / "mnt")
        try:
            before = digest(dev)
            with pytest.raises(PartitionError, match=f"{dev} changed since the plan was made"):
                list(layout.write(plan))
            assert digest(dev) == before
        finally:
            run("umount", tmp_path / "mnt")
