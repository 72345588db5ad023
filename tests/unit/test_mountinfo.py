"""mountinfo parsing, data-root → docker_path, and the storage-driver check (pure)."""

from pathlib import Path

import pytest

from wizard.docker_daemon import DAEMON_JSON, DaemonInfo, check_storage, docker_path_for
from wizard.errors import DockerError
from wizard.mountinfo import parse_mountinfo
from wizard.partitions import Partition, is_on

DATA = Path(__file__).parent / "data" / "mountinfo"
# top_level.txt: recorded on the lab machine, top level mounted, dockerd's data-root
# <mnt>/docker (dockerd bind-mounts its data-root and btrfs/ dir onto themselves).
TOP_LEVEL = (DATA / "top_level.txt").read_text()
# subvol.txt: an installed system, root is subvol @, subvolume docker on /var/lib/docker.
SUBVOL = (DATA / "subvol.txt").read_text()
# escaped.txt: spaces, tabs and backslashes are \ooo-escaped by the kernel.
ESCAPED = (DATA / "escaped.txt").read_text()

PART = Partition(label="ROOTFS", uuid="u", device="/dev/loop0", size=1, devnum=(7, 0))
NVME = Partition(label="ROOTFS", uuid="u", device="/dev/nvme0n1p2", size=1, devnum=(259, 2))


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


def test_docker_path_top_level_mount():
    assert docker_path_for("/tmp/lab/mnt/docker", PART, TOP_LEVEL) == "docker"


def test_docker_path_deeper_under_top_level():
    assert docker_path_for("/tmp/lab/mnt/data/docker", PART, TOP_LEVEL) == "data/docker"


def test_docker_path_subvolume_mounted_directly():
    assert docker_path_for("/var/lib/docker", NVME, SUBVOL) == "docker"


def test_docker_path_inside_root_subvolume():
    # data-root is a plain directory in the root subvolume @.
    assert docker_path_for("/srv/docker", NVME, SUBVOL) == "@/srv/docker"


def test_docker_path_not_prefix_by_string():
    # /var/lib/docker-other is not under /var/lib/docker.
    assert docker_path_for("/var/lib/docker-other", NVME, SUBVOL) == "@/var/lib/docker-other"


def test_docker_path_other_device_is_refused():
    with pytest.raises(DockerError) as e:
        docker_path_for("/var/lib/docker", PART, SUBVOL)
    msg = str(e.value)
    assert "/dev/nvme0n1p2" in msg and "LABEL=ROOTFS" in msg and "data-root" in msg
    assert "\n" not in msg


def test_docker_path_on_ext4_is_refused():
    ext4 = "27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    with pytest.raises(DockerError, match=r"on /dev/sda1 \(ext4\), not on LABEL=ROOTFS"):
        docker_path_for("/var/lib/docker", PART, ext4)


def test_docker_path_top_level_itself_is_refused():
    with pytest.raises(DockerError, match="top level"):
        docker_path_for("/tmp/lab/mnt", PART, TOP_LEVEL)


def test_docker_path_stacked_mount_later_wins():
    stacked = TOP_LEVEL + (
        "90 42 0:50 / /tmp/lab/mnt/docker rw - tmpfs tmpfs rw\n")
    with pytest.raises(DockerError, match="tmpfs"):
        docker_path_for("/tmp/lab/mnt/docker", PART, stacked)


def test_daemon_info_from_docker_info():
    info = DaemonInfo.from_info({"Driver": "btrfs", "DriverStatus": [["Btrfs", ""]],
                                 "DockerRootDir": "/var/lib/docker",
                                 "ServerVersion": "28.2.2"})
    assert info == DaemonInfo("btrfs", (("Btrfs", ""),), "/var/lib/docker", "28.2.2")
    assert not info.containerd_store
    check_storage(info)  # the one accepted setup: must not raise


@pytest.mark.parametrize("raw, words", [
    ({"Driver": "overlayfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]},
     "containerd image store"),
    ({"Driver": "btrfs", "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]},
     "containerd image store"),
    ({"Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "btrfs"]]}, "overlay2"),
    ({"Driver": "vfs", "DriverStatus": None}, "vfs"),
])
def test_check_storage_refuses_with_daemon_json(raw, words):
    info = DaemonInfo.from_info({**raw, "DockerRootDir": "/var/lib/docker"})
    with pytest.raises(DockerError) as e:
        check_storage(info)
    msg = str(e.value)
    assert words in msg
    assert DAEMON_JSON in msg and "/etc/docker/daemon.json" in msg
    assert "again" in msg and "\n" not in msg


def test_daemon_json_is_valid_and_explicit():
    import json

    assert json.loads(DAEMON_JSON) == {"storage-driver": "btrfs",
                                       "features": {"containerd-snapshotter": False}}
