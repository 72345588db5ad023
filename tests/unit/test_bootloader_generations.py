"""rEFInd with generations: the default and the "previous" entry in the one marked block."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.genhelp import image_id, inputs
from tests.unit.refind_golden import SETTINGS, golden
from wizard.boot.bootloader import (
    BEGIN_MARKER,
    END_MARKER,
    PREVIOUS_TITLE,
    TITLE_PREFIX,
    generation_cmdline,
    plan_refind,
    render_entries,
    update_conf,
)
from wizard.boot.generations import Generation, new_record
from wizard.common.errors import BootloaderError
from wizard.settings.cmdline import kernel_cmdline

NEWEST = new_record(4, inputs("6.12.9-amd64"), SETTINGS.image, image_id("new"),
                    created="2026-11-30T08:00:00Z")
PREVIOUS = new_record(3, inputs("6.1.0-31-amd64"), SETTINGS.image, image_id("old"),
                      created="2026-11-01T08:00:00Z")
BLOCK = render_entries(SETTINGS, NEWEST, PREVIOUS)


def test_two_entries_match_golden() -> None:
    assert BLOCK == golden("generations.expected.conf")


def test_default_boots_newest_with_the_tag_previous_boots_by_id() -> None:
    default, previous = BLOCK.split("menuentry ")[1:]
    assert default.startswith(f'"{TITLE_PREFIX} {SETTINGS.image}" {{')
    assert "loader boot_docker/gen/4/vmlinuz\n" in default
    assert "initrd boot_docker/gen/4/initrd.img\n" in default
    assert f"docker_image={SETTINGS.image} " in default and "dockerboot.generation=4" in default
    old = image_id("old")
    assert previous.startswith(f'"{PREVIOUS_TITLE} 3: {SETTINGS.image} @{old[7:19]}" {{')
    assert "loader boot_docker/gen/3/vmlinuz\n" in previous
    assert f"docker_image={old} " in previous and "dockerboot.generation=3" in previous
    # Both carry everything else of the command line unchanged.
    assert f'options "{generation_cmdline(SETTINGS, old, 3)}"' in previous
    assert generation_cmdline(SETTINGS, old, 3).startswith(
        kernel_cmdline(replace(SETTINGS, image=old)))


def test_default_selection_docker_image_matches_only_the_default() -> None:
    titles = [line.split('"')[1] for line in BLOCK.splitlines() if line.startswith("menuentry")]
    assert [("Docker image" in t) for t in titles] == [True, False]


def test_old_single_entry_block_is_replaced_in_place() -> None:
    out = update_conf(golden("with_block.conf"), BLOCK)
    assert out == golden("with_block.generations.expected.conf")
    assert out.count(BEGIN_MARKER) == 1 and out.count(END_MARKER) == 1
    assert "desktop:old" not in out
    assert out.index('"Debian rescue"') < out.index(BEGIN_MARKER) < out.index('"Arch Linux"')
    # Everything outside the block is the user's, byte for byte.
    old = golden("with_block.conf")
    assert out[:out.index(BEGIN_MARKER)] == old[:old.index(BEGIN_MARKER)]
    assert out[out.index(END_MARKER):] == old[old.index(END_MARKER):]


def test_back_to_one_entry_and_idempotent() -> None:
    two = update_conf(golden("sample.conf"), BLOCK)
    assert update_conf(two, BLOCK) == two
    one = render_entries(SETTINGS, NEWEST)  # the previous one gone: one entry again
    assert update_conf(two, one) == update_conf(golden("sample.conf"), one)


def test_crlf_file_gets_a_crlf_block(tmp_path: Path) -> None:
    conf = tmp_path / "refind.conf"
    conf.write_bytes(golden("with_block.conf").replace("\n", "\r\n").encode())
    old, new = plan_refind(conf, BLOCK)
    assert new.count(b"\r\n") == new.count(b"\n") and b"gen/3/vmlinuz\r\n" in new


def test_no_previous_or_previous_of_unknown_image_gives_one_entry() -> None:
    assert render_entries(SETTINGS, NEWEST).count("menuentry") == 1
    legacy = Generation(0, "6.1.0-18-amd64", None, None, None, "2026-01-01T00:00:00Z",
                        files=(), legacy=True)
    assert render_entries(SETTINGS, NEWEST, legacy).count("menuentry") == 1


def test_adopted_legacy_previous_boots_the_flat_pair_by_id() -> None:
    legacy = Generation(0, "6.1.0-18-amd64", "desktop:latest", image_id("legacy"), None,
                        "2026-01-01T00:00:00Z", files=(), legacy=True)
    block = render_entries(replace(SETTINGS, boot_dir="bd", toplayer_path="bd/top"),
                           NEWEST, legacy)
    previous = block.split("menuentry ")[2]
    assert "loader bd/vmlinuz\n    initrd bd/initrd.img\n" in previous
    assert f"docker_image={image_id('legacy')} " in previous
    assert "loader bd/gen/4/vmlinuz\n" in block


@pytest.mark.parametrize("options", ['quiet foo="bar"', "quiet\nsingle"])
def test_unquotable_values_are_refused(options: str) -> None:
    with pytest.raises(BootloaderError, match="double quote or line break"):
        render_entries(replace(SETTINGS, kernel_options=options), NEWEST, PREVIOUS)
