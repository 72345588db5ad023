"""bootset: planning a generation and its entries, the legacy pair adopted, copies, rollback
entries, the install refusing a changed inventory, collection keeping the hook's images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.genhelp import bzimage, image_id, inputs, make_gen
from wizard.boot import bootset, generations
from wizard.boot.generations import GenerationError
from wizard.common.errors import BootloaderError
from wizard.settings.config import Settings

S = Settings(label="dbw", image="desktop:latest")


@pytest.fixture
def top(tmp_path: Path) -> Path:
    (tmp_path / "boot_docker").mkdir()
    return tmp_path


def boot(top: Path) -> Path:
    return top / "boot_docker"


def test_first_generation_has_one_entry_and_writes_nothing(top: Path) -> None:
    new = bootset.plan_new(top, S, image_id=image_id("a"), inputs=inputs())
    assert new.record.number == 1 and new.previous is None and new.adopt is None
    assert "loader boot_docker/gen/1/vmlinuz" in new.block
    assert new.block.count("menuentry ") == 1
    assert list(boot(top).iterdir()) == []


def test_legacy_pair_is_adopted_with_the_hooks_last_good_image(top: Path) -> None:
    (boot(top) / "vmlinuz").write_bytes(bzimage("6.1.0-9-amd64"))
    (boot(top) / "initrd.img").write_bytes(b"old initrd")
    state = boot(top) / "state"
    state.mkdir()
    (state / "good").write_text(f"{image_id('old')}\n")
    new = bootset.plan_new(top, S, image_id=image_id("a"), inputs=inputs("6.1.0-9-amd64"))
    assert new.adopt is not None and new.adopt.image_id == image_id("old")
    assert new.record.number == 1
    # "previous" boots the flat pair with the good image pinned by ID.
    assert f"docker_image={image_id('old')} " in new.block
    assert "loader boot_docker/vmlinuz" in new.block
    staged = bootset.stage_copy(boot(top), generations.load(boot(top)).newest)
    gen = bootset.install(top, S, new, staged)
    inv = generations.load(boot(top))
    assert [g.number for g in inv.generations] == [0, 1] and inv.newest == gen
    assert inv.get(0).image_id == image_id("old")
    assert (boot(top) / "vmlinuz").read_bytes() == bzimage("6.1.0-9-amd64")  # kept in place


def test_legacy_pair_without_a_good_image_gets_no_previous_entry(top: Path) -> None:
    (boot(top) / "vmlinuz").write_bytes(b"k")
    (boot(top) / "initrd.img").write_bytes(b"i")
    new = bootset.plan_new(top, S, image_id=image_id("a"), inputs=inputs())
    assert new.block.count("menuentry ") == 1


def test_copy_is_byte_identical_and_lands_as_the_next_generation(top: Path) -> None:
    first = make_gen(boot(top), 1, "a")
    new = bootset.plan_new(top, S, image_id=image_id("b"), inputs=first.inputs,
                           copy_from=first)
    staged = bootset.stage_copy(boot(top), first)
    gen = bootset.install(top, S, new, staged)
    assert gen.number == 2 and gen.image_id == image_id("b")
    for name in ("vmlinuz", "initrd.img"):
        copy, source = boot(top) / "gen/2" / name, boot(top) / "gen/1" / name
        assert copy.read_bytes() == source.read_bytes()
    assert f"docker_image={image_id('a')} " in new.block  # previous, pinned by ID


def test_rollback_entry_boots_the_image_by_id_as_the_default(top: Path) -> None:
    make_gen(boot(top), 1, "a")
    second = make_gen(boot(top), 2, "b")
    prev = generations.load(boot(top)).previous
    new = bootset.plan_new(top, S, image_id=prev.image_id, inputs=prev.inputs,
                           copy_from=prev, pinned=True)
    default, previous = new.block.split("menuentry ")[1:]
    assert "rolled back to @" in default and f"docker_image={image_id('a')} " in default
    assert "gen/3/vmlinuz" in default
    assert f"docker_image={second.image_id} " in previous and "gen/2/vmlinuz" in previous
    assert new.record.pinned and generations.from_json(new.record.to_json(), 3).pinned


def test_install_refuses_when_another_run_added_a_generation(top: Path) -> None:
    make_gen(boot(top), 1, "a")
    new = bootset.plan_new(top, S, image_id=image_id("b"), inputs=inputs())
    make_gen(boot(top), 2, "c")  # another run, meanwhile
    staged = bootset.stage_copy(boot(top), generations.load(boot(top)).get(1))
    with pytest.raises(GenerationError, match="changed since the plan"):
        bootset.install(top, S, new, staged)
    assert sorted(p.name for p in (boot(top) / "gen").iterdir()) == ["1", "2"]


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_a_record_with_a_bad_pinned_value_is_refused(bad: object) -> None:
    data = generations.new_record(1, inputs(), "desktop:latest", image_id("a")).to_json()
    data["pinned"] = bad
    with pytest.raises(GenerationError, match="pinned"):
        generations.from_json(data, 1)


def test_collect_keeps_the_hooks_last_good_and_booted_generations(top: Path) -> None:
    for n, seed in enumerate("abcde", start=1):
        make_gen(boot(top), n, seed)
    state = boot(top) / "state"
    state.mkdir()
    (state / "good").write_text(f"{image_id('a')}\n")
    (state / "boot").write_text(f"ref=desktop:latest\nid={image_id('b')}\n")
    lines = [e.text for e in bootset.collect_old(top, S, client=None)]  # type: ignore[attr-defined]
    left = [g.number for g in generations.load(boot(top)).generations]
    assert left == [1, 2, 4, 5], lines  # newest two + the good one + the booted one
    assert "removed generation 3" in lines


def test_current_block_without_generations_names_nothing(top: Path) -> None:
    with pytest.raises(BootloaderError, match="a boot entry would name nothing"):
        bootset.current_block(top, S)
    make_gen(boot(top), 1, "a")
    assert "loader boot_docker/gen/1/vmlinuz" in bootset.current_block(top, S)
