"""Pure parts of wizard.initramfs: version sort, probe parsing, messages, log splitting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wizard import initramfs
from wizard.errors import InitramfsError
from wizard.initramfs import (
    BuildTarget,
    InitramfsBuildError,
    ProbeResult,
    choose_target,
    failure_message,
    newest_kernel,
    parse_probe,
    phase_progress,
)
from wizard.resources import asset, assets_dir

DEBIAN_PROBE = """\
kernel 6.1.0-9-amd64 /boot/vmlinuz-6.1.0-9-amd64
kernel 6.1.0-18-amd64 /boot/vmlinuz-6.1.0-18-amd64
kernel 6.1.0-18-amd64 /boot/vmlinuz-6.1.0-18-amd64
generator mkinitramfs /usr/sbin/mkinitramfs
btrfs /usr/bin/btrfs
"""


def test_version_sort_is_numeric_not_lexical():
    assert newest_kernel(["6.1.0-9-amd64", "6.1.0-18-amd64", "5.10.0-30-amd64"]) == "6.1.0-18-amd64"
    assert newest_kernel(["6.9.1-arch1-1", "6.10.2-arch1-1"]) == "6.10.2-arch1-1"
    assert newest_kernel(["6.8.5-301.fc40.x86_64", "6.8.11-300.fc40.x86_64"]) \
        == "6.8.11-300.fc40.x86_64"
    ordered = sorted(["6.1.10", "6.1.9", "6.1", "6.1.9-rt"], key=initramfs.version_key)
    assert ordered == ["6.1", "6.1.9", "6.1.9-rt", "6.1.10"]


def test_parse_probe_deduplicates_and_ignores_noise():
    probe = parse_probe(DEBIAN_PROBE + "some warning from the shell\ngenerator foo /bin/foo\n")
    assert probe.kernels == {"6.1.0-9-amd64": "/boot/vmlinuz-6.1.0-9-amd64",
                             "6.1.0-18-amd64": "/boot/vmlinuz-6.1.0-18-amd64"}
    assert probe.generators == ("initramfs-tools",)
    assert probe.btrfs == "/usr/bin/btrfs"


def test_choose_target_picks_newest_kernel():
    target = choose_target("desk:1", parse_probe(DEBIAN_PROBE))
    assert target == BuildTarget("initramfs-tools", "6.1.0-18-amd64",
                                 "/boot/vmlinuz-6.1.0-18-amd64")


def test_dracut_preferred_over_leftover_mkinitramfs():
    # Debian keeps initramfs-tools-core (mkinitramfs) installed next to dracut.
    out = DEBIAN_PROBE + "generator dracut /usr/bin/dracut\n"
    assert choose_target("d:1", parse_probe(out)).generator == "dracut"
    assert choose_target("d:1", parse_probe(out), "initramfs-tools").generator == "initramfs-tools"


def test_arch_kernel_in_usr_lib_modules():
    out = ("kernel 6.10.2-arch1-1 /usr/lib/modules/6.10.2-arch1-1/vmlinuz\n"
           "generator mkinitcpio /usr/bin/mkinitcpio\nbtrfs /usr/bin/btrfs\n")
    target = choose_target("arch:latest", parse_probe(out))
    assert target == BuildTarget("mkinitcpio", "6.10.2-arch1-1",
                                 "/usr/lib/modules/6.10.2-arch1-1/vmlinuz")


@pytest.mark.parametrize(("probe", "needle"), [
    ("generator dracut /usr/bin/dracut\nbtrfs /usr/bin/btrfs\n", "linux-image-amd64"),
    ("kernel 6.1 /boot/vmlinuz-6.1\ngenerator dracut /usr/bin/dracut\n", "btrfs-progs"),
    ("kernel 6.1 /boot/vmlinuz-6.1\nbtrfs /usr/bin/btrfs\n", "initramfs-tools"),
])
def test_missing_pieces_name_the_package(probe, needle):
    with pytest.raises(InitramfsError) as err:
        choose_target("x:y", parse_probe(probe))
    message = str(err.value)
    assert "x:y" in message and needle in message and "Dockerfile" in message
    assert "\n" not in message


def test_forced_generator_must_exist():
    with pytest.raises(InitramfsError, match="does not have dracut"):
        choose_target("x:y", parse_probe(DEBIAN_PROBE), "dracut")
    with pytest.raises(InitramfsError, match="unknown initramfs generator"):
        choose_target("x:y", parse_probe(DEBIAN_PROBE), "booster")


def test_no_kernel_checked_before_btrfs():
    with pytest.raises(InitramfsError, match="no kernel"):
        choose_target("x:y", ProbeResult({}, (), None))


def test_phase_progress_is_monotonic_over_a_build_log():
    log = ["dockerboot-build: installing the dockerboot hook for dracut",
           "dracut: Executing: /usr/bin/dracut --no-hostonly",
           "dockerboot-build: running dracut for 6.1.0-18-amd64",
           "dockerboot-build: copying kernel 6.1.0-18-amd64",
           "dockerboot-build: done"]
    fractions = [f for f in map(phase_progress, log) if f is not None]
    assert fractions == sorted(fractions) and len(fractions) == 4 and fractions[-1] == 1.0
    assert phase_progress("dracut: dockerboot-build: done") is None
    assert phase_progress("dracut: *** Creating image file '/out/initrd.img.new' ***") == 0.7
    assert phase_progress("==> Starting build: '6.10.2-arch1-1'") == 0.2
    assert phase_progress("W: Possible missing firmware /lib/firmware/x.bin") is None


def test_failure_message_prefers_script_error_line():
    target = BuildTarget("dracut", "6.1", "/boot/vmlinuz-6.1")
    tail = ["dracut: something", "dockerboot-build: error: dracut failed for kernel 6.1", "x"]
    assert failure_message(target, tail) == "dracut failed for kernel 6.1"
    assert failure_message(target, ["killed"]) == "dracut failed for kernel 6.1"
    err = InitramfsBuildError("p", "f", tail)
    assert err.log_tail == tail and str(err) == "p — f" and isinstance(err, InitramfsError)


def test_lines_splits_across_chunk_borders():
    chunks = [b"one\ntw", b"o\r\n", b"\xff three", b"\nlast"]
    assert list(initramfs._lines(iter(chunks))) == ["one", "two", "\ufffd three", "last"]


def test_assets_found_in_repo_for_editable_install():
    assert asset("build-initramfs.sh") == assets_dir() / "build-initramfs.sh"
    with pytest.raises(FileNotFoundError):
        asset("no/such/asset")


def test_build_script_is_posix_sh_and_rejects_bad_usage(tmp_path: Path):
    script = asset("build-initramfs.sh")
    # dash is Debian's /bin/sh: -n catches bashisms dash cannot parse.
    assert subprocess.run(["dash", "-n", str(script)]).returncode == 0
    bad = subprocess.run(["sh", str(script), "dracut"], capture_output=True, text=True)
    assert bad.returncode != 0
    assert bad.stdout.strip().splitlines()[-1].startswith("dockerboot-build: error: usage")
    missing = subprocess.run(["sh", str(script), "dracut", "0.0-none", str(tmp_path / "nope"),
                              "a", "b"], capture_output=True, text=True)
    assert missing.returncode != 0 and "does not exist" in missing.stdout
