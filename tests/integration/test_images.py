"""Image resolution against a real dockerd (btrfs driver) on a real loop btrfs.

Images are made offline: ``docker import`` of a tiny tar, then ``docker
build`` with COPY only for more layers, then ``docker tag`` for other names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.lab import lab
from wizard.common.errors import ImageError
from wizard.store import images

pytestmark = pytest.mark.lab

BASE = "dbw-img-base:1"
APP = "localhost:5000/ns/app:1.0"


@dataclass
class Env:
    data_root: Path
    daemon: lab.Dockerd
    marker: str


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("images")
    with lab.docker_disk(work, size="2G") as dd:
        disk, top, daemon = dd.disk, dd.top, dd.daemon
        d = daemon.docker
        d("import", lab.tar_of(work / "base.tar", {"etc/base-marker": "base\n"}), BASE)
        ctx = work / "ctx"
        ctx.mkdir()
        marker = f"top {disk.label}\n"
        (ctx / "top-marker").write_text(marker)
        (ctx / "second").write_text("second layer\n")
        (ctx / "Dockerfile").write_text(
            f"FROM {BASE}\nCOPY second /etc/second\nCOPY top-marker /etc/top-marker\n")
        client = docker.DockerClient(base_url=daemon.host)
        client.images.build(path=str(ctx), tag=APP, network_mode="none", rm=True)
        client.close()
        d("tag", APP, "dbw-img-app")  # implicit :latest
        d("tag", APP, "docker.io/library/dbw-img-lib:2")
        yield Env(top / "docker", daemon, marker)


def inspect_layers(env: Env, ref: str) -> list[str]:
    out = env.daemon.docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref).stdout
    return json.loads(out)


def cache_id_for(env: Env, layers: list[str]) -> str:
    chain = images.chain_ids(layers)[-1].removeprefix("sha256:")
    path = env.data_root / "image" / "btrfs" / "layerdb" / "sha256" / chain / "cache-id"
    return path.read_text().strip()


def test_multi_layer_image_resolves_to_top_subvolume(env: Env) -> None:
    layers = inspect_layers(env, APP)
    assert len(layers) == 3
    sub = images.resolve_subvolume(env.data_root, APP)
    assert sub == env.data_root / "btrfs" / "subvolumes" / cache_id_for(env, layers)
    # The top layer's subvolume holds the whole rootfs: every layer's files.
    assert (sub / "etc" / "top-marker").read_text() == env.marker
    assert (sub / "etc" / "second").read_text() == "second layer\n"
    assert (sub / "etc" / "base-marker").read_text() == "base\n"
    lab.run("btrfs", "subvolume", "show", sub)  # a real subvolume, not a directory


def test_single_layer_import(env: Env) -> None:
    sub = images.resolve_subvolume(env.data_root, BASE)
    assert sub.name == cache_id_for(env, inspect_layers(env, BASE))
    assert (sub / "etc" / "base-marker").exists()
    assert not (sub / "etc" / "top-marker").exists()


@pytest.mark.parametrize("ref", ["dbw-img-app", "dbw-img-app:latest",
                                 "docker.io/library/dbw-img-app", "dbw-img-lib:2",
                                 "docker.io/library/dbw-img-lib:2", "library/dbw-img-lib:2"])
def test_other_names_of_the_same_image(env: Env, ref: str) -> None:
    assert images.resolve_subvolume(env.data_root, ref) == \
        images.resolve_subvolume(env.data_root, APP)


def test_repositories_json_uses_the_familiar_form(env: Env) -> None:
    data = json.loads((env.data_root / "image/btrfs/repositories.json").read_text())
    repos = data["Repositories"]
    for ref in (APP, "dbw-img-app", "docker.io/library/dbw-img-lib:2", BASE):
        familiar = images.normalize_ref(ref)
        name, _ = images.split_ref(familiar)
        assert familiar in repos[name], (familiar, sorted(repos))


def test_unknown_tag_and_unknown_image(env: Env) -> None:
    with pytest.raises(ImageError) as e:
        images.resolve_subvolume(env.data_root, "localhost:5000/ns/app:2.0")
    assert "localhost:5000/ns/app:2.0 is not in" in str(e.value)
    assert "pull or build it first" in str(e.value)
    with pytest.raises(ImageError, match="dbw-nothing:latest is not in"):
        images.resolve_subvolume(env.data_root, "dbw-nothing")


def test_wrong_data_root(env: Env, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="btrfs storage driver"):
        images.resolve_subvolume(tmp_path, APP)


def test_removed_image_is_no_longer_resolvable(env: Env, tmp_path: Path) -> None:
    ref = "dbw-img-gone:1"
    env.daemon.docker("import", lab.tar_of(tmp_path / "g.tar", {"gone": "1\n"}), ref)
    sub = images.resolve_subvolume(env.data_root, ref)
    assert (sub / "gone").exists()
    env.daemon.docker("rmi", ref)
    with pytest.raises(ImageError, match="dbw-img-gone:1 is not in"):
        images.resolve_subvolume(env.data_root, ref)
