"""ChainID (OCI image-spec) and image reference normalisation (pure)."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from wizard.common.errors import ImageError
from wizard.store.images import chain_ids, normalize_ref, resolve_subvolume, split_ref


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_chain_id_spec_vector():
    # opencontainers/image-spec identity/chainid_test.go: FromString("sha256:a sha256:b").
    assert chain_ids(["sha256:a", "sha256:b"]) == ["sha256:a", sha("sha256:a sha256:b")]


def test_chain_id_three_layers_is_recursive():
    a, b, c = (sha(x) for x in "abc")
    ab = sha(f"{a} {b}")
    assert chain_ids([a, b, c]) == [a, ab, sha(f"{ab} {c}")]


def test_chain_id_single_and_empty():
    assert chain_ids(["sha256:x"]) == ["sha256:x"]
    assert chain_ids([]) == []


@pytest.mark.parametrize("ref, familiar", [
    ("debian", "debian:latest"),
    ("debian:12", "debian:12"),
    ("library/debian:12", "debian:12"),
    ("docker.io/library/debian:12", "debian:12"),
    ("docker.io/debian", "debian:latest"),
    ("index.docker.io/library/debian", "debian:latest"),
    ("docker.io/jess/hollywood", "jess/hollywood:latest"),
    ("jess/hollywood:v1.2_rc-3", "jess/hollywood:v1.2_rc-3"),
    ("docker.io/library/a/b", "library/a/b:latest"),  # library/ only strips at depth one
    ("localhost:5000/ns/app:1.0", "localhost:5000/ns/app:1.0"),
    ("localhost:5000/ns/app", "localhost:5000/ns/app:latest"),
    ("registry:5000/foobar", "registry:5000/foobar:latest"),
    ("localhost/app", "localhost/app:latest"),
    ("reg.example.com/library/x", "reg.example.com/library/x:latest"),
    ("  debian:12 \n", "debian:12"),
    ("dbw-base/initramfs-tools", "dbw-base/initramfs-tools:latest"),
    ("a__b.c-d/e", "a__b.c-d/e:latest"),
])
def test_normalize_ref(ref, familiar):
    assert normalize_ref(ref) == familiar
    assert normalize_ref(familiar) == familiar  # idempotent


def test_normalize_keeps_digest_and_drops_tag_next_to_it():
    digest = "sha256:" + "ab" * 32
    assert normalize_ref(f"docker.io/library/debian@{digest}") == f"debian@{digest}"
    assert normalize_ref(f"localhost:5000/app:1@{digest}") == f"localhost:5000/app@{digest}"


@pytest.mark.parametrize("bad", ["", "   ", "Debian", "a:", ":1", "a b", "a//b", "a:b:c",
                                 "a@sha256:zz", "a@", "-a", "a/", "a:" + "t" * 129,
                                 "localhost:5000/", "a:tag/with/slash"])
def test_normalize_rejects_malformed(bad):
    with pytest.raises(ImageError) as e:
        normalize_ref(bad)
    assert "invalid image reference" in str(e.value) and "NAME[:TAG]" in str(e.value)


def test_split_ref():
    assert split_ref("localhost:5000/ns/app:1.0") == ("localhost:5000/ns/app", "1.0")
    assert split_ref("localhost:5000/ns/app") == ("localhost:5000/ns/app", "")
    assert split_ref("app@sha256:00") == ("app", "sha256:00")
    assert split_ref("debian:12") == ("debian", "12")


# resolve_subvolume on a hand-made data-root tree (same layout dockerd writes).

def make_root(tmp_path, ref="app:1", name="app", layers=2, subvolume=True):
    diff_ids = [sha(f"layer{i}") for i in range(layers)]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    image_id = "sha256:" + hashlib.sha256(config).hexdigest()
    img = tmp_path / "image" / "btrfs"
    (img / "imagedb/content/sha256").mkdir(parents=True)
    (img / "imagedb/content/sha256" / image_id[7:]).write_bytes(config)
    (img / "repositories.json").write_text(json.dumps({"Repositories": {name: {ref: image_id}}}))
    cache_id = "c" * 64
    chain = chain_ids(diff_ids)[-1]
    (img / "layerdb/sha256" / chain[7:]).mkdir(parents=True)
    (img / "layerdb/sha256" / chain[7:] / "cache-id").write_text(cache_id)
    if subvolume:
        (tmp_path / "btrfs/subvolumes" / cache_id).mkdir(parents=True)
    return tmp_path / "btrfs/subvolumes" / cache_id, img, image_id


def test_resolve_happy_path_and_normalisation(tmp_path):
    want, _, _ = make_root(tmp_path, ref="localhost:5000/ns/app:latest",
                           name="localhost:5000/ns/app")
    assert resolve_subvolume(tmp_path, "localhost:5000/ns/app") == want


def test_resolve_single_layer_uses_diff_id_as_chain(tmp_path):
    want, _, _ = make_root(tmp_path, layers=1)
    assert resolve_subvolume(tmp_path, "app:1") == want


def test_resolve_unknown_tag(tmp_path):
    make_root(tmp_path)
    with pytest.raises(ImageError) as e:
        resolve_subvolume(tmp_path, "app:2")
    assert "app:2 is not in" in str(e.value) and "dockerboot-wizard images" in str(e.value)


def test_resolve_no_repositories_json(tmp_path):
    with pytest.raises(ImageError, match="repositories.json does not exist.*btrfs storage"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_corrupt_repositories_json(tmp_path):
    _, img, _ = make_root(tmp_path)
    (img / "repositories.json").write_text("{not json")
    with pytest.raises(ImageError, match="cannot read image list"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_missing_config(tmp_path):
    _, img, image_id = make_root(tmp_path)
    (img / "imagedb/content/sha256" / image_id[7:]).unlink()
    with pytest.raises(ImageError, match="image config .* does not exist.*pull or build app:1"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_image_id_is_never_a_path(tmp_path):
    _, img, _ = make_root(tmp_path)
    (img / "repositories.json").write_text(
        json.dumps({"Repositories": {"app": {"app:1": "sha256:../../../etc/passwd"}}}))
    with pytest.raises(ImageError, match="invalid image ID"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_missing_layer(tmp_path):
    _, img, _ = make_root(tmp_path)
    for f in (img / "layerdb/sha256").glob("*/cache-id"):
        f.unlink()
    with pytest.raises(ImageError, match="top layer of app:1 not found"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_bad_cache_id(tmp_path):
    _, img, _ = make_root(tmp_path)
    for f in (img / "layerdb/sha256").glob("*/cache-id"):
        f.write_text("../../etc")
    with pytest.raises(ImageError, match="invalid cache ID"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_missing_subvolume(tmp_path):
    make_root(tmp_path, subvolume=False)
    with pytest.raises(ImageError, match="subvolume .* of app:1 is missing"):
        resolve_subvolume(tmp_path, "app:1")


def test_resolve_never_scans_directories(tmp_path, monkeypatch):
    # Like the hook: only the image's own files are opened, no listing of all layers.
    want, _, _ = make_root(tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("resolve_subvolume listed a directory")
    monkeypatch.setattr(os, "listdir", forbidden)
    monkeypatch.setattr(os, "scandir", forbidden)
    monkeypatch.setattr(Path, "iterdir", forbidden)
    monkeypatch.setattr(Path, "glob", forbidden)
    assert resolve_subvolume(tmp_path, "app:1") == want
