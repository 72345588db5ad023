"""Generation bookkeeping: records, layout, add, legacy pair, hostile records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.genhelp import bzimage, image_id, inputs, make_gen, stage
from wizard.boot import generations
from wizard.boot.fingerprint import kernel_version_of
from wizard.boot.generations import (
    GEN_DIR,
    RECORD_NAME,
    Generation,
    GenerationError,
    add,
    adopt_legacy,
    from_json,
    load,
    new_record,
    next_number,
)


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    b = tmp_path / "boot_docker"
    b.mkdir()
    return b


def test_empty_boot_dir_has_no_generations(boot: Path) -> None:
    inv = load(boot)
    assert inv.generations == () and inv.newest is None and inv.previous is None
    assert next_number(inv) == 1
    assert load(boot / "missing").generations == ()


def test_add_installs_staged_build_as_a_generation(boot: Path) -> None:
    staged = stage(boot, "6.1.0-31-amd64")
    record = new_record(1, inputs(), "desktop", image_id("a"), created="2026-11-30T08:00:00Z")
    gen = add(boot, staged, record)
    d = boot / GEN_DIR / "1"
    assert not staged.exists()
    assert sorted(p.name for p in d.iterdir()) == ["generation.json", "initrd.img", "vmlinuz"]
    assert kernel_version_of(d / "vmlinuz") == "6.1.0-31-amd64"
    assert gen.files == ("vmlinuz", "initrd.img") and gen.image_ref == "desktop:latest"
    assert (gen.loader, gen.initrd_path) == ("gen/1/vmlinuz", "gen/1/initrd.img")
    data = json.loads((d / RECORD_NAME).read_text())
    assert data == {"schema": 1, "number": 1, "created": "2026-11-30T08:00:00Z",
                    "kernel_version": "6.1.0-31-amd64", "image_ref": "desktop:latest",
                    "image_id": image_id("a"), "legacy": False, "pinned": False,
                    "inputs": {"generator": "initramfs-tools",
                               "kernel_version": "6.1.0-31-amd64", "assets": "a" * 64},
                    "kernel": "vmlinuz", "initrd": "initrd.img",
                    "files": ["vmlinuz", "initrd.img"]}
    assert load(boot).generations == (gen,)


def test_newest_previous_and_numbers(boot: Path) -> None:
    for n, seed in ((1, "a"), (2, "b"), (3, "c")):
        make_gen(boot, n, seed)
    inv = load(boot)
    assert [g.number for g in inv.generations] == [1, 2, 3]
    assert inv.newest is not None and inv.newest.number == 3
    assert inv.previous is not None and inv.previous.image_id == image_id("b")
    assert next_number(inv) == 4 and inv.get(2) is not None and inv.get(9) is None


def test_unreadable_directory_keeps_its_number_and_is_a_problem(boot: Path) -> None:
    make_gen(boot, 1, "a")
    bad = boot / GEN_DIR / "7"
    bad.mkdir()
    (bad / RECORD_NAME).write_text("{not json")
    (boot / GEN_DIR / "notes.txt").write_text("mine")  # not ours: ignored
    (boot / GEN_DIR / "08").mkdir()  # not a number the wizard writes
    inv = load(boot)
    assert [g.number for g in inv.generations] == [1]
    assert len(inv.problems) == 1 and "7" in inv.problems[0] and "never removed" in inv.problems[0]
    assert next_number(inv) == 8  # never reuses 7


def test_add_refuses_taken_number_and_leaves_staged(boot: Path) -> None:
    make_gen(boot, 1, "a")
    staged = stage(boot, name="again")
    with pytest.raises(GenerationError, match="already exists"):
        add(boot, staged, new_record(1, inputs(), "desktop", image_id("b")))
    assert (staged / "vmlinuz.new").exists()
    assert load(boot).get(1) is not None and load(boot).get(1).image_id == image_id("a")


def test_add_refuses_a_kernel_other_than_recorded(boot: Path) -> None:
    staged = stage(boot, "6.12.9-amd64")
    with pytest.raises(GenerationError, match="6.12.9-amd64, not 6.1.0-31-amd64"):
        add(boot, staged, new_record(1, inputs("6.1.0-31-amd64"), "d", image_id("a")))
    assert not (boot / GEN_DIR / "1").exists()


@pytest.mark.parametrize("damage", ["empty-initrd", "no-kernel", "symlink-kernel"])
def test_add_refuses_incomplete_staged_build(boot: Path, tmp_path: Path, damage: str) -> None:
    staged = stage(boot)
    if damage == "empty-initrd":
        (staged / "initrd.img.new").write_bytes(b"")
    elif damage == "no-kernel":
        (staged / "vmlinuz.new").unlink()
    else:
        outside = tmp_path / "k"
        outside.write_bytes(bzimage("6.1.0-31-amd64"))
        (staged / "vmlinuz.new").unlink()
        (staged / "vmlinuz.new").symlink_to(outside)
    with pytest.raises(GenerationError, match="no complete"):
        add(boot, staged, new_record(1, inputs(), "d", image_id("a")))
    assert not (boot / GEN_DIR / "1").exists()


def test_add_refuses_a_directory_that_is_not_a_staged_build(boot: Path, tmp_path: Path) -> None:
    elsewhere = stage(tmp_path / "other")
    link = boot / ".build-link"
    link.symlink_to(elsewhere)
    for staged in (elsewhere, link, boot / "toplayer"):
        with pytest.raises(GenerationError, match="not a staged build"):
            add(boot, staged, new_record(1, inputs(), "d", image_id("a")))
    assert (elsewhere / "vmlinuz.new").exists()


def test_add_refuses_a_symlinked_gen_directory(boot: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (boot / GEN_DIR).symlink_to(victim)
    with pytest.raises(GenerationError, match="not a directory"):
        add(boot, stage(boot), new_record(1, inputs(), "d", image_id("a")))
    assert list(victim.iterdir()) == []
    assert "symlink" in load(boot).problems[0]


def test_legacy_pair_is_generation_zero_until_a_numbered_one_exists(boot: Path) -> None:
    (boot / "vmlinuz").write_bytes(bzimage("6.1.0-18-amd64"))
    (boot / "initrd.img").write_bytes(b"old initramfs")
    legacy = load(boot).newest
    assert legacy is not None and legacy.legacy and legacy.number == 0
    assert legacy.kernel_version == "6.1.0-18-amd64" and legacy.image_id is None
    assert (legacy.loader, legacy.initrd_path, legacy.files) == ("vmlinuz", "initrd.img", ())
    assert next_number(load(boot)) == 1
    # Not adopted: the first new generation hides it (its image ID is unknown).
    make_gen(boot, 1, "a")
    assert [g.number for g in load(boot).generations] == [1]
    assert (boot / "vmlinuz").read_bytes() == bzimage("6.1.0-18-amd64")
    assert adopt_legacy(boot, "desktop", image_id("old")) is None  # too late: never renumbered


def test_adopt_legacy_leaves_nothing_half_made(boot: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (boot / "vmlinuz").write_bytes(bzimage("6.1.0-18-amd64"))
    (boot / "initrd.img").write_bytes(b"old initramfs")

    def crash(*a: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(generations.os, "rename", crash)
    with pytest.raises(OSError):
        adopt_legacy(boot, "desktop", image_id("old"))
    assert [p.name for p in boot.iterdir() if p.name.startswith(".")] == []
    assert load(boot).newest is not None and load(boot).newest.legacy


def test_adopt_legacy_records_it_with_its_image_and_never_owns_its_files(boot: Path) -> None:
    (boot / "vmlinuz").write_bytes(bzimage("6.1.0-18-amd64"))
    (boot / "initrd.img").write_bytes(b"old initramfs")
    gen = adopt_legacy(boot, "desktop", image_id("old"))
    assert gen is not None and gen.legacy and gen.files == () and gen.image_id == image_id("old")
    assert adopt_legacy(boot, "desktop", image_id("x")) is None  # once
    make_gen(boot, 1, "a")
    inv = load(boot)
    assert [g.number for g in inv.generations] == [0, 1]
    assert inv.previous == gen and inv.previous.loader == "vmlinuz"


def test_no_legacy_for_symlinks_or_empty_files(boot: Path, tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(bzimage("6.1.0-18-amd64"))
    (boot / "vmlinuz").symlink_to(tmp_path / "k")
    (boot / "initrd.img").write_bytes(b"x")
    assert load(boot).generations == ()
    (boot / "vmlinuz").unlink()
    (boot / "vmlinuz").write_bytes(b"")
    assert load(boot).generations == ()
    assert adopt_legacy(boot, "d", None) is None


def test_write_record_replaces_atomically_with_a_backup(boot: Path) -> None:
    gen = make_gen(boot, 1, "a")
    path = generations.write_record(boot, gen.__class__(**{**gen.__dict__,
                                                           "image_ref": "desktop:2"}))
    backups = [p for p in path.parent.iterdir() if p.name.endswith(".bak")]
    assert len(backups) == 1 and json.loads(backups[0].read_text())["image_ref"] == \
        "desktop:latest"
    assert load(boot).get(1).image_ref == "desktop:2"


def _record(**changes: object) -> dict[str, object]:
    base = new_record(3, inputs(), "desktop", image_id("a"),
                      created="2026-11-30T08:00:00Z").to_json()
    return {**base, **changes}


@pytest.mark.parametrize("changes", [
    {"files": ["../../toplayer/etc/shadow"]},
    {"files": ["/etc/passwd"]},
    {"files": [".hidden"]},
    {"files": ["generation.json"]},
    {"files": "vmlinuz"},
    {"kernel": "../vmlinuz"},
    {"initrd": "sub/initrd.img"},
    {"number": 4},
    {"number": True},
    {"number": "3"},
    {"schema": 2},
    {"image_id": "sha256:abc"},
    {"image_id": "deadbeef" * 8},
    {"image_ref": 'desk top:1'},
    {"image_ref": 'desktop:1" init=/bin/sh "'},
    {"image_ref": "Desktop:1"},
    {"image_ref": None},
    {"kernel_version": "6.1/../../x"},
    {"kernel_version": None},
    {"created": "yesterday"},
    {"legacy": True},
    {"inputs": {"generator": "grub", "kernel_version": "6.1", "assets": "a" * 64}},
    {"inputs": None},
])
def test_hostile_or_damaged_records_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(GenerationError, match="invalid generation record"):
        from_json(_record(**changes), 3)


def test_hostile_record_on_disk_is_skipped_not_trusted(boot: Path) -> None:
    d = boot / GEN_DIR / "2"
    d.mkdir(parents=True)
    (d / RECORD_NAME).write_text(json.dumps(_record(number=2, files=["../../../etc"])))
    inv = load(boot)
    assert inv.generations == () and 2 in inv.taken and "files" in inv.problems[0]


def test_record_that_is_a_symlink_is_not_read(boot: Path, tmp_path: Path) -> None:
    real = tmp_path / "r.json"
    real.write_text(json.dumps(_record(number=2)))
    d = boot / GEN_DIR / "2"
    d.mkdir(parents=True)
    (d / RECORD_NAME).symlink_to(real)
    inv = load(boot)
    assert inv.generations == () and "cannot read" in inv.problems[0]


def test_legacy_record_must_own_nothing() -> None:
    data = Generation(0, None, None, None, None, "2026-11-30T08:00:00Z", files=(),
                      legacy=True).to_json()
    assert from_json(data, 0).legacy
    with pytest.raises(GenerationError, match="owns no files"):
        from_json({**data, "files": ["vmlinuz"]}, 0)


def test_kernel_version_of_reads_bzimage_headers_only(tmp_path: Path) -> None:
    k = tmp_path / "k"
    k.write_bytes(bzimage("6.12.9+bpo-amd64"))
    assert kernel_version_of(k) == "6.12.9+bpo-amd64"
    k.write_bytes(b"\x7fELF" + bytes(0x400))
    assert kernel_version_of(k) is None
    k.write_bytes(b"short")
    assert kernel_version_of(k) is None
    assert kernel_version_of(tmp_path / "missing") is None
    link = tmp_path / "link"
    k.write_bytes(bzimage("6.1.0-31-amd64"))
    link.symlink_to(k)
    assert kernel_version_of(link) is None
    assert os.path.exists(k)
