import os
import stat

import pytest

from wizard import atomic, config
from wizard.cmdline import kernel_cmdline, parse_cmdline
from wizard.config import Settings
from wizard.errors import ConfigError


def test_cmdline_has_seed_parameters_and_extra_last():
    s = Settings(label="linux", image="registry:5000/me/desk:1", kernel_options="quiet  splash")
    line = kernel_cmdline(s)
    params = parse_cmdline(line)
    assert params["root"] == "LABEL=linux"
    assert params["rootflags"] == "subvol=docker_rwlayer"
    assert params["docker_path"] == "docker"
    assert params["docker_image"] == "registry:5000/me/desk:1"
    assert params["toplayer"] == "LABEL=linux"
    assert params["toplayer_path"] == "boot_docker/toplayer"
    assert "rw" in params
    assert line.endswith(" quiet  splash")


def test_cmdline_follows_settings():
    s = Settings(label="x", image="a:b", rwlayer="today", docker_path="sub/docker")
    params = parse_cmdline(kernel_cmdline(s))
    assert params["rootflags"] == "subvol=today" and params["docker_path"] == "sub/docker"
    assert not kernel_cmdline(s).endswith(" ")


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


def test_write_atomic_backs_up_and_keeps_mode(tmp_path):
    f = tmp_path / "refind.conf"
    f.write_bytes(b"old\r\ncontent")
    os.chmod(f, 0o640)
    backup = atomic.write_atomic(f, b"new")
    assert f.read_bytes() == b"new"
    assert backup is not None and backup.read_bytes() == b"old\r\ncontent"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert atomic.write_atomic(f, b"new") is None  # unchanged: no rewrite, no backup
    assert not list(tmp_path.glob(".*tmp"))


def test_write_atomic_failure_leaves_old_file(tmp_path, monkeypatch):
    f = tmp_path / "x"
    f.write_bytes(b"keep me")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_atomic(f, b"new", backup=False)
    assert f.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
