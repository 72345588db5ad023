"""The machine's whole disks (one lsblk), the target chosen on one, the typed confirmation."""

from __future__ import annotations

import json

import pytest

from wizard.disk import disks, layout
from wizard.disk.disks import Chosen, Target, typed_confirms
from wizard.disk.layout import GIB, MIB
from wizard.install import sizes


def device(name: str, kind: str, size: int, *children: dict, **more: object) -> dict:
    return {"name": name, "path": f"/dev/{name}", "type": kind, "size": size, "model": None,
            "pttype": None, "fstype": None, "label": None, "parttype": None,
            "mountpoints": [None], "children": list(children), **more}


LSBLK = json.dumps({"blockdevices": [
    device("loop0", "loop", 6 * GIB, fstype="btrfs", label="dbw", mountpoints=["/mnt"]),
    device("loop1", "loop", 0),  # attached to nothing
    device("zram0", "disk", 4 * GIB, mountpoints=["[SWAP]"]),
    device("sr0", "rom", 1 * GIB),
    device("sda", "disk", 256 * GIB,
           device("sda1", "part", 512 * MIB, fstype="vfat", parttype=layout.ESP_TYPE,
                  mountpoints=["/boot/efi"]),
           device("sda2", "part", 255 * GIB, fstype="ext4", mountpoints=["/"]),
           model="Root SSD ", pttype="gpt"),
    device("sdb", "disk", 64 * GIB),
]})


def test_every_whole_disk_is_listed_with_its_partitions_and_nothing_else():
    found = disks.parse_disks(LSBLK)
    assert [d.path for d in found] == ["/dev/loop0", "/dev/sda", "/dev/sdb"]
    root = found[1]
    assert root.model == "Root SSD" and root.pttype == "gpt"
    assert [p.path for p in root.parts] == ["/dev/sda1", "/dev/sda2"]
    assert root.mounted == ["/boot/efi", "/"] and root.esp == root.parts[0]
    assert found[0].mounted == ["/mnt"]  # a filesystem on the whole device


def test_no_block_device_at_all_is_an_empty_list():
    assert disks.parse_disks('{"blockdevices": []}') == []


BLANK = disks.parse_disks(LSBLK)[2]
WHOLE = Chosen(Target("disk", "/dev/sdb", "newbox"), BLANK,
               layout.plan_disk(BLANK, "newbox", need=sizes.DEFAULT_NEED,
                                boot_bytes=sizes.BOOT_BYTES, efi=None))


@pytest.mark.parametrize(("typed", "ok"), [
    ("/dev/sdb", True), ("  /dev/sdb\n", True), ("", False), ("/dev/sd", False),
    ("sdb", False), ("/dev/sdc", False), ("/DEV/SDB", False)])
def test_a_whole_disk_goes_only_with_its_name_typed_exactly(typed, ok):
    assert WHOLE.asks_for_name and typed_confirms(WHOLE, typed) is ok


def test_nothing_is_typed_for_a_partition_or_for_a_disk_an_earlier_run_made():
    made = Chosen(WHOLE.target, BLANK, None)
    assert not made.asks_for_name and typed_confirms(made, "")
    assert "LABEL=newbox is there already (an earlier run): nothing is formatted" in (
        made.describe())
    assert WHOLE.describe() == WHOLE.plan.describe()


def test_the_least_size_grows_with_a_large_archive(tmp_path):
    assert sizes.need() == sizes.DEFAULT_NEED == 4 * GIB
    small = tmp_path / "small.tar"
    small.write_bytes(b"x" * 1024)
    assert sizes.need(small) == sizes.DEFAULT_NEED
    big = tmp_path / "big.tar"
    with big.open("wb") as f:
        f.truncate(3 * GIB)  # sparse
    assert sizes.need(big) == 7 * GIB
    assert layout.esp_size(sizes.BOOT_BYTES) == layout.MIN_ESP
