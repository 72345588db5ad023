"""docker_daemon: data-root -> docker_path on the partition, and the storage-driver check (pure)."""

import json
from pathlib import Path

import pytest

from wizard.common.errors import DockerError
from wizard.disk.partitions import Partition
from wizard.store.docker_daemon import DAEMON_JSON, DaemonInfo, check_storage, docker_path_for

DATA = Path(__file__).parent / "data" / "mountinfo"
# The lab's top level mounted, dockerd's data-root <mnt>/docker (see test_mountinfo).
TOP_LEVEL = (DATA / "top_level.txt").read_text()
# An installed system: root is subvol @, subvolume docker on /var/lib/docker.
SUBVOL = (DATA / "subvol.txt").read_text()
PART = Partition(label="ROOTFS", uuid="u", device="/dev/loop0", size=1, devnum=(7, 0))
NVME = Partition(label="ROOTFS", uuid="u", device="/dev/nvme0n1p2", size=1, devnum=(259, 2))


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
    assert json.loads(DAEMON_JSON) == {"storage-driver": "btrfs",
                                       "features": {"containerd-snapshotter": False}}
