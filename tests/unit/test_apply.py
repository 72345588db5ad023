"""apply: plans limited to a mode's steps (no probe container, no ESP for a top-layer
change), and executing them: the steps asked for only, a staged pair installed, edits."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.plans import (
    IMAGE_ID,
    SETTINGS,
    TARGET,
    ImagesOnly,
    make_plan,
    session,
    staged_build,
)
from wizard.common.events import StepDone
from wizard.flows import apply, review
from wizard.toplayer import selfupdate

HOSTED = replace(SETTINGS, hostname="desk2")


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


def test_toplayer_only_plan_needs_no_probe_and_no_esp(tmp_path: Path, probes: list[str]):
    plan = apply.make_plan(session(tmp_path, HOSTED), {}, steps=apply.TOPLAYER_ONLY)
    assert probes == ["resolve"]  # the image is still proven bootable
    assert plan.target is None and plan.refind_conf is None
    assert plan.refind_old is None and plan.refind_new is None
    changes = {c.relpath: c.new for c in plan.toplayer_changes}
    assert changes["etc/hostname"] == b"desk2\n"
    # The machine files of a real machine come with every top-layer plan.
    assert sorted(c for c in changes if c not in selfupdate.top_files(HOSTED)) == [
        "etc/docker/daemon.json", "etc/fstab", "etc/hostname", "etc/hosts", "etc/machine-id"]
    # And the booted system's own update command.
    assert selfupdate.COMMAND in changes and selfupdate.CONF in changes
    assert plan.persistent.subvolumes == ["home", "journal"]
    assert b'hostname = "desk2"' in plan.config_new
    assert "root=LABEL=dbw" in plan.cmdline


def test_full_plan_still_probes_and_finds_refind(tmp_path: Path, probes: list[str],
                                                 monkeypatch: pytest.MonkeyPatch):
    conf = tmp_path / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    monkeypatch.setattr(apply, "locate_refind", lambda s: (probes.append("locate") or conf, []))
    plan = apply.make_plan(session(tmp_path, HOSTED, ImagesOnly()), {})
    assert probes == ["resolve", "detect", "locate"]
    assert plan.target == TARGET and plan.refind_conf == conf
    assert plan.refind_new is not None and b"dockerboot-wizard" in plan.refind_new
    # The first build is generation 1, pinned to the tag's ID now; the entry names it.
    assert plan.generation is not None and plan.generation.record.number == 1
    assert plan.generation.record.image_id == IMAGE_ID
    assert plan.generation.record.kernel_version == TARGET.kver
    assert b"loader boot_docker/gen/1/vmlinuz" in plan.refind_new
    assert not (tmp_path / "boot_docker/gen").exists()  # planned, nothing written


def test_staged_build_is_planned_as_a_generation(tmp_path: Path, probes: list[str]):
    staged = tmp_path / "boot_docker/.build-x"
    plan = apply.make_plan(session(tmp_path, HOSTED, ImagesOnly()), {},
                           steps=("initramfs", "config"), staged=staged)
    # The probe names the generator the record keeps; nothing is built.
    assert probes == ["resolve", "detect"] and plan.staged == staged
    assert plan.generation is not None and plan.generation.record.inputs is not None
    assert plan.generation.record.inputs.generator == TARGET.generator
    sections = review.sections(plan, ("initramfs", "config"))
    assert any("already built, installed now" in s.body for s in sections)


def test_plan_rejects_unknown_step(tmp_path: Path, probes: list[str]):
    with pytest.raises(ValueError, match="everything"):
        apply.make_plan(session(tmp_path, HOSTED), {}, steps=("everything",))
    assert probes == []


def test_execute_toplayer_only_touches_nothing_else(tmp_path: Path):
    plan = make_plan(tmp_path)
    events = list(apply.execute(session(plan.top), plan, steps=apply.TOPLAYER_ONLY))
    assert [e.step for e in events if isinstance(e, StepDone)] == ["toplayer", "config"]
    assert (tmp_path / "boot_docker/toplayer/etc/hostname").read_bytes() == b"desk1\n"
    assert (tmp_path / "refind.conf").read_bytes() == b"timeout 5\n"
    assert not (tmp_path / "boot_docker/vmlinuz").exists()
    assert (tmp_path / "boot_docker/dockerboot-wizard.toml").exists()


def test_execute_installs_staged_pair_instead_of_building(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    staged = staged_build(boot)
    # session.client is None: building would crash, so this proves no build ran.
    plan = make_plan(tmp_path, staged=staged)
    list(apply.execute(session(plan.top), plan, steps=("initramfs", "bootloader")))
    assert (boot / "gen/1/vmlinuz").read_bytes() == b"new k"
    assert (boot / "gen/1/initrd.img").read_bytes() == b"new i"
    assert not staged.exists()
    # The flat pair of an earlier version stays as it was (generation 0, never deleted).
    assert (boot / "vmlinuz").read_bytes() == b"old kernel"
    assert (tmp_path / "refind.conf").read_bytes() == b"timeout 5\n# new\n"
    assert not (boot / "toplayer").exists()


def test_execute_rejects_unknown_step(tmp_path: Path):
    plan = make_plan(tmp_path)
    with pytest.raises(ValueError):
        list(apply.execute(session(plan.top), plan, steps=("toplayer", "everything")))


def test_execute_refuses_a_step_the_plan_lacks_before_writing(tmp_path: Path):
    plan = make_plan(tmp_path, target=None, refind_conf=None, refind_old=None,
                     refind_new=None)
    with pytest.raises(apply.PlanError, match="initramfs, bootloader") as e:
        list(apply.execute(session(plan.top), plan))
    assert "steps=" in str(e.value)  # the fix is named
    assert not (tmp_path / "boot_docker/toplayer").exists()
    assert not (tmp_path / "boot_docker/dockerboot-wizard.toml").exists()
    list(apply.execute(session(plan.top), plan, steps=apply.TOPLAYER_ONLY))  # as planned
    assert (tmp_path / "boot_docker/toplayer/etc/hostname").read_bytes() == b"desk1\n"


def test_edit_changes_keep_mode_and_skip_unchanged(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/fstab").write_bytes(b"old\n")
    os.chmod(tmp_path / "etc/fstab", 0o600)
    (tmp_path / "etc/same").write_bytes(b"same\n")
    changes = apply.edit_changes(tmp_path, {"etc/fstab": b"new\n", "etc/same": b"same\n",
                                            "etc/motd": b"hi\n"})
    by = {c.relpath: c for c in changes}
    assert sorted(by) == ["etc/fstab", "etc/motd"]
    assert by["etc/fstab"].old == b"old\n" and by["etc/fstab"].mode == 0o600
    assert by["etc/motd"].old is None and by["etc/motd"].mode == 0o644
