"""mountinfo: the mount table parsed (escapes, optional fields), mounts matched to a partition."""

from pathlib import Path

from wizard.common.mountinfo import parse_mountinfo
from wizard.disk.partitions import Partition, is_on

DATA = Path(__file__).parent / "data" / "mountinfo"
# top_level.txt: recorded on the lab machine, top level mounted, dockerd's data-root
# <mnt>/docker (dockerd bind-mounts its data-root and btrfs/ dir onto themselves).
TOP_LEVEL = (DATA / "top_level.txt").read_text()
# subvol.txt: an installed system, root is subvol @, subvolume docker on /var/lib/docker.
SUBVOL = (DATA / "subvol.txt").read_text()
# escaped.txt: spaces, tabs and backslashes are \ooo-escaped by the kernel.
ESCAPED = (DATA / "escaped.txt").read_text()

PART = Partition(label="ROOTFS", uuid="u", device="/dev/loop0", size=1, devnum=(7, 0))


def test_parse_fields_and_optional_fields():
    entries = parse_mountinfo(TOP_LEVEL)
    assert len(entries) == 5
    e = entries[3]
    assert (e.mount_id, e.parent_id, e.devnum) == (42, 43, (0, 39))
    assert (e.root, e.mountpoint, e.fstype, e.source) == (
        "/docker", "/tmp/lab/mnt/docker", "btrfs", "/dev/loop0")
    assert e.options == "rw,relatime"
    assert "subvolid=5" in e.super_options
    assert not e.read_only


def test_parse_octal_escapes():
    (e,) = parse_mountinfo(ESCAPED)
    assert e.root == "/my data"
    assert e.mountpoint == "/mnt/with space\ttab"
    assert e.source == "/dev/my\\disk"


def test_parse_skips_garbage_lines():
    entries = parse_mountinfo("garbage\n\n" + SUBVOL + "1 2 x\n")
    assert [e.mountpoint for e in entries] == ["/", "/var/lib/docker", "/boot/efi"]


def test_read_only_flag():
    (e,) = parse_mountinfo("5 1 0:9 / /ro ro,relatime - btrfs /dev/x rw\n")
    assert e.read_only


def test_is_on_matches_source_not_anonymous_devnum():
    entries = parse_mountinfo(TOP_LEVEL)
    assert [is_on(e, PART) for e in entries] == [False, False, True, True, True]
    other = Partition(label="x", uuid="v", device="/dev/loop9", size=1, devnum=(7, 9))
    assert not any(is_on(e, other) for e in entries)
