"""Reserved kernel parameters are refused in one line; other rootflags are merged."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from wizard.common.errors import ConfigError, WizardError
from wizard.settings import config
from wizard.settings.cmdline import kernel_cmdline
from wizard.settings.config import Settings
from wizard.settings.kernel_options import check_kernel_options, merge_rootflags

S = Settings(label="linux", image="desk:1")

RESERVED_CASES = [
    ("root=/dev/sda2", "root= is set by the wizard", "--label"),
    ("root=LABEL=x", "root=", "--label"),
    ("rootflags=subvol=docker", "rootflags=subvol= is set by the wizard", "rwlayer"),
    ("rootflags=compress=zstd,subvol=boot_docker", "rootflags=subvol=", "rwlayer"),
    ("rootflags=subvolid=5", "rootflags=subvolid=", "rwlayer"),
    ("docker_path=elsewhere", "docker_path= is set by the wizard", "data-root"),
    ("docker_image=evil:1", "docker_image= is set by the wizard", "--image"),
    ("toplayer=LABEL=other", "toplayer= is set by the wizard", "--label"),
    ("toplayerflags=subvol=x", "toplayerflags=", "top level"),
    ("toplayerfstype=ext4", "toplayerfstype=", "btrfs"),
    ("toplayer_path=etc", "toplayer_path= is set by the wizard", "toplayer_path"),
    ("dockerboot.anything=1", "dockerboot.anything", "reserved"),
    ("dockerboot.previous=0", "dockerboot.previous", "keep_previous_root"),
    ("quiet docker_image=x:1 splash", "docker_image=", "--image"),
]


@pytest.mark.parametrize(("options", "word", "setting"), RESERVED_CASES)
def test_reserved_parameters_are_refused_in_one_line(options: str, word: str,
                                                     setting: str) -> None:
    with pytest.raises(ConfigError) as e:
        replace(S, kernel_options=options).validate()
    line = str(e.value)
    assert "\n" not in line
    assert word in line and setting in line
    assert "remove" in line and "--kernel-options" in line


@pytest.mark.parametrize("options", ['quiet "x"', "a\nb", "a\rb", "x\x00y", "x\x1bz"])
def test_what_the_refind_entry_cannot_carry_is_refused(options: str) -> None:
    with pytest.raises(ConfigError, match="cannot carry"):
        check_kernel_options(options)


@pytest.mark.parametrize("options", ["rootflags=", "rootflags", "rootflags=compress=zstd,,ssd"])
def test_empty_rootflags_are_refused(options: str) -> None:
    with pytest.raises(ConfigError, match="empty mount option"):
        check_kernel_options(options)


@pytest.mark.parametrize("options", ["", "quiet splash", "console=ttyS0 init=/sbin/x panic=10",
                                     "rootflags=compress=zstd", "ro\tquiet", "rw",
                                     "rootfstype=btrfs", "rootwait", "my_root=1",
                                     "subvol=x", "systemd.unit=rescue.target",
                                     "dockerboot.tries=3 dockerboot.state=boot_docker/st"])
def test_ordinary_options_pass(options: str) -> None:
    check_kernel_options(options)
    replace(S, kernel_options=options).validate()


def test_user_rootflags_are_merged_after_subvol() -> None:
    line = kernel_cmdline(replace(S, kernel_options="quiet rootflags=compress=zstd splash"))
    assert line.count("rootflags=") == 1
    assert "rootflags=subvol=docker_rwlayer,compress=zstd " in line
    assert line.endswith(" quiet splash")


def test_several_user_rootflags_merge_into_one() -> None:
    flags, rest = merge_rootflags("rw1", "rootflags=compress=zstd rootflags=ssd,noatime x")
    assert flags == "rootflags=subvol=rw1,compress=zstd,ssd,noatime"
    assert rest == "x"


def test_without_rootflags_the_options_stay_verbatim() -> None:
    assert merge_rootflags("rw", " quiet  splash ") == ("rootflags=subvol=rw", "quiet  splash")


def test_saved_config_with_a_reserved_option_is_refused_on_load() -> None:
    text = config.to_toml(S).replace('kernel_options = ""',
                                     'kernel_options = "rootflags=subvol=docker"')
    with pytest.raises(WizardError, match="rootflags=subvol="):
        config.from_toml(text)


# dockerboot.state=: what the hook refuses (its _db_assess_args) and what its
# boot trips on later, each refused in one line naming the problem and the fix.
STATE_REFUSED = [
    ("docker/state", "docker's data-root"),
    ("docker", "docker's data-root"),
    ("docker_rwlayer/s", "the rw layer"),
    ("docker_rwlayer", "the rw layer"),
    ("docker_rwlayer.new", "docker_rwlayer.new"),
    ("docker_rwlayer.previous/x", "docker_rwlayer.previous"),
    ("boot_docker/toplayer/state", "the top layer"),
    ("boot_docker/gen/1", "the generations"),
    ("boot_docker", "boot_docker"),
    ("", "top level"),
    ("/", "top level"),
    (".", "top level"),
    ("./", "top level"),
    ("..", "contains .."),
    ("boot_docker/../state", "contains .."),
    ("./state", "write dockerboot.state=state"),
    ("/boot_docker/state", "write dockerboot.state=boot_docker/state"),
    ("boot_docker/state/", "write dockerboot.state=boot_docker/state"),
    ("boot_docker//state", "write dockerboot.state=boot_docker/state"),
    ("boot_docker/st@te", "characters"),
    ("boot_docker/st$(reboot)", "characters"),
]
STATE_ACCEPTED = ["boot_docker/state", "state", "boot_docker/st2", "var/dockerboot-state",
                  "docker_rwlayerx", "dockerx/state", "boot_docker/toplayerx"]


@pytest.mark.parametrize(("value", "why"), STATE_REFUSED)
def test_hostile_state_dirs_are_refused_in_one_line(value: str, why: str) -> None:
    for options in (f"dockerboot.state={value}",
                    f"quiet dockerboot.state=boot_docker/state dockerboot.state={value}"):
        with pytest.raises(ConfigError) as e:
            replace(S, kernel_options=options).validate()
        line = str(e.value)
        assert "\n" not in line and f"dockerboot.state={value} " in line and why in line, line


def test_state_dir_overlaps_follow_the_saved_paths() -> None:
    s = replace(S, docker_path="store", rwlayer="root", kernel_options="dockerboot.state=x")
    for value in ("store/state", "root/s", "root.new"):
        with pytest.raises(ConfigError, match="lies inside"):
            replace(s, kernel_options=f"dockerboot.state={value}").validate()
    replace(s, kernel_options="dockerboot.state=docker/state").validate()


@pytest.mark.parametrize("value", STATE_ACCEPTED)
def test_plain_state_dirs_pass(value: str) -> None:
    replace(S, kernel_options=f"dockerboot.state={value}").validate()
    # A bare word is no value (as the hook's _db_arg): the default stays.
    replace(S, kernel_options=f"dockerboot.state={value} dockerboot.state").validate()


HOOK = Path(__file__).resolve().parents[2] / "assets" / "hook"


@pytest.mark.parametrize("shell", ["busybox sh", "dash"])
def test_every_state_dir_the_hook_refuses_is_refused(shell: str) -> None:
    # The hook's own check, run for each value: whatever it refuses (a boot
    # stopped at the emergency shell) the wizard refuses before apply.
    script = ('. "$1/dockerboot-core.sh"; . "$1/dockerboot-assess.sh"; shift\n'
              '_db_dpath=docker _db_rw=docker_rwlayer _db_tlpath=boot_docker/toplayer\n'
              'for v; do _db_cmdline="dockerboot.state=$v"\n'
              '  if _db_assess_args 2>/dev/null; then echo ok; else echo refused; fi; done\n')
    values = [v for v, _ in STATE_REFUSED] + STATE_ACCEPTED
    out = subprocess.run([*shell.split(), "-c", script, "sh", str(HOOK), *values],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(values)
    for value, verdict in zip(values, out, strict=True):
        if verdict == "refused":
            assert value in dict(STATE_REFUSED), value
        else:
            assert value in STATE_ACCEPTED or value in dict(STATE_REFUSED), value
    assert [v for v, r in zip(values, out, strict=True) if r == "ok"
            and v in STATE_ACCEPTED] == STATE_ACCEPTED
