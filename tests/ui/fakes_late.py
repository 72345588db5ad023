"""Fakes for the later screens (toplayer, initramfs, bootloader, review, done).

``LateFakesMixin`` implements the Services methods those screens use with
canned data; ``FakeLateServices`` is a standalone fake for their tests.
Switches (``fail_build``, ``block_build``, ``fail_apply``, ``block_preview``, …)
choose the branch to exercise; calls are recorded for assertions, and
``open_sessions`` counts what the real core would hold mounted and locked.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from pathlib import Path

from wizard import toplayer
from wizard.apply import Plan
from wizard.changes import Preview
from wizard.config import Settings
from wizard.errors import BootloaderError, Cancelled, InitramfsError, WizardError
from wizard.events import Event, LogLine, Progress, StepDone, StepStarted, check_cancel
from wizard.flow import WizardState
from wizard.initramfs import BuildTarget, InitramfsBuildError
from wizard.partitions import Partition
from wizard.report import render_plan
from wizard.review import sections

PART = Partition("dbw-fake", "1111-2222", "/dev/loop9p2", 4 << 30, (7, 9))
OTHER = Partition("data", "3333-4444", "/dev/sdb1", 8 << 30, (8, 17))
REFIND = b"timeout 5\n# user line kept\nmenuentry \"Other\" {\n    loader x.efi\n}\n"
IMAGE_FSTAB = b"# image fstab\nproc /proc proc defaults 0 0\n"
TARGET = BuildTarget("initramfs-tools", "6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64")
SETTINGS = Settings(label="dbw-fake", image="desk:1")


class LateFakesMixin:
    """Canned answers for the later screens' Services methods."""

    fail_detect: bool = False
    fail_build: bool = False
    block_build: bool = False
    fail_apply: bool = False
    refind_missing: bool = False
    block_preview: bool = False

    def __init__(self) -> None:
        self.toplayer: dict[str, bytes] = {"etc/hostname": b"old\n",
                                           "etc/shadow": b"root:$6$secret:1::::::\n"}
        self.image_files: dict[str, bytes] = {"etc/fstab": IMAGE_FSTAB,
                                              "etc/hostname": b"debian\n"}
        self.build_started = threading.Event()
        self.preview_started = threading.Event()
        self.hold_apply = False
        """Block the apply after its first step starts, until it is cancelled."""
        self.apply_waiting = threading.Event()
        self.calls: list[tuple[str, object]] = []
        self.open_sessions = 0
        """Sessions (mount + lock) open now: preview and apply hold one only while they run."""
        self.applied_plans: list[Plan] = []
        """The plan each apply made for itself (from what is on disk then)."""

    def partitions(self) -> list[Partition]:
        return [PART, OTHER]

    def detect_initramfs(self, image: str) -> BuildTarget:
        if self.fail_detect:
            raise InitramfsError(f"image {image} has no kernel in /lib/modules",
                                 "add `linux-image-amd64` to its Dockerfile")
        return TARGET

    def toplayer_files(self, state: WizardState) -> dict[str, bytes]:
        return dict(self.toplayer)

    def image_file(self, image: str, path: str) -> bytes | None:
        self.calls.append(("image_file", path))
        return self.image_files.get(path)

    def find_refind(self, settings: Settings) -> tuple[Path, bytes]:
        self.calls.append(("find_refind", (settings.esp, settings.refind_conf)))
        if self.refind_missing and not settings.esp and not settings.refind_conf:
            raise BootloaderError("no mounted ESP found", "mount it or give its path")
        conf = Path(settings.refind_conf or f"{settings.esp or '/boot/efi'}/EFI/refind/refind.conf")
        return conf, REFIND

    def build_initramfs(self, state: WizardState, *,
                        cancel: threading.Event) -> Generator[Event, None, str]:
        self.calls.append(("build_initramfs", state.settings.image if state.settings else None))
        yield StepStarted("initramfs", "Building initramfs-tools initramfs")
        yield Progress(0.15, 1.0, "running mkinitramfs")
        yield LogLine("dockerboot-build: running mkinitramfs")
        self.build_started.set()
        if self.block_build:
            # Like the real build: runs until the cancel token is set (bounded for safety).
            cancel.wait(10)
            check_cancel(cancel)
        if self.fail_build:
            raise InitramfsBuildError("building the initramfs in desk:1 failed: no btrfs module",
                                      "fix the image", ["line 1", "E: no btrfs module"])
        yield Progress(1.0, 1.0, "done")
        yield StepDone("initramfs", "staged")
        return "boot_docker/.build-fake"

    def discard_staged(self, state: WizardState) -> None:
        self.calls.append(("discard_staged", state.staged_initramfs))

    def _plan(self, state: WizardState) -> Plan:
        """The plan the real core would make for ``state`` (canned, plain data)."""
        assert state.settings is not None
        s = state.settings
        changes = [toplayer.FileChange(rel, self.toplayer.get(rel), data,
                                       image_old=self.image_files.get(rel))
                   for rel, data in sorted(state.toplayer_edits.items())]
        if s.hostname:
            changes.append(toplayer.FileChange("etc/hostname", self.toplayer.get("etc/hostname"),
                                               f"{s.hostname}\n".encode()))
        cmdline = f"root=LABEL={s.label} rootflags=subvol=docker_rwlayer"
        return Plan(settings=s, top=Path("/mnt/top"), device=PART.device, cmdline=cmdline,
                    image_subvolume=Path("/mnt/top/docker/btrfs/subvolumes/abc"), target=TARGET,
                    toplayer_changes=changes, refind_conf=Path("/boot/efi/EFI/refind/refind.conf"),
                    refind_old=REFIND, refind_new=REFIND + b"# dockerboot entry\n",
                    config_old=None, config_new=b'label = "dbw-fake"\n',
                    staged=Path("/mnt/top", state.staged_initramfs)
                    if state.staged_initramfs else None)

    def preview(self, state: WizardState, *, cancel: threading.Event) -> Preview:
        assert state.settings is not None
        state.settings.validate()  # as the core: bad settings stop before anything is held
        self.calls.append(("preview", state))
        steps = state.writes
        self.open_sessions += 1  # like the real one: a session only while planning
        try:
            if self.block_preview:
                self.preview_started.set()
                cancel.wait(10)
                check_cancel(cancel)
            plan = self._plan(state)
        finally:
            self.open_sessions -= 1
        return Preview(plan, steps, tuple(sections(plan, steps)), render_plan(plan, steps))

    def apply(self, state: WizardState, *, cancel: threading.Event) -> Iterator[Event]:
        assert state.settings is not None
        state.settings.validate()
        steps = state.writes
        self.calls.append(("apply", steps))
        self.open_sessions += 1  # its own session, closed whatever happens
        try:
            self.applied_plans.append(self._plan(state))  # planned again from "disk"
            for step in steps:
                check_cancel(cancel)
                yield StepStarted(step, f"writing {step}")
                yield LogLine(f"{step} log line")
                if self.hold_apply:
                    self.apply_waiting.set()
                    cancel.wait(10)
                    check_cancel(cancel)
                if self.fail_apply and step == steps[-1]:
                    raise WizardError(f"cannot write {step}", "mount it read-write")
                yield StepDone(step, f"{step} ok")
        finally:
            self.open_sessions -= 1


class FakeLateServices(LateFakesMixin):
    """A standalone fake for the later screens' tests."""


__all__ = ["Cancelled", "FakeLateServices", "LateFakesMixin", "OTHER", "PART", "SETTINGS"]
