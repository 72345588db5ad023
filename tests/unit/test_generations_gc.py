"""Garbage collection: which generations go, never-harm removal, pins kept in the right order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.genhelp import FakeClient, FakeDocker, bzimage, image_id, make_gen
from wizard.boot import generations
from wizard.boot.generations import GEN_DIR, Generation, GenerationError, adopt_legacy, load
from wizard.boot.generations_gc import collect, plan_gc, remove
from wizard.store import pins

LABEL = "dockerboot"


@pytest.fixture
def boot(tmp_path: Path) -> Path:
    b = tmp_path / "boot_docker"
    b.mkdir()
    return b


def _gens(boot: Path, seeds: str) -> list[Generation]:
    return [make_gen(boot, n, s) for n, s in enumerate(seeds, start=1)]


def test_plan_keeps_newest_and_previous(boot: Path) -> None:
    _gens(boot, "abcde")
    plan = plan_gc(load(boot))
    assert [g.number for g in plan.keep] == [4, 5]
    assert [g.number for g in plan.remove] == [1, 2, 3]
    assert plan.released == tuple(sorted(image_id(s) for s in "abc"))


def test_plan_releases_an_image_only_when_no_kept_generation_uses_it(boot: Path) -> None:
    # 1:a 2:b 3:a (same image, rebuilt for a new hook) 4:c
    _gens(boot, "abac")
    plan = plan_gc(load(boot))
    assert [g.number for g in plan.keep] == [3, 4]
    assert [g.number for g in plan.remove] == [1, 2]
    assert plan.released == (image_id("b"),)


def test_plan_count_is_configurable_and_at_least_two(boot: Path) -> None:
    _gens(boot, "abcde")
    assert [g.number for g in plan_gc(load(boot), 3).keep] == [3, 4, 5]
    assert plan_gc(load(boot), 9).remove == ()
    for bad in (1, 0, True):
        with pytest.raises(ValueError):
            plan_gc(load(boot), bad)


def test_plan_also_keeps_what_the_caller_needs(boot: Path) -> None:
    _gens(boot, "abcde")
    plan = plan_gc(load(boot), also_keep=[1])
    assert [g.number for g in plan.keep] == [1, 4, 5]
    assert image_id("a") not in plan.released


def test_plan_keeps_the_generations_of_the_last_good_image(boot: Path) -> None:
    _gens(boot, "abcde")
    plan = plan_gc(load(boot), keep_images=[image_id("b")])
    assert [g.number for g in plan.keep] == [2, 4, 5]
    assert plan.released == tuple(sorted((image_id("a"), image_id("c"))))


def test_collect_never_deletes_an_image_that_is_not_released(boot: Path) -> None:
    _gens(boot, "abac")
    store, client = _store_with("abc")
    plan = plan_gc(load(boot))
    collect(boot, plan, client=client, label=LABEL)
    rmis = [c[1] for c in store.calls if c[0] == "rmi"]
    assert rmis == [image_id("b")]


def test_plan_never_touches_unreadable_directories(boot: Path) -> None:
    _gens(boot, "abc")
    (boot / GEN_DIR / "0").mkdir()  # no record
    plan = plan_gc(load(boot))
    assert [g.number for g in plan.remove] == [1]
    collect(boot, plan)
    assert (boot / GEN_DIR / "0").is_dir()


def test_nothing_to_collect_with_two_or_fewer(boot: Path) -> None:
    _gens(boot, "ab")
    assert plan_gc(load(boot)).remove == ()
    assert plan_gc(generations.Inventory()).remove == ()


def test_remove_deletes_record_files_and_directory(boot: Path) -> None:
    gen = _gens(boot, "a")[0]
    generations.write_record(boot, gen)  # same content: no backup
    generations.write_record(boot, Generation(**{**gen.__dict__, "image_ref": "x:1"}))
    done = remove(boot, gen)
    assert set(done.deleted) >= {"vmlinuz", "initrd.img", "generation.json"}
    assert any(n.endswith(".bak") for n in done.deleted)
    assert done.directory_gone and not (boot / GEN_DIR / "1").exists()


def test_remove_keeps_a_users_file_and_the_directory(boot: Path) -> None:
    gen = _gens(boot, "a")[0]
    (boot / GEN_DIR / "1" / "notes.txt").write_text("mine")
    done = remove(boot, gen)
    assert not done.directory_gone
    assert sorted(p.name for p in (boot / GEN_DIR / "1").iterdir()) == ["notes.txt"]


def test_remove_never_follows_a_symlink_put_in_place_of_a_file(boot: Path, tmp_path: Path) -> None:
    gen = _gens(boot, "a")[0]
    victim = tmp_path / "precious"
    victim.write_text("keep me")
    k = boot / GEN_DIR / "1" / "vmlinuz"
    k.unlink()
    k.symlink_to(victim)
    done = remove(boot, gen)
    assert "vmlinuz: not a regular file" in done.kept
    assert victim.read_text() == "keep me" and k.is_symlink()


def test_remove_refuses_a_symlinked_generation_directory(boot: Path, tmp_path: Path) -> None:
    gen = _gens(boot, "a")[0]
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("vmlinuz", "initrd.img", "generation.json"):
        (victim / name).write_text("victim's")
    d = boot / GEN_DIR / "1"
    for p in d.iterdir():
        p.unlink()
    d.rmdir()
    d.symlink_to(victim)
    with pytest.raises(GenerationError, match="refusing"):
        remove(boot, gen)
    assert sorted(p.read_text() for p in victim.iterdir()) == ["victim's"] * 3


def test_remove_refuses_a_symlinked_gen_root(boot: Path, tmp_path: Path) -> None:
    gen = _gens(boot, "a")[0]
    moved = tmp_path / "moved"
    (boot / GEN_DIR).rename(moved)
    (boot / GEN_DIR).symlink_to(moved)
    with pytest.raises(GenerationError, match="refusing"):
        remove(boot, gen)
    assert (moved / "1" / "vmlinuz").exists()


def test_remove_ignores_names_a_crafted_record_gives(boot: Path, tmp_path: Path) -> None:
    gen = _gens(boot, "a")[0]
    victim = boot / "toplayer"
    victim.mkdir()
    (victim / "shadow").write_text("root:x")
    crafted = Generation(**{**gen.__dict__, "files": ("../../toplayer/shadow", "/etc/passwd",
                                                      "..", "vmlinuz")})
    done = remove(boot, crafted)
    assert (victim / "shadow").read_text() == "root:x"
    assert sum("not a bare name" in k for k in done.kept) == 3


def test_removing_legacy_keeps_the_flat_pair(boot: Path) -> None:
    (boot / "vmlinuz").write_bytes(bzimage("6.1.0-18-amd64"))
    (boot / "initrd.img").write_bytes(b"old")
    legacy = adopt_legacy(boot, "desktop", image_id("old"))
    assert legacy is not None
    _gens_from(boot, 1, "abc")
    plan = plan_gc(load(boot))
    assert [g.number for g in plan.remove] == [0, 1]
    done = collect(boot, plan)
    assert done.removed[0].deleted == ("generation.json",)
    assert (boot / "vmlinuz").read_bytes() == bzimage("6.1.0-18-amd64")
    assert (boot / "initrd.img").read_bytes() == b"old"
    assert [g.number for g in load(boot).generations] == [2, 3]


def _gens_from(boot: Path, start: int, seeds: str) -> None:
    for n, s in enumerate(seeds, start=start):
        make_gen(boot, n, s)


def _store_with(seeds: str) -> tuple[FakeDocker, FakeClient]:
    store = FakeDocker()
    for s in seeds:
        store.add_image(s)
    return store, FakeClient(store)


def test_collect_pins_kept_before_unpinning_removed(boot: Path) -> None:
    _gens(boot, "abac")
    store, client = _store_with("abc")
    for n, s in ((1, "a"), (2, "b")):
        pins.pin(client, image_id(s), LABEL, n)
    store.calls.clear()
    plan = plan_gc(load(boot))
    done = collect(boot, plan, client=client, label=LABEL, inventory=load(boot))
    first_unpin = next(i for i, c in enumerate(store.calls) if c[0] in ("rmi", "remove container"))
    last_pin = max(i for i, c in enumerate(store.calls) if c[0] in ("tag", "create"))
    assert last_pin < first_unpin
    # a is still used by generation 3: still there, pinned by gen-3 only; b is released and gone.
    assert store.exists(image_id("a")) and not store.exists(image_id("b"))
    assert set(pins.pins(client, LABEL)) == {3, 4}
    assert set(done.removed) == {1, 2} and done.problems == []


def test_collect_removes_nothing_when_a_kept_generation_cannot_be_pinned(boot: Path) -> None:
    _gens(boot, "abc")
    store, client = _store_with("ab")  # c is not in the store any more
    with pytest.raises(pins.PinError, match="not in the docker store"):
        collect(boot, plan_gc(load(boot)), client=client, label=LABEL)
    assert [g.number for g in load(boot).generations] == [1, 2, 3]


def test_collect_reports_a_pin_container_someone_started(boot: Path) -> None:
    _gens(boot, "abc")
    store, client = _store_with("abc")
    pins.pin(client, image_id("a"), LABEL, 1)
    # Someone started the pin container: unpin never forces.
    next(iter(store.containers.values())).status = "running"
    done = collect(boot, plan_gc(load(boot)), client=client, label=LABEL)
    assert not done.unpinned[1].image_deleted and len(done.unpinned[1].notes) == 1
    assert done.problems[0].startswith("generation 1: pin container")
    assert store.exists(image_id("a")) and set(pins.pins(client, LABEL)) == {1, 2, 3}
    assert 1 in done.removed  # the files go all the same: no entry names them


def test_collect_keeps_the_record_when_the_daemon_fails(boot: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _gens(boot, "abc")
    store, client = _store_with("abc")

    def broken(*a: object, **k: object) -> pins.Unpinned:
        raise pins.PinError("cannot unpin generation 1: daemon gone")
    monkeypatch.setattr(pins, "unpin", broken)
    done = collect(boot, plan_gc(load(boot)), client=client, label=LABEL)
    assert done.removed == {} and "generation 1 kept" in done.problems[0]
    assert load(boot).get(1) is not None


def test_collect_drops_pins_of_generations_that_no_longer_exist(boot: Path) -> None:
    _gens(boot, "bc")
    store, client = _store_with("abc")
    pins.pin(client, image_id("a"), LABEL, 7)  # a crash left it: no record 7
    collect(boot, plan_gc(load(boot)), client=client, label=LABEL, inventory=load(boot))
    assert set(pins.pins(client, LABEL)) == {1, 2} and not store.exists(image_id("a"))


def test_collect_without_an_inventory_drops_no_unknown_pin(boot: Path) -> None:
    _gens(boot, "bc")
    store, client = _store_with("abc")
    pins.pin(client, image_id("a"), LABEL, 7)
    collect(boot, plan_gc(load(boot)), client=client, label=LABEL)
    assert set(pins.pins(client, LABEL)) == {1, 2, 7} and store.exists(image_id("a"))


def test_collect_without_docker_only_removes_files(boot: Path) -> None:
    _gens(boot, "abc")
    done = collect(boot, plan_gc(load(boot)))
    assert set(done.removed) == {1} and done.unpinned == {}
    with pytest.raises(ValueError, match="label"):
        collect(boot, plan_gc(load(boot)), client=FakeClient(FakeDocker()))
