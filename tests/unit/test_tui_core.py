"""Core support of the later TUI screens: fstab lines, staged initramfs, step-limited apply."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from wizard import apply, fstab, initramfs, review
from wizard.apply import Plan, Session
from wizard.config import Settings
from wizard.errors import InitramfsError
from wizard.events import StepDone
from wizard.flow import ROUTES, Mode
from wizard.initramfs import BuildTarget
from wizard.partitions import Partition
from wizard.toplayer import FileChange

PART = Partition("dbw", "aaaa-bbbb", "/dev/loop7p2", 1 << 30, (7, 1))
NOLABEL = Partition("", "cccc-dddd", "/dev/sdb1", 1 << 30, (8, 17))
SPACED = Partition("my disk", "eeee", "/dev/sdc1", 1 << 30, (8, 33))
TARGET = BuildTarget("initramfs-tools", "6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64")


# --- fstab ---

def test_fstab_lines_for_boot_partition_by_label_and_others():
    lines = [s.line for s in fstab.suggestions([NOLABEL, PART, SPACED], "dbw", "docker")]
    assert lines[:2] == ["LABEL=dbw /var/lib/docker btrfs subvol=docker 0 0",
                         "LABEL=dbw /home btrfs subvol=home,nofail 0 0"]
    assert "UUID=cccc-dddd /mnt/cccc-ddd btrfs subvol=/ 0 0" in lines
    assert r"LABEL=my\040disk /mnt/my\040disk btrfs subvol=/ 0 0" in lines
    assert len(lines) == 4


def test_fstab_merge_appends_and_keeps_other_bytes():
    old = "# keep me\n\tproc  /proc proc defaults 0 0\n"
    new = fstab.merge_line(old, "LABEL=dbw /home btrfs subvol=home 0 0")
    assert new == old + "LABEL=dbw /home btrfs subvol=home 0 0\n"


def test_fstab_merge_replaces_same_mountpoint_only():
    old = ("# /home was here\r\nUUID=x /home ext4 defaults 0 2\r\n"
           "#LABEL=y /home btrfs subvol=old 0 0\r\nproc /proc proc defaults 0 0")
    new = fstab.merge_line(old, "LABEL=dbw /home btrfs subvol=home 0 0")
    assert new == ("# /home was here\r\nLABEL=dbw /home btrfs subvol=home 0 0\r\n"
                   "#LABEL=y /home btrfs subvol=old 0 0\r\nproc /proc proc defaults 0 0")


def test_fstab_merge_adds_line_end_matching_file():
    assert fstab.merge_line("a /x none 0 0", "b /y none 0 0") == "a /x none 0 0\nb /y none 0 0\n"
    assert fstab.merge_line("a /x n 0 0\r\nc /z n 0 0", "b /y n 0 0") \
        == "a /x n 0 0\r\nc /z n 0 0\r\nb /y n 0 0\n"
    assert fstab.merge_line("", "b /y n 0 0") == "b /y n 0 0\n"


# --- staged initramfs ---

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


def _old_pair(boot: Path) -> None:
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "vmlinuz").write_bytes(b"old kernel")
    (boot / "initrd.img").write_bytes(b"old initrd")


def _drive(gen):
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_stage_only_leaves_old_pair_and_returns_staged_dir(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    _old_pair(boot)
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
    _old_pair(boot)
    _events, result = _drive(initramfs.build(
        FakeClient(), "desk:1", TARGET, boot, image_name="desk", image_tag="1",
        cancel=threading.Event(), assets=tmp_path))
    assert result is None
    assert (boot / "vmlinuz").read_bytes() == b"kernel"
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]


def test_failed_staged_build_leaves_nothing(tmp_path: Path):
    boot = tmp_path / "boot_docker"
    _old_pair(boot)
    with pytest.raises(initramfs.InitramfsBuildError):
        _drive(initramfs.build(FakeClient(ok=False), "desk:1", TARGET, boot, image_name="desk",
                               image_tag="1", cancel=threading.Event(), assets=tmp_path,
                               stage_only=True))
    assert sorted(p.name for p in boot.iterdir()) == ["initrd.img", "vmlinuz"]
    assert (boot / "initrd.img").read_bytes() == b"old initrd"


def test_install_staged_refuses_incomplete_pair(tmp_path: Path):
    boot = tmp_path / "boot"
    _old_pair(boot)
    staged = boot / ".build-x"
    staged.mkdir()
    (staged / "vmlinuz.new").write_bytes(b"k")
    with pytest.raises(InitramfsError, match="initrd.img.new"):
        initramfs.install_staged(staged, boot)
    assert (boot / "vmlinuz").read_bytes() == b"old kernel"


# --- apply with steps / staged / edits ---

def _plan(top: Path, settings: Settings, **kw) -> Plan:
    conf = top / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    base = dict(settings=settings, top=top, device=PART.device,
                cmdline="root=LABEL=dbw", image_subvolume=top / "sub", target=TARGET,
                toplayer_changes=[FileChange("etc/hostname", None, b"desk1\n")],
                refind_conf=conf, refind_old=b"timeout 5\n", refind_new=b"timeout 5\n# new\n",
                config_old=None, config_new=b'label = "dbw"\nimage = "desk:1"\n')
    base.update(kw)
    return Plan(**base)


def _session(plan: Plan) -> Session:
    """A session on the plan's top level (no daemon client: nothing may build)."""
    return Session(plan.settings, PART, plan.top, None, plan.top / "docker")  # type: ignore[arg-type]


def test_execute_toplayer_only_touches_nothing_else(tmp_path: Path):
    settings = Settings(label="dbw", image="desk:1")
    plan = _plan(tmp_path, settings)
    events = list(apply.execute(_session(plan), plan, steps=apply.TOPLAYER_ONLY))
    assert [e.step for e in events if isinstance(e, StepDone)] == ["toplayer", "config"]
    assert (tmp_path / "boot_docker/toplayer/etc/hostname").read_bytes() == b"desk1\n"
    assert (tmp_path / "refind.conf").read_bytes() == b"timeout 5\n"
    assert not (tmp_path / "boot_docker/vmlinuz").exists()
    assert (tmp_path / "boot_docker/dockerboot-wizard.toml").exists()


def test_execute_installs_staged_pair_instead_of_building(tmp_path: Path):
    settings = Settings(label="dbw", image="desk:1")
    boot = tmp_path / "boot_docker"
    _old_pair(boot)
    staged = boot / ".build-abc"
    staged.mkdir()
    (staged / "vmlinuz.new").write_bytes(b"new k")
    (staged / "initrd.img.new").write_bytes(b"new i")
    # session.client is None: building would crash, so this proves no build ran.
    plan = _plan(tmp_path, settings, staged=staged)
    list(apply.execute(_session(plan), plan, steps=("initramfs", "bootloader")))
    assert (boot / "vmlinuz").read_bytes() == b"new k"
    assert (tmp_path / "refind.conf").read_bytes() == b"timeout 5\n# new\n"
    assert not (boot / "toplayer").exists()


def test_execute_rejects_unknown_step(tmp_path: Path):
    plan = _plan(tmp_path, Settings(label="dbw", image="desk:1"))
    with pytest.raises(ValueError):
        list(apply.execute(_session(plan), plan, steps=("toplayer", "everything")))


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


# --- review ---

def test_refind_preview_diff_and_idempotence():
    s = Settings(label="dbw", image="desk:1")
    first = review.refind_preview(s, "refind.conf", b"timeout 5\n")
    assert "volume dbw" in first.entry and "+menuentry" in first.diff
    assert first.new.startswith(b"timeout 5\n")
    again = review.refind_preview(s, "refind.conf", first.new)
    assert again.diff == "" and again.new == first.new


def test_review_sections_follow_the_mode(tmp_path: Path):
    plan = _plan(tmp_path, Settings(label="dbw", image="desk:1"))
    full = [x.title for x in review.sections(plan, ROUTES[Mode.FULL].writes)]
    top = [x.title for x in review.sections(plan, ROUTES[Mode.RECONFIGURE_TOPLAYER].writes)]
    assert any("initrd.img" in t for t in full) and any("refind.conf" in t for t in full)
    assert not any("initrd.img" in t or "refind.conf" in t for t in top)
    assert any(t.endswith("etc/hostname") for t in top)
    body = {x.title: x.body for x in review.sections(plan)}
    assert "root=LABEL=dbw" in body["Summary"]
    assert "+desk1" in body[f"{tmp_path}/boot_docker/toplayer/etc/hostname"]
