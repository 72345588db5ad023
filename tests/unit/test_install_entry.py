"""The firmware's boot entry of a new machine: efibootmgr's listing read, one entry added.

A stand-in ``efibootmgr`` on PATH prints a listing and records its calls;
this host has no EFI variables for the real one (the removable path is what
the real boots prove).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wizard.install import flow

LISTING = """BootCurrent: 0001
BootOrder: 0001,0000,0003
Boot0000* Windows Boot Manager\tHD(1,GPT,...)/File(\\EFI\\Microsoft\\Boot\\bootmgfw.efi)
Boot0001* debian\tHD(1,GPT,...)/File(\\EFI\\debian\\shimx64.efi)
Boot0003  dockerboot desk2\tHD(1,GPT,...)/File(\\EFI\\dockerboot\\shimx64.efi)
"""


@pytest.fixture
def efibootmgr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (tmp_path / "listing").write_text(LISTING)
    script = bin_dir / "efibootmgr"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n'
                      f'[ $# -eq 0 ] && cat {tmp_path / "listing"}\n'
                      f'[ -e {tmp_path / "fail"} ] && {{ echo "Could not prepare" >&2; exit 5; }}\n'
                      "exit 0\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "efivars").mkdir()
    (tmp_path / "efivars" / "BootOrder-8be4df61").write_bytes(b"\0")
    monkeypatch.setattr(flow, "EFIVARS", tmp_path / "efivars")
    monkeypatch.setattr(flow, "_disk_and_number", lambda esp: ("/dev/nvme0n1", "1"))
    return calls


def test_titles_are_read_whole_not_as_substrings() -> None:
    assert flow.entry_titles(LISTING) == {"Windows Boot Manager", "debian", "dockerboot desk2"}


def test_a_new_entry_is_added_beside_the_others(efibootmgr: Path) -> None:
    line = flow.boot_entry("/dev/nvme0n1p1", "desk", flow.LOADER)
    assert line == ('the firmware\'s boot entry "dockerboot desk" added '
                    '(\\EFI\\dockerboot\\shimx64.efi), first in the boot order')
    assert efibootmgr.read_text().splitlines() == [
        "", "--create --disk /dev/nvme0n1 --part 1 --label dockerboot desk --loader "
            "\\EFI\\dockerboot\\shimx64.efi"]


def test_an_entry_with_the_title_is_kept_and_none_added(efibootmgr: Path) -> None:
    line = flow.boot_entry("/dev/nvme0n1p1", "desk2", flow.LOADER)
    assert line == 'the firmware\'s boot entry "dockerboot desk2" is there already'
    assert efibootmgr.read_text().splitlines() == [""]  # the listing only


def test_a_failure_is_one_line_and_the_removable_path_is_named(efibootmgr: Path) -> None:
    (efibootmgr.parent / "fail").touch()
    line = flow.boot_entry("/dev/nvme0n1p1", "desk", "\\EFI\\BOOT\\BOOTX64.EFI")
    assert "could not add" in line and "Could not prepare" in line
    assert "the removable path EFI/BOOT still boots it" in line and "\n" not in line


def test_without_efi_variables_or_with_rEFInd_there_nothing_is_called(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "EFIVARS", tmp_path / "none")
    assert flow.boot_entry("/dev/sda1", "desk").startswith("no EFI variables here")
    assert flow.boot_entry("/dev/sda1", "desk", None).startswith("rEFInd, on the ESP already")
