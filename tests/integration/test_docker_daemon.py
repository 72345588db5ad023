"""Docker daemon checks against real private dockerds on a real loop btrfs.

The partition is mounted twice, like on an installed system plus the wizard:
its top level, and the ``docker`` subvolume on its own mountpoint where
dockerd keeps its data-root.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.lab import lab
from wizard.common.errors import DockerError
from wizard.disk import partitions
from wizard.store import docker_daemon

pytestmark = pytest.mark.lab


@dataclass
class Env:
    disk: lab.Disk
    top: Path
    sub: Path
    daemon: lab.Dockerd


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("daemon")
    with lab.loop_disk(work, size="2G") as disk, \
            lab.mounted(disk.btrfs_dev, work / "top") as top:
        lab.run("btrfs", "subvolume", "create", top / "docker")
        with lab.mounted(disk.btrfs_dev, work / "sub", "subvol=docker") as sub, \
                lab.dockerd(sub) as daemon:
            yield Env(disk, top, sub, daemon)


@pytest.fixture()
def client(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[docker.DockerClient]:
    monkeypatch.setenv("DOCKER_HOST", env.daemon.host)
    c = docker_daemon.connect()
    yield c
    c.close()


def test_connect_honours_docker_host(env: Env, client: docker.DockerClient) -> None:
    info = docker_daemon.daemon_info(client)
    assert info.docker_root_dir == str(env.sub)
    assert info.driver == "btrfs" and not info.containerd_store
    assert info.server_version
    docker_daemon.check_storage(info)  # the classic btrfs driver passes


def test_connect_unreachable_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(DockerError) as e:
        docker_daemon.connect()
    msg = str(e.value)
    assert f"unix://{tmp_path}/nothing.sock" in msg
    assert "start dockerd" in msg and "DOCKER_HOST" in msg and "\n" not in msg


def test_docker_path_with_subvolume_mount(env: Env, client: docker.DockerClient) -> None:
    p = partitions.find_by_label(env.disk.label)
    root = Path(docker_daemon.daemon_info(client).docker_root_dir)
    assert docker_daemon.docker_path_for(root, p) == "docker"
    assert docker_daemon.docker_path_for(root / "btrfs" / "subvolumes", p) == \
        "docker/btrfs/subvolumes"


def test_docker_path_with_top_level_mount(env: Env) -> None:
    p = partitions.find_by_label(env.disk.label)
    assert docker_daemon.docker_path_for(env.top / "docker", p) == "docker"
    with partitions.top_level(p) as top:
        assert top == env.top  # the existing top-level mount is reused


def test_docker_path_on_other_partition_is_refused(env: Env, tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="256M") as other:
        p = partitions.find_by_label(other.label)
        with pytest.raises(DockerError) as e:
            docker_daemon.docker_path_for(env.sub, p)
    msg = str(e.value)
    assert f"data-root {env.sub} is on {env.disk.btrfs_dev} (btrfs)" in msg
    assert f"not on LABEL={other.label}" in msg


def test_docker_path_top_level_is_refused(env: Env) -> None:
    p = partitions.find_by_label(env.disk.label)
    with pytest.raises(DockerError, match="top level"):
        docker_daemon.docker_path_for(env.top, p)


def test_list_images_tags_only(env: Env, client: docker.DockerClient, tmp_path: Path) -> None:
    tar = lab.tar_of(tmp_path / "t.tar", {"hello": "world\n"})
    env.daemon.docker("import", tar, "dbw-list/one:1.0")
    env.daemon.docker("tag", "dbw-list/one:1.0", "localhost:5000/ns/one")
    other = lab.tar_of(tmp_path / "u.tar", {"untagged": "yes\n"})
    untagged_id = env.daemon.docker("import", other).stdout.strip()

    found = docker_daemon.list_images(client)
    refs = [i.ref for i in found]
    assert refs == sorted(refs)
    assert {"dbw-list/one:1.0", "localhost:5000/ns/one:latest"} <= set(refs)
    assert untagged_id not in {i.id for i in found}
    one = next(i for i in found if i.ref == "localhost:5000/ns/one:latest")
    want_id = env.daemon.docker("image", "inspect", "-f", "{{.Id}}", "dbw-list/one:1.0")
    assert one.id == want_id.stdout.strip()
    assert one.short_id == one.id[:19]
    assert one.size >= len("world\n") and one.created.startswith("20")
    assert (one.name, one.tag) == ("localhost:5000/ns/one", "latest")
    assert one.to_json()["ref"] == one.ref


@pytest.mark.parametrize("driver", ["vfs", "overlay2"])
def test_check_storage_rejects_other_drivers(tmp_path: Path, driver: str) -> None:
    with lab.dockerd(tmp_path / "data", storage_driver=driver) as daemon:
        c = docker.DockerClient(base_url=daemon.host)
        info = docker_daemon.daemon_info(c)
        c.close()
    assert info.driver == driver
    with pytest.raises(DockerError) as e:
        docker_daemon.check_storage(info)
    msg = str(e.value)
    assert f"Docker uses the {driver} storage driver, not btrfs" in msg
    assert docker_daemon.DAEMON_JSON in msg and "/etc/docker/daemon.json" in msg
    assert "pull or build your images again" in msg
