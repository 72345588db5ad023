"""The ESP: finding the mounted one, and refind.conf on it (FAT: names without case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.common.errors import BootloaderError
from wizard.loaders import esp as esp_mod
from wizard.loaders.esp import esp_warning, find_esp, find_refind_conf


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timeout 5\n")
    return path


def test_find_conf_prefers_refind_dir(tmp_path: Path) -> None:
    _mk(tmp_path / "EFI/BOOT/refind.conf")
    want = _mk(tmp_path / "EFI/refind/refind.conf")
    assert find_refind_conf(tmp_path) == want


def test_find_conf_boot_dir_case_insensitive(tmp_path: Path) -> None:
    want = _mk(tmp_path / "efi/boot/REFIND.CONF")
    assert find_refind_conf(tmp_path) == want


def test_find_conf_any_vendor_dir(tmp_path: Path) -> None:
    (tmp_path / "EFI/debian").mkdir(parents=True)
    want = _mk(tmp_path / "EFI/tools/refind.conf")
    assert find_refind_conf(tmp_path) == want


def test_find_conf_missing(tmp_path: Path) -> None:
    (tmp_path / "EFI/BOOT").mkdir(parents=True)
    with pytest.raises(BootloaderError, match="no refind.conf under") as info:
        find_refind_conf(tmp_path)
    assert "--refind-conf" in info.value.fix


def _mountinfo(tmp_path: Path, mounts: list[tuple[str, str]]) -> Path:
    lines = [f"{20 + i} 1 8:{i} / {mp.replace(' ', chr(92) + '040')} rw,relatime shared:1 - "
             f"{fstype} /dev/sda{i} rw" for i, (mp, fstype) in enumerate(mounts)]
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_find_esp_prefers_boot_efi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "my esp"
    (other / "EFI").mkdir(parents=True)
    info = _mountinfo(tmp_path, [("/", "ext4"), (str(other), "vfat"), ("/boot/efi", "vfat")])
    monkeypatch.setattr(esp_mod, "child_ci",
                        lambda d, n: d / n if str(d) in (str(other), "/boot/efi") else None)
    assert find_esp(info) == Path("/boot/efi")


def test_find_esp_any_fat_with_efi_dir(tmp_path: Path) -> None:
    esp = tmp_path / "esp dir"
    (esp / "EFI").mkdir(parents=True)
    empty = tmp_path / "usb"
    empty.mkdir()
    info = _mountinfo(tmp_path, [("/", "btrfs"), (str(empty), "vfat"), (str(esp), "vfat"),
                                 (str(tmp_path), "ext4")])
    assert find_esp(info) == esp


def test_find_esp_none(tmp_path: Path) -> None:
    info = _mountinfo(tmp_path, [("/", "ext4")])
    with pytest.raises(BootloaderError, match="no mounted EFI system partition") as e:
        find_esp(info)
    assert "--esp DIR" in e.value.fix


def test_esp_warning(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    info = _mountinfo(tmp_path, [("/", "ext4"), (str(esp), "vfat")])
    assert esp_warning(esp, info) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    warning = esp_warning(plain, info)
    assert warning is not None and "not a mount point" in warning and "ext4" in warning
    info2 = _mountinfo(tmp_path, [("/", "ext4"), (str(esp), "btrfs")])
    warning = esp_warning(esp, info2)
    assert warning is not None and "btrfs filesystem, not FAT" in warning


def test_secure_boot_is_the_last_byte_of_the_efivar(tmp_path) -> None:
    from wizard.loaders.esp import secure_boot

    var = tmp_path / "SecureBoot"
    for data, expected in ((b"\x06\x00\x00\x00\x01", True), (b"\x06\x00\x00\x00\x00", False),
                           (b"\x01", None)):
        var.write_bytes(data)
        assert secure_boot(var) is expected
    assert secure_boot(tmp_path / "missing") is None
