"""fstab: the lines offered for the discovered partitions, merged into a file kept byte-for-byte."""

from __future__ import annotations

from tests.unit.plans import PART
from wizard.disk.partitions import Partition
from wizard.toplayer import fstab

NOLABEL = Partition("", "cccc-dddd", "/dev/sdb1", 1 << 30, (8, 17))
SPACED = Partition("my disk", "eeee", "/dev/sdc1", 1 << 30, (8, 33))


def test_fstab_lines_for_boot_partition_by_label_and_others():
    lines = [s.line for s in fstab.suggestions([NOLABEL, PART, SPACED], "dbw", "docker")]
    assert lines[:2] == ["LABEL=dbw /var/lib/docker btrfs subvol=docker 0 0",
                         "LABEL=dbw /home btrfs subvol=home,nofail 0 0"]
    assert "UUID=cccc-dddd /mnt/cccc-ddd btrfs subvol=/ 0 0" in lines
    assert r"LABEL=my\040disk /mnt/my\040disk btrfs subvol=/ 0 0" in lines
    assert len(lines) == 4


def test_fstab_merge_appends_and_keeps_other_bytes():
    old = "# keep me\n\tproc  /proc proc defaults 0 0\n"
    new = fstab.merge_line(old, "LABEL=dbw /home btrfs subvol=home 0 0")
    assert new == old + "LABEL=dbw /home btrfs subvol=home 0 0\n"


def test_fstab_merge_replaces_same_mountpoint_only():
    old = ("# /home was here\r\nUUID=x /home ext4 defaults 0 2\r\n"
           "#LABEL=y /home btrfs subvol=old 0 0\r\nproc /proc proc defaults 0 0")
    new = fstab.merge_line(old, "LABEL=dbw /home btrfs subvol=home 0 0")
    assert new == ("# /home was here\r\nLABEL=dbw /home btrfs subvol=home 0 0\r\n"
                   "#LABEL=y /home btrfs subvol=old 0 0\r\nproc /proc proc defaults 0 0")


def test_fstab_merge_adds_line_end_matching_file():
    assert fstab.merge_line("a /x none 0 0", "b /y none 0 0") == "a /x none 0 0\nb /y none 0 0\n"
    assert fstab.merge_line("a /x n 0 0\r\nc /z n 0 0", "b /y n 0 0") \
        == "a /x n 0 0\r\nc /z n 0 0\r\nb /y n 0 0\n"
    assert fstab.merge_line("", "b /y n 0 0") == "b /y n 0 0\n"
