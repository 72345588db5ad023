"""A disk for a new machine: lsblk read, the three targets planned, every refusal one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wizard.common.errors import PartitionError
from wizard.disk import layout
from wizard.disk.layout import GIB, MIB

ESP_TYPE = layout.ESP_TYPE
LINUX = "0fc63daf-8483-4772-8e79-3d69d8477de4"
WINDOWS = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"


def lsblk(path: str, size: int, pttype: str | None, *children: dict, model: str = "WDC SN730",
          mountpoints: list | None = None, kind: str = "disk") -> str:
    return json.dumps({"blockdevices": [{
        "name": path[5:], "path": path, "type": kind, "size": size, "model": model,
        "pttype": pttype, "fstype": None, "label": None, "parttype": None,
        "mountpoints": mountpoints or [None], "children": list(children)}]})


def part(path: str, size: int, fstype: str | None = None, label: str | None = None,
         parttype: str = LINUX, mountpoints: list | None = None) -> dict:
    return {"name": path[5:], "path": path, "type": "part", "size": size, "model": None,
            "pttype": "gpt", "fstype": fstype, "label": label, "parttype": parttype,
            "mountpoints": mountpoints or [None]}


BLANK = layout.parse_lsblk(lsblk("/dev/sdb", 64 * GIB, None, model=" Samsung SSD 870 "))
DUAL = layout.parse_lsblk(lsblk(
    "/dev/nvme0n1", 512 * GIB, "gpt",
    part("/dev/nvme0n1p1", 300 * MIB, "vfat", "SYSTEM", ESP_TYPE, ["/boot/efi"]),
    part("/dev/nvme0n1p2", 200 * GIB, "ntfs", "Windows", WINDOWS),
    part("/dev/nvme0n1p3", 100 * GIB, "ext4", None, LINUX, ["/"]),
    part("/dev/nvme0n1p4", 8 * GIB, "swap", None, LINUX, ["[SWAP]"])))
UNMOUNTED = layout.parse_lsblk(lsblk(
    "/dev/sdc", 256 * GIB, "gpt",
    part("/dev/sdc1", 512 * MIB, "vfat", "EFI", ESP_TYPE.upper()),
    part("/dev/sdc2", 100 * GIB, "ext4", "data"),
    part("/dev/sdc3", 50 * GIB)))
MBR = layout.parse_lsblk(lsblk("/dev/sdd", 128 * GIB, "dos",
                               part("/dev/sdd1", 100 * GIB, "ntfs", "Data", "0x7")))
NEED = 4 * GIB
BOOT = 80 * MIB


@pytest.fixture
def efi(tmp_path: Path) -> Path:
    (tmp_path / "efi").mkdir()
    return tmp_path / "efi"


def test_lsblk_is_read_into_the_disk_and_its_partitions() -> None:
    assert BLANK.describe() == "/dev/sdb: Samsung SSD 870, 64.0 GiB, no partition table"
    assert BLANK.parts == () and BLANK.mounted == [] and BLANK.esp is None
    assert DUAL.esp is not None and DUAL.esp.path == "/dev/nvme0n1p1"
    assert UNMOUNTED.esp is not None  # the type GUID in either case
    assert DUAL.mounted == ["/boot/efi", "/", "[SWAP]"]
    assert DUAL.parts[0].describe() == ('/dev/nvme0n1p1 (vfat "SYSTEM", 300 MiB, '
                                        "mounted on /boot/efi)")
    assert UNMOUNTED.parts[2].describe() == "/dev/sdc3 (no filesystem, 50.0 GiB)"
    with pytest.raises(PartitionError, match="is a part, not a whole disk.*--partition"):
        layout.parse_lsblk(lsblk("/dev/sdc1", GIB, None, kind="part"))


def test_the_esp_holds_two_generations_one_being_copied_and_the_chain() -> None:
    assert layout.esp_size(10 * MIB) == layout.MIN_ESP
    big = layout.esp_size(300 * MIB + 1)
    assert big % MIB == 0 and big >= 3 * (300 * MIB + 1) + layout.CHAIN_BYTES


def test_a_whole_disk_plan_names_what_is_destroyed(efi: Path) -> None:
    plan = layout.plan_disk(UNMOUNTED, "dockerboot", need=NEED, boot_bytes=BOOT, efi=efi)
    text = plan.describe()
    assert text.splitlines()[0] == "/dev/sdc: WDC SN730, 256.0 GiB, GPT"
    for line in ('destroyed: /dev/sdc1 (vfat "EFI", 512 MiB)',
                 'destroyed: /dev/sdc2 (ext4 "data", 100.0 GiB)',
                 "destroyed: /dev/sdc3 (no filesystem, 50.0 GiB)",
                 "new: EFI system partition, FAT32, 512 MiB", 'new: btrfs "dockerboot"'):
        assert line in text
    blank = layout.plan_disk(BLANK, "dockerboot", need=NEED, boot_bytes=BOOT, efi=efi)
    assert "destroyed: nothing" in blank.describe() and blank.esp_size == layout.MIN_ESP


@pytest.mark.parametrize(("disk", "match"), [
    (DUAL, r"^/dev/nvme0n1 holds the running system's root \(/\)$"),
    (layout.parse_lsblk(lsblk("/dev/sde", 64 * GIB, "gpt",
                              part("/dev/sde1", GIB, "ext4", "x", LINUX, ["/mnt/x"]))),
     r"^/dev/sde has mounted filesystems \(/mnt/x\)$"),
    (layout.parse_lsblk(lsblk("/dev/sdf", 2 * GIB, None)),
     r"^/dev/sdf is 2.0 GiB: the ESP and the image need 4.5 GiB$"),
])
def test_a_whole_disk_is_refused_in_one_line(disk: layout.Disk, match: str, efi: Path) -> None:
    with pytest.raises(PartitionError) as e:
        layout.plan_disk(disk, "dockerboot", need=NEED, boot_bytes=BOOT, efi=efi)
    assert re.match(match, e.value.problem) and e.value.fix and "\n" not in str(e.value)


def test_a_machine_that_did_not_boot_by_uefi_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PartitionError, match="no /sys/firmware/efi.*CSM off"):
        layout.plan_disk(BLANK, "dockerboot", need=NEED, boot_bytes=BOOT, efi=tmp_path / "no")


def test_free_space_keeps_the_esp_and_needs_gpt(efi: Path) -> None:
    free = (2048 * 1000, 2048 * 1000 + (60 * GIB) // 512 - 1)
    plan = layout.plan_free(UNMOUNTED, "dockerboot", free, need=NEED, efi=efi)
    text = plan.describe()
    assert "destroyed: nothing" in text and 'new: btrfs "dockerboot" in the free space ' \
        "(60.0 GiB)" in text and "reused: the ESP /dev/sdc1" in text
    with pytest.raises(PartitionError, match=r"MBR partition table.*sgdisk --mbrtogpt /dev/sdd"):
        layout.plan_free(MBR, "dockerboot", free, need=NEED, efi=efi)
    with pytest.raises(PartitionError, match="no partition table"):
        layout.plan_free(BLANK, "dockerboot", free, need=NEED, efi=efi)
    no_esp = layout.parse_lsblk(lsblk("/dev/sdg", 64 * GIB, "gpt", part("/dev/sdg1", GIB)))
    with pytest.raises(PartitionError, match="no EFI system partition"):
        layout.plan_free(no_esp, "dockerboot", free, need=NEED, efi=efi)
    with pytest.raises(PartitionError, match="has 1.0 GiB free in one piece"):
        layout.plan_free(UNMOUNTED, "dockerboot", (2048, 2048 + GIB // 512 - 1), need=NEED,
                         efi=efi)


def test_only_an_empty_unmounted_partition_is_formatted(efi: Path) -> None:
    plan = layout.plan_partition(UNMOUNTED, "/dev/sdc3", "dockerboot", need=NEED, efi=efi)
    assert 'formatted: /dev/sdc3 as btrfs "dockerboot"' in plan.describe()
    with pytest.raises(PartitionError, match=r'ext4 "data".*is not empty.*wipefs -a /dev/sdc2'):
        layout.plan_partition(UNMOUNTED, "/dev/sdc2", "dockerboot", need=NEED, efi=efi)
    with pytest.raises(PartitionError, match=r"/dev/nvme0n1p3 is mounted \(/\)"):
        layout.plan_partition(DUAL, "/dev/nvme0n1p3", "dockerboot", need=NEED, efi=efi)
    with pytest.raises(PartitionError, match="not a partition of /dev/sdc.*/dev/sdc1, "):
        layout.plan_partition(UNMOUNTED, "/dev/sdb1", "dockerboot", need=NEED, efi=efi)
    with pytest.raises(PartitionError, match="the image needs 64.0 GiB"):
        layout.plan_partition(UNMOUNTED, "/dev/sdc3", "dockerboot", need=64 * GIB, efi=efi)


def test_a_bad_label_is_refused_before_anything_else(efi: Path) -> None:
    with pytest.raises(Exception, match="label"):
        layout.plan_disk(BLANK, "bad label/x", need=NEED, boot_bytes=BOOT, efi=efi)


def test_only_an_empty_partition_named_after_the_label_is_taken_up_again() -> None:
    """A rerun formats what a killed run left, never another system's partition."""
    from wizard.install.flow import left_empty, made_before

    gib = 1 << 30
    disk = layout.Disk("/dev/sdz", 64 * gib, pttype="gpt", parts=(
        layout.Part("/dev/sdz1", gib, "vfat", "EFI", layout.ESP_TYPE),
        # Hostile: named like the label but holding a filesystem (someone else's data).
        layout.Part("/dev/sdz2", 8 * gib, "ext4", "home", partlabel="desk"),
        # Empty, but named otherwise: not the killed run's either.
        layout.Part("/dev/sdz3", 8 * gib, None, None, partlabel="spare")))
    assert left_empty(disk, "desk") is None and left_empty(disk, "spare") is not None
    assert made_before(disk, "home") is None  # ext4 labelled "home": not a btrfs of ours
    ours = layout.Part("/dev/sdz4", 8 * gib, None, None, partlabel="desk")
    assert left_empty(layout.Disk("/dev/sdz", 64 * gib, pttype="gpt",
                                  parts=(*disk.parts, ours)), "desk") == ours
