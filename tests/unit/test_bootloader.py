"""rEFInd entries: rendering, marked-block editing, the default entry, atomic write."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.genhelp import image_id, inputs
from tests.unit.refind_golden import SETTINGS, golden
from wizard.boot import bootloader
from wizard.boot.bootloader import (
    BEGIN_MARKER,
    DEFAULT_LINE,
    END_MARKER,
    REPLACED_PREFIX,
    default_cmdline,
    default_title,
    plan_refind,
    render_entries,
    update_conf,
    write_refind,
)
from wizard.boot.generations import new_record
from wizard.common.errors import BootloaderError
from wizard.settings.cmdline import kernel_cmdline
from wizard.settings.config import Settings

FIRST = new_record(1, inputs(), SETTINGS.image, image_id("a"), "2026-11-01T08:00:00Z")
ENTRY = render_entries(SETTINGS, FIRST)
"""The block of a first apply: generation 1, no previous entry."""


def test_default_entry_title_is_stable_for_default_selection() -> None:
    s = Settings(label="x", image="a:1")
    entry = render_entries(s, FIRST)
    assert default_title(s) == "Docker image a:1"
    assert f'\nmenuentry "{default_title(s)}" {{\n' in entry
    assert entry.startswith(BEGIN_MARKER + "\n") and entry.endswith(END_MARKER + "\n")


def test_entries_use_boot_dir_generation_and_real_cmdline() -> None:
    s = Settings(label="data", image="desk:2", boot_dir="bd", toplayer_path="bd/top")
    entry = render_entries(s, FIRST)
    assert "    loader bd/gen/1/vmlinuz\n    initrd bd/gen/1/initrd.img\n" in entry
    assert "    volume data\n" in entry
    assert default_cmdline(s, FIRST) == f"{kernel_cmdline(s)} dockerboot.generation=1"
    assert f'    options "{default_cmdline(s, FIRST)}"\n' in entry


@pytest.mark.parametrize("label", ['li"nux', "li\nnux"])
def test_entries_reject_unquotable_values(label: str) -> None:
    with pytest.raises(BootloaderError, match="double quote or line break"):
        render_entries(replace(SETTINGS, label=label), FIRST)


def written(block: str) -> str:
    """``block`` as refind.conf gets it: the wizard's default_selection line first inside."""
    head, _, rest = block.partition("\n")
    return f"{head}\n{DEFAULT_LINE}\n{rest}"


def test_add_to_sample_matches_golden() -> None:
    assert update_conf(golden("sample.conf"), ENTRY) == golden("sample.expected.conf")


def test_add_keeps_every_original_byte_as_prefix() -> None:
    text = golden("sample.conf")
    out = update_conf(text, ENTRY)
    assert out.startswith(text) and out[len(text):] == written(ENTRY)
    assert "\tvolume\tRESCUE\n" in out  # the user's tabs survive


def test_replace_old_block_matches_golden() -> None:
    out = update_conf(golden("with_block.conf"), ENTRY)
    assert out == golden("with_block.expected.conf")
    assert "desktop:old" not in out
    assert out.count(BEGIN_MARKER) == 1
    # The user's entries around the block are untouched and in place.
    assert out.index('"Debian rescue"') < out.index(BEGIN_MARKER) < out.index('"Arch Linux"')


@pytest.mark.parametrize("name", ["sample.conf", "with_block.conf"])
def test_idempotent(name: str) -> None:
    once = update_conf(golden(name), ENTRY)
    assert update_conf(once, ENTRY) == once


def test_empty_file_gets_only_the_block() -> None:
    assert update_conf("", ENTRY) == written(ENTRY)


def test_no_trailing_newline_gets_one_before_block() -> None:
    text = "timeout 5\n#last line without newline"
    out = update_conf(text, ENTRY)
    assert out == text + "\n" + written(ENTRY)
    assert update_conf(out, ENTRY) == out


def test_crlf_file_keeps_crlf_and_block_follows_it() -> None:
    text = golden("sample.conf").replace("\n", "\r\n")
    out = update_conf(text, ENTRY)
    assert out.startswith(text)
    block = out[len(text):]
    assert block == written(ENTRY).replace("\n", "\r\n")
    assert "\n" not in block.replace("\r\n", "")
    assert update_conf(out, ENTRY) == out
    other = render_entries(Settings(label="linux", image="b:2"), FIRST)
    replaced = update_conf(out, other)
    assert replaced == text + written(other).replace("\n", "\r\n")


def test_crlf_without_trailing_newline() -> None:
    text = "timeout 5\r\nuse_nvram false"
    out = update_conf(text, ENTRY)
    assert out == text + "\r\n" + written(ENTRY).replace("\n", "\r\n")


def test_block_at_end_without_newline_is_replaced_exactly() -> None:
    text = "timeout 5\n" + ENTRY.rstrip("\n")
    other = render_entries(Settings(label="linux", image="b:2"), FIRST)
    assert update_conf(text, other) == "timeout 5\n" + written(other).rstrip("\n")


def test_non_utf8_bytes_survive(tmp_path: Path) -> None:
    conf = tmp_path / "refind.conf"
    raw = b"# caf\xe9 latin-1 comment\ntimeout 5\n"
    conf.write_bytes(raw)
    old, new = plan_refind(conf, ENTRY)
    assert old == raw and new.startswith(raw) and new[len(raw):] == written(ENTRY).encode()


@pytest.mark.parametrize("text, counts", [
    (f"timeout 5\n{BEGIN_MARKER}\nmenuentry x {{\n}}\n", "1 begin, 0 end"),
    (f"{BEGIN_MARKER}\n{BEGIN_MARKER}\n{END_MARKER}\n", "2 begin, 1 end"),
    (f"{END_MARKER}\n{BEGIN_MARKER}\n", "1 begin, 1 end"),
    (f"{END_MARKER}\n", "0 begin, 1 end"),
])
def test_malformed_markers_raise_and_leave_file_untouched(
        tmp_path: Path, text: str, counts: str) -> None:
    with pytest.raises(BootloaderError, match=counts) as info:
        update_conf(text, ENTRY)
    assert "by hand" in info.value.fix
    conf = tmp_path / "refind.conf"
    conf.write_text(text)
    with pytest.raises(BootloaderError):
        plan_refind(conf, ENTRY)
    assert conf.read_text() == text
    assert list(tmp_path.iterdir()) == [conf]


def test_utf16_conf_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "refind.conf"
    conf.write_bytes("timeout 5\n".encode("utf-16"))
    with pytest.raises(BootloaderError, match="UTF-16"):
        plan_refind(conf, ENTRY)


def test_write_creates_backup_and_atomic_content(tmp_path: Path) -> None:
    conf = tmp_path / "refind.conf"
    original = golden("sample.conf").encode()
    conf.write_bytes(original)
    os.chmod(conf, 0o600)
    old, new = plan_refind(conf, ENTRY)
    assert old == original
    backup = write_refind(conf, new)
    assert backup is not None and backup.parent == tmp_path
    assert backup.name.startswith("refind.conf.dockerboot-") and backup.suffix == ".bak"
    assert backup.read_bytes() == original
    assert conf.read_bytes() == golden("sample.expected.conf").encode()
    assert conf.stat().st_mode & 0o777 == 0o600
    # No temp files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["refind.conf", backup.name])
    # A second apply with the same entry changes nothing and makes no backup.
    old2, new2 = plan_refind(conf, ENTRY)
    assert old2 == new2 == new
    assert write_refind(conf, new2) is None
    assert len(list(tmp_path.iterdir())) == 2


def test_plan_missing_file_is_a_bootloader_error(tmp_path: Path) -> None:
    with pytest.raises(BootloaderError, match="cannot read"):
        plan_refind(tmp_path / "nope.conf", ENTRY)


# --- the default entry: rEFInd's own default is "+", the entry booted last ---

def test_stock_sample_has_no_active_default_selection() -> None:
    # What rEFInd does without the wizard's line: boot the entry booted last.
    assert not bootloader.user_defaults(golden("sample.conf"))
    stock = Path("/usr/share/refind/refind/refind.conf-sample")
    if stock.is_file():
        assert not bootloader.user_defaults(stock.read_text(errors="replace"))


def test_the_block_starts_with_the_line_naming_only_the_default_entry() -> None:
    out = update_conf(golden("sample.conf"), ENTRY)
    block = out[out.index(BEGIN_MARKER):]
    assert block.splitlines()[1] == DEFAULT_LINE == 'default_selection "Docker image"'
    # Written once, outside every menuentry stanza (a top-level token for rEFInd).
    assert out.count("\ndefault_selection ") == 1
    assert block.index(DEFAULT_LINE) < block.index("menuentry")


USER = ("timeout 5\n"
        "default_selection Windows\n"
        "\tDefault_Selection \"+,vmlinuz\" 23:00 01:00\n"
        "#default_selection 1\n"
        'menuentry "Windows" {\n    loader /EFI/ms/boot.efi\n}\n')


@pytest.mark.parametrize("choice", ["", "no"])
def test_the_users_own_setting_is_kept_byte_for_byte_unless_replaced(choice: str) -> None:
    assert [n for n, _ in bootloader.user_defaults(USER)] == [2, 3]
    out = update_conf(USER, ENTRY, choice)
    assert out == USER + ENTRY  # no line of ours: theirs decides, as it says
    assert bootloader.default_entry(USER, choice) == "no"
    assert "line 2: default_selection Windows" in bootloader.describe_default(USER, choice)


def test_yes_comments_out_theirs_and_no_puts_it_back() -> None:
    out = update_conf(USER, ENTRY, "yes")
    assert out == (USER.replace("default_selection Windows",
                                f"{REPLACED_PREFIX}default_selection Windows")
                   .replace('\tDefault_Selection "+',
                            f'\t{REPLACED_PREFIX}Default_Selection "+')
                   + written(ENTRY))
    assert not bootloader.user_defaults(out)  # only the wizard's line is active now
    assert update_conf(out, ENTRY, "yes") == out
    assert "commented out" in bootloader.describe_default(USER, "yes")
    # Changing one's mind: "no" restores theirs exactly and drops the wizard's line.
    assert update_conf(out, ENTRY, "no") == USER + ENTRY
    # Never asked (""): lines an earlier "yes" commented out stay as they are.
    assert update_conf(out, ENTRY, "") == out


def test_the_wizards_own_line_outside_the_block_is_not_the_users() -> None:
    text = 'timeout 5\ndefault_selection "Docker image"\n'
    assert not bootloader.user_defaults(text)
    assert update_conf(text, ENTRY, "") == text + written(ENTRY)


def test_theirs_with_crlf_and_no_final_newline() -> None:
    text = "timeout 5\r\ndefault_selection Windows"
    assert update_conf(text, ENTRY, "no") == text + "\r\n" + ENTRY.replace("\n", "\r\n")
    yes = update_conf(text, ENTRY, "yes")
    assert yes == (f"timeout 5\r\n{REPLACED_PREFIX}default_selection Windows\r\n"
                   + written(ENTRY).replace("\n", "\r\n"))
    # A block that ended the file without a newline still does, with the line in it.
    last = "default_selection 1\r\n" + ENTRY.replace("\n", "\r\n").rstrip("\r\n")
    assert update_conf(last, ENTRY, "yes") == (
        f"{REPLACED_PREFIX}default_selection 1\r\n"
        + written(ENTRY).replace("\n", "\r\n").rstrip("\r\n"))


def test_the_message_after_the_write_tells_what_boots() -> None:
    assert bootloader.next_boot("timeout 5\n", "", "lab", "generation 3") == (
        "the next boot of LABEL=lab starts generation 3")
    theirs = bootloader.next_boot(USER, "no", "lab", "generation 3")
    assert "line 2: default_selection Windows" in theirs and "only if" in theirs
