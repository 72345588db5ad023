"""cmdline: the kernel command line the boot entry carries, from the settings."""

from wizard.settings.cmdline import kernel_cmdline, parse_cmdline
from wizard.settings.config import Settings


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


def test_previous_root_is_kept_unless_turned_off():
    on = kernel_cmdline(Settings(label="x", image="a:b"))
    assert "dockerboot.previous" not in on      # the hook's default: entries stay as they were
    off = kernel_cmdline(Settings(label="x", image="a:b", keep_previous_root=False,
                                  kernel_options="quiet"))
    assert parse_cmdline(off)["dockerboot.previous"] == "0"
    assert off.endswith(" quiet")               # the user's options still come last
