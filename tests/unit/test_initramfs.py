"""initramfs: version sort, probe parsing, messages, log splitting; the build in a fake
container (staged or in place), installing and discarding a staged pair."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from tests.unit.plans import TARGET, old_pair, staged_build
from wizard.boot import initramfs
from wizard.boot.initramfs import (
    BuildTarget,
    InitramfsBuildError,
    ProbeResult,
    choose_target,
    failure_message,
    newest_kernel,
    parse_probe,
    phase_progress,
)
from wizard.common.errors import InitramfsError
from wizard.common.events import StepDone
from wizard.common.resources import asset, assets_dir

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


# --- the build, in a fake container ---

class FakeContainer:
    def __init__(self, out: Path, ok: bool) -> None:
        self.out, self.ok, self.removed = out, ok, False

    def start(self) -> None:
        if self.ok:
            (self.out / initramfs.STAGED_KERNEL).write_bytes(b"kernel")
            (self.out / initramfs.STAGED_INITRD).write_bytes(b"initrd")

    def logs(self, **_: object):
        yield b"dockerboot-build: running mkinitramfs\n"
        yield b"dockerboot-build: done\n"

    def wait(self) -> dict[str, int]:
        return {"StatusCode": 0 if self.ok else 1}

    def kill(self) -> None:
        pass

    def remove(self, force: bool = False) -> None:
        self.removed = True


class FakeClient:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.containers = self
        self.made: list[FakeContainer] = []

    def create(self, image, command, **kw):
        out = next(Path(p) for p, m in kw["volumes"].items() if m["bind"] == "/out")
        self.made.append(FakeContainer(out, self.ok))
        return self.made[-1]


def _drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_stage_only_leaves_old_pair_and_returns_staged_dir(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    old_pair(boot)
    client = FakeClient()
    events, staged = _drive(initramfs.build(
        client, "desk:1", TARGET, boot, image_name="desk", image_tag="1",
        cancel=threading.Event(), assets=tmp_path, stage_only=True))
    assert staged is not None and staged.parent == boot and staged.is_dir()
    assert (boot / "vmlinuz").read_bytes() == b"old kernel"
    assert (staged / "vmlinuz.new").read_bytes() == b"kernel"
    assert isinstance(events[-1], StepDone) and str(staged) in events[-1].detail
    assert client.made[0].removed

    kernel, initrd = initramfs.install_staged(staged, boot)
    assert kernel.read_bytes() == b"kernel" and initrd.read_bytes() == b"initrd"
    assert not staged.exists()


def test_normal_build_still_replaces_and_cleans_scratch(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    old_pair(boot)
    _events, result = _drive(initramfs.build(
        FakeClient(), "desk:1", TARGET, boot, image_name="desk", image_tag="1",
        cancel=threading.Event(), assets=tmp_path))
    assert result is None
    assert (boot / "vmlinuz").read_bytes() == b"kernel"
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]


def test_failed_staged_build_leaves_nothing(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    old_pair(boot)
    with pytest.raises(initramfs.InitramfsBuildError):
        _drive(initramfs.build(FakeClient(ok=False), "desk:1", TARGET, boot, image_name="desk",
                               image_tag="1", cancel=threading.Event(), assets=tmp_path,
                               stage_only=True))
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]
    assert (boot / "initrd.img").read_bytes() == b"old initrd"


def test_install_staged_refuses_incomplete_pair(tmp_path: Path):
    boot = tmp_path / "boot"
    staged = staged_build(boot, initrd=None)
    with pytest.raises(InitramfsError, match="initrd.img.new"):
        initramfs.install_staged(staged, boot)
    assert (boot / "vmlinuz").read_bytes() == b"old kernel"


def test_new_build_removes_stale_build_dirs_first(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    old_pair(boot)
    for name in (".build-crashed", ".build-abandoned"):
        (boot / name).mkdir()
        (boot / name / initramfs.STAGED_KERNEL).write_bytes(b"stale")
    (boot / "toplayer").mkdir()
    _events, staged = _drive(initramfs.build(
        FakeClient(), "desk:1", TARGET, boot, image_name="desk", image_tag="1",
        cancel=threading.Event(), assets=tmp_path, stage_only=True))
    assert staged is not None
    assert sorted(p.name for p in boot.iterdir()) == sorted(
        ["initrd.img", "vmlinuz", "toplayer", staged.name])


def test_discard_staged_removes_only_a_build_dir_in_boot(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    staged = boot / ".build-abc"
    staged.mkdir(parents=True)
    (staged / initramfs.STAGED_INITRD).write_bytes(b"i")
    other = tmp_path / ".build-elsewhere"
    other.mkdir()
    for bad in (other, boot / "toplayer", boot / ".build-abc/../.."):
        with pytest.raises(InitramfsError, match="not a staged build"):
            initramfs.discard_staged(boot, bad)
    assert other.is_dir()
    assert initramfs.discard_staged(boot, staged) is True
    assert not staged.exists()
    assert initramfs.discard_staged(boot, staged) is False
