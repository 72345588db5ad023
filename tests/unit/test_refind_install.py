"""rEFInd put on a new ESP from the package's files (a stand-in package directory here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.common.errors import BootloaderError
from wizard.loaders import refind_install


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "refind"
    (pkg / "drivers_x64").mkdir(parents=True)
    (pkg / "icons").mkdir()
    (pkg / "refind_x64.efi").write_bytes(b"MZ refind")
    (pkg / "refind.conf-sample").write_text("timeout 20\n")
    (pkg / "drivers_x64" / "btrfs_x64.efi").write_bytes(b"MZ btrfs")
    (pkg / "icons" / "os_linux.png").write_bytes(b"png")
    monkeypatch.setattr(refind_install, "REFIND_DIR", pkg)
    return pkg


def tree(esp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(esp)): p.read_bytes() for p in sorted(esp.rglob("*"))
            if p.is_file()}


def test_an_empty_esp_gets_rEFInd_in_the_removable_path_then_is_left_alone(
        tmp_path: Path, package: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    line, loader = refind_install.put(esp)
    assert "EFI/BOOT (the removable path)" in line and loader == "\\EFI\\BOOT\\BOOTX64.EFI"
    assert tree(esp) == {"EFI/BOOT/BOOTX64.EFI": b"MZ refind",
                         "EFI/BOOT/refind.conf": b"timeout 20\n",
                         "EFI/BOOT/drivers_x64/btrfs_x64.efi": b"MZ btrfs",
                         "EFI/BOOT/icons/os_linux.png": b"png"}
    before = tree(esp)
    line, loader = refind_install.put(esp)
    assert line.startswith("rEFInd is on the ESP already") and loader is None
    assert tree(esp) == before


def test_another_systems_removable_path_is_kept_and_rEFInd_goes_to_its_own_dir(
        tmp_path: Path, package: Path) -> None:
    esp = tmp_path / "esp"
    (esp / "efi/boot").mkdir(parents=True)  # FAT: any case
    (esp / "efi/boot/bootx64.efi").write_bytes(b"MZ windows")
    line, loader = refind_install.put(esp)
    assert "EFI/refind" in line and loader == "\\EFI\\refind\\refind_x64.efi"
    assert tree(esp)["efi/boot/bootx64.efi"] == b"MZ windows"
    assert tree(esp)["efi/refind/refind_x64.efi"] == b"MZ refind"  # in the EFI there


def test_a_file_in_the_way_is_refused_and_nothing_is_written(tmp_path: Path,
                                                            package: Path) -> None:
    esp = tmp_path / "esp"
    (esp / "EFI/BOOT/drivers_x64").mkdir(parents=True)
    (esp / "EFI/BOOT/drivers_x64/btrfs_x64.efi").write_bytes(b"someone else's")
    before = tree(esp)
    with pytest.raises(BootloaderError, match="does not overwrite it") as refused:
        refind_install.put(esp)
    assert "\n" not in str(refused.value)
    assert tree(esp) == before


def test_without_the_package_the_refusal_names_both_ways(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refind_install, "REFIND_DIR", tmp_path / "none")
    (tmp_path / "esp").mkdir()
    with pytest.raises(BootloaderError) as refused:
        refind_install.put(tmp_path / "esp")
    assert "apt-get install refind" in refused.value.fix
    assert "shim-signed" in refused.value.fix
    assert list((tmp_path / "esp").iterdir()) == []
