"""Plans limited to a mode's steps: no probe container, no ESP for a top-layer change.

Also the staged-build cleanup in the core (stale ``.build-*`` siblings,
``discard_staged``) and the CLI's ``--toplayer-only`` argument checks.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.unit.test_tui_core import PART, TARGET, FakeClient, _drive, _old_pair, _plan
from tests.unit.test_tui_core import _session as _session_of  # the plan's own session
from wizard import apply, cli, initramfs, review
from wizard.apply import Session
from wizard.config import Settings
from wizard.errors import ConfigError, InitramfsError
from wizard.report import render_plan

SETTINGS = Settings(label="dbw", image="desk:1", hostname="desk2")


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the expensive/fallible probes ``make_plan`` may run."""
    calls: list[str] = []

    def detect(client, image):
        calls.append("detect")
        return TARGET

    def locate(settings):
        calls.append("locate_refind")
        raise AssertionError("the ESP must not be looked for")

    def resolve(root, image):
        calls.append("resolve")
        (root / "sub").mkdir(parents=True, exist_ok=True)  # the image's (empty) root
        (root / "sub").chmod(0o755)
        return root / "sub"

    monkeypatch.setattr(apply.images, "resolve_subvolume", resolve)
    monkeypatch.setattr(apply.initramfs, "detect", detect)
    monkeypatch.setattr(apply, "locate_refind", locate)
    return calls


def _session(top: Path, settings: Settings = SETTINGS) -> Session:
    return Session(settings, PART, top, None, top / "docker")  # type: ignore[arg-type]


def test_toplayer_only_plan_needs_no_probe_and_no_esp(tmp_path: Path, probes: list[str]):
    plan = apply.make_plan(_session(tmp_path), {}, steps=apply.TOPLAYER_ONLY)
    assert probes == ["resolve"]  # the image is still proven bootable
    assert plan.target is None and plan.refind_conf is None
    assert plan.refind_old is None and plan.refind_new is None
    changes = {c.relpath: c.new for c in plan.toplayer_changes}
    assert changes["etc/hostname"] == b"desk2\n"
    # The machine files of a real machine come with every top-layer plan.
    assert sorted(changes) == ["etc/docker/daemon.json", "etc/fstab", "etc/hostname",
                               "etc/hosts", "etc/machine-id"]
    assert plan.persistent.subvolumes == ["home", "journal"]
    assert b'hostname = "desk2"' in plan.config_new
    assert "root=LABEL=dbw" in plan.cmdline


def test_full_plan_still_probes_and_finds_refind(tmp_path: Path, probes: list[str],
                                                 monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    monkeypatch.setattr(apply, "locate_refind", lambda s: (probes.append("locate") or conf, []))
    plan = apply.make_plan(_session(tmp_path), {})
    assert probes == ["resolve", "detect", "locate"]
    assert plan.target == TARGET and plan.refind_conf == conf
    assert plan.refind_new is not None and b"dockerboot-wizard" in plan.refind_new


def test_staged_build_skips_the_probe(tmp_path: Path, probes: list[str]):
    staged = tmp_path / "boot_docker/.build-x"
    plan = apply.make_plan(_session(tmp_path), {}, steps=("initramfs", "config"),
                           staged=staged)
    assert "detect" not in probes and plan.target is None and plan.staged == staged
    sections = review.sections(plan, ("initramfs", "config"))
    assert any("already built, installed now" in s.body for s in sections)


def test_plan_rejects_unknown_step(tmp_path: Path, probes: list[str]):
    with pytest.raises(ValueError, match="everything"):
        apply.make_plan(_session(tmp_path), {}, steps=("everything",))
    assert probes == []


def test_execute_refuses_a_step_the_plan_lacks_before_writing(tmp_path: Path):
    plan = _plan(tmp_path, SETTINGS, target=None, refind_conf=None, refind_old=None,
                 refind_new=None)
    with pytest.raises(apply.PlanError, match="initramfs, bootloader") as e:
        list(apply.execute(_session_of(plan), plan))
    assert "steps=" in str(e.value)  # the fix is named
    assert not (tmp_path / "boot_docker/toplayer").exists()
    assert not (tmp_path / "boot_docker/dockerboot-wizard.toml").exists()
    list(apply.execute(_session_of(plan), plan, steps=apply.TOPLAYER_ONLY))  # as planned
    assert (tmp_path / "boot_docker/toplayer/etc/hostname").read_bytes() == b"desk1\n"


def test_report_and_review_of_a_toplayer_only_plan(tmp_path: Path):
    plan = _plan(tmp_path, SETTINGS, target=None, refind_conf=None, refind_old=None,
                 refind_new=None)
    text = render_plan(plan, apply.TOPLAYER_ONLY)
    assert "etc/hostname" in text and "+desk1" in text
    assert "vmlinuz, " in text and "kept as they are" in text
    assert "boot entry kept as it is" in text and "dockerboot-wizard.toml" in text
    assert "Initramfs:" not in text
    titles = [s.title for s in review.sections(plan, apply.TOPLAYER_ONLY)]
    assert not any("refind.conf" in t or "initrd.img" in t for t in titles)
    full = render_plan(_plan(tmp_path, SETTINGS))
    assert "initramfs-tools, kernel 6.1.0-18-amd64" in full and "+# new" in full


def test_new_build_removes_stale_build_dirs_first(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    _old_pair(boot)
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


def test_cli_toplayer_only_refuses_boot_options():
    parser = cli.build_parser()
    ok = parser.parse_args(["apply", "--label", "x", "--toplayer-only", "--hostname", "h"])
    assert ok.toplayer_only
    cli.check_toplayer_only(ok)
    bad = parser.parse_args(["apply", "--label", "x", "--toplayer-only", "--image", "a:b",
                             "--kernel-options", "quiet"])
    with pytest.raises(ConfigError) as e:
        cli.check_toplayer_only(bad)
    assert "--image, --kernel-options" in str(e.value) and "\n" not in str(e.value)
