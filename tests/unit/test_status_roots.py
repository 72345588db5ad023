"""Status of dockerboot's copies of the fallback images (issue 17): what booted, and
what ``boot_docker/roots`` holds, as ``status`` lists it (``wizard.boot.roots``).

The btrfs side (snapshots, marks naming their own subvolume ID, deletes) runs
on the real lab in tests/integration/test_roots.py; here the partition is a
plain directory: btrfs-progs cannot measure anything, so the space is null.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.genhelp import image_id, make_gen
from wizard.boot.status import status, summary
from wizard.common.errors import ConfigError
from wizard.settings.config import Settings
from wizard.settings.kernel_options import check_state_dir

S = Settings(label="dockerboot", image="desktop:latest")
A, B, C = image_id("a"), image_id("b"), image_id("c")
ROOTS = "boot_docker/roots"


@pytest.fixture
def top(tmp_path: Path) -> Path:
    (tmp_path / "boot_docker").mkdir()
    return tmp_path


def _boot(top: Path, source: str | None) -> None:
    d = top / "boot_docker/state"
    d.mkdir(parents=True, exist_ok=True)
    (d / "boot").write_text(f"ref=desktop:latest\nid={A}\nconfigured_id=\n"
                            "fallback=desktop:latest is not in the docker store\n"
                            "kernel=6.1.0-31-amd64\ntries=1\ngeneration=\n"
                            + ("" if source is None else f"source={source}\n"))
    (d / "good").write_text(f"{A}\n")


def _root(top: Path, iid: str, mark: str | None = "dockerboot-rwlayer v2 300\n") -> Path:
    p = top / ROOTS / iid.removeprefix("sha256:")
    p.mkdir(parents=True)
    if mark is not None:
        (p / ".dockerboot-rwlayer").write_text(mark)
    return p


@pytest.mark.parametrize("source", ["configured", "good", "good-root", "generation",
                                    "generation-root"])
def test_what_booted_is_the_hooks_word(top: Path, source: str) -> None:
    _boot(top, source)
    out = status(top, S)
    assert out["booted"]["source"] == source and out["booted"]["fallback"] is True
    said = "\n".join(summary(out))
    assert ("booted from dockerboot's own copy" in said) == source.endswith("-root")


@pytest.mark.parametrize("source", [None, "", "root", "good-root;rm", "GOOD"])
def test_an_unknown_source_is_null(top: Path, source: str | None) -> None:
    _boot(top, source)
    assert status(top, S)["booted"]["source"] is None


def test_the_copies_are_listed_with_what_collection_keeps(top: Path) -> None:
    _boot(top, "good-root")
    make_gen(top / "boot_docker", 1, "b")
    for iid in (A, B, C):
        _root(top, iid)
    out = status(top, S)
    assert out["roots"] == sorted([{"id": A, "kept": True, "exclusive_bytes": None},
                                   {"id": B, "kept": True, "exclusive_bytes": None},
                                   {"id": C, "kept": False, "exclusive_bytes": None}],
                                  key=lambda r: str(r["id"]))
    assert out["problems"] == []
    said = "\n".join(summary(out))
    assert f"dockerboot's copy of @{C[7:19]}: collected at the next update" in said


def test_what_is_not_a_copy_is_a_problem_never_listed(top: Path) -> None:
    _boot(top, "configured")
    _root(top, A, mark=None)                               # no mark
    _root(top, B, mark="dockerboot-rwlayer v1 some-uuid\n")
    (top / ROOTS / C.removeprefix("sha256:")).symlink_to(top)   # a symlink
    (top / ROOTS / "notes.txt").write_text("mine\n")
    _root(top, image_id("d")).rename(top / ROOTS / ("d" * 3))   # not an ID
    out = status(top, S)
    assert out["roots"] == []
    assert len(out["problems"]) == 5 and all("left as it is" in p for p in out["problems"])


def test_a_symlinked_roots_directory_is_not_read(top: Path, tmp_path: Path) -> None:
    _boot(top, "configured")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _root(elsewhere, A)
    os.symlink(elsewhere / ROOTS, top / ROOTS)
    out = status(top, S)
    assert out["roots"] == [] and any("symlink" in p for p in out["problems"])


@pytest.mark.parametrize("value", ["boot_docker/roots", "boot_docker/roots/s", "boot_docker"])
def test_the_state_directory_cannot_be_the_copies(value: str) -> None:
    with pytest.raises(ConfigError):
        check_state_dir(value, docker_path="docker", rwlayer="docker_rwlayer",
                        boot_dir="boot_docker", toplayer_path="boot_docker/toplayer")
