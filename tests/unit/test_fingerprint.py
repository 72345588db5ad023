"""The initramfs inputs' fingerprint and the Settings.generations field."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from wizard.boot.fingerprint import Fingerprint, assets_hash, fingerprint
from wizard.common.errors import ConfigError
from wizard.common.resources import assets_dir
from wizard.settings import config
from wizard.settings.config import Settings


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    copy = tmp_path / "assets"
    shutil.copytree(assets_dir(), copy)
    return copy


def test_assets_hash_is_stable_and_per_generator(assets: Path) -> None:
    h = assets_hash("initramfs-tools", assets)
    assert h == assets_hash("initramfs-tools", assets) == assets_hash("initramfs-tools")
    assert len({h, assets_hash("dracut", assets), assets_hash("mkinitcpio", assets)}) == 3


def test_assets_hash_follows_what_the_build_installs(assets: Path) -> None:
    before = {g: assets_hash(g, assets) for g in ("initramfs-tools", "dracut")}
    (assets / "dracut" / "90dockerboot" / "module-setup.sh").write_text("changed\n")
    assert assets_hash("dracut", assets) != before["dracut"]
    assert assets_hash("initramfs-tools", assets) == before["initramfs-tools"]
    (assets / "hook" / "dockerboot-core.sh").write_text("changed\n")
    assert assets_hash("initramfs-tools", assets) != before["initramfs-tools"]
    (assets / "tcss").mkdir(exist_ok=True)
    (assets / "tcss" / "x.tcss").write_text("not in the initramfs")
    after = assets_hash("initramfs-tools", assets)
    (assets / "tcss" / "x.tcss").write_text("still not")
    assert assets_hash("initramfs-tools", assets) == after


def test_assets_hash_ignores_modes(assets: Path) -> None:
    h = assets_hash("initramfs-tools", assets)
    (assets / "build-initramfs.sh").chmod(0o644)
    assert assets_hash("initramfs-tools", assets) == h


def test_assets_hash_refuses_unknown_generators_and_missing_assets(assets: Path) -> None:
    with pytest.raises(ValueError):
        assets_hash("grub", assets)
    shutil.rmtree(assets / "mkinitcpio")
    with pytest.raises(FileNotFoundError):
        assets_hash("mkinitcpio", assets)


def test_changes_say_what_decides_a_build() -> None:
    old = Fingerprint("initramfs-tools", "6.1.0-31-amd64", "a" * 64)
    assert old.changes(old) == []
    assert Fingerprint("initramfs-tools", "6.12.9-amd64", "a" * 64).changes(old) == [
        "kernel 6.1.0-31-amd64 -> 6.12.9-amd64"]
    assert Fingerprint("dracut", "6.1.0-31-amd64", "b" * 64).changes(old) == [
        "generator initramfs-tools -> dracut", "the wizard's hook changed"]
    assert old.changes(None) == ["no generation built yet"]


def test_fingerprint_round_trip_and_validation() -> None:
    fp = fingerprint("dracut", "6.1.0-31-amd64")
    assert Fingerprint.from_json(fp.to_json()) == fp
    for bad in (None, [], {"generator": "dracut", "kernel_version": "../x", "assets": "a" * 64},
                {"generator": "dracut", "kernel_version": "6.1", "assets": "A" * 64}):
        with pytest.raises(ValueError):
            Fingerprint.from_json(bad)


def test_settings_generations_default_round_trip_and_bounds() -> None:
    s = Settings(label="linux", image="desk:1")
    assert s.generations == 2
    s3 = replace(s, generations=3)
    assert config.from_toml(config.to_toml(s3)) == s3
    for bad in (1, 0, -2, 65, True, "2"):
        with pytest.raises(ConfigError, match="generations"):
            replace(s, generations=bad).validate()
    text = config.to_toml(s).replace("generations = 2", "generations = true")
    with pytest.raises(ConfigError, match="generations"):
        config.from_toml(text)
