"""config: the saved settings round-trip as TOML; bad files and labels are one-line errors."""

import stat

import pytest

from wizard.common.errors import ConfigError
from wizard.settings import config
from wizard.settings.config import Settings


def test_config_round_trip_keeps_everything(tmp_path):
    s = Settings(label="disk", image="deb:12", hostname="box", users=("alice", "bob"),
                 kernel_options="console=ttyS0", esp="/boot/efi", extra={"future": "x"})
    assert config.from_toml(config.to_toml(s)) == s
    path = config.save(tmp_path, s)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.load(tmp_path) == s
    assert "password" not in path.read_text()


def test_config_load_missing_returns_none(tmp_path):
    assert config.load(tmp_path) is None


@pytest.mark.parametrize(
    "text", ["label = ", "image = 'a:b'", "label='x'\nimage='a:b'\nrwlayer='../x'"])
def test_bad_config_is_a_config_error(text):
    with pytest.raises(ConfigError) as e:
        config.from_toml(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("label", ["has space", "a/b", ""])
def test_bad_label_rejected(label):
    with pytest.raises(ConfigError):
        Settings(label=label, image="a:b").validate()


def test_keep_previous_root_round_trips_and_must_be_a_bool(tmp_path):
    s = Settings(label="disk", image="deb:12", keep_previous_root=False)
    assert config.from_toml(config.to_toml(s)) == s
    assert config.from_toml("label='x'\nimage='a:b'\n").keep_previous_root is True
    with pytest.raises(ConfigError, match="keep_previous_root"):
        config.from_toml("label='x'\nimage='a:b'\nkeep_previous_root='no'\n")


def test_default_entry_choice_round_trips_and_is_checked(tmp_path):
    for choice in ("yes", "no"):
        s = Settings(label="lab", image="a:b", default_entry=choice)
        assert f'default_entry = "{choice}"' in config.to_toml(s)
        assert config.from_toml(config.to_toml(s)) == s
    never = Settings(label="lab", image="a:b")
    assert "default_entry" not in config.to_toml(never)
    assert config.from_toml(config.to_toml(never)) == never
    with pytest.raises(ConfigError, match="--default-entry yes"):
        config.from_toml('label = "lab"\nimage = "a:b"\ndefault_entry = "maybe"\n')
