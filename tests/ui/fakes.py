"""``FakeServices``: the ``Services`` Protocol with canned data, for Pilot tests.

Everything is in memory and deterministic.  Hotplug events are delivered
from a separate thread, as pyudev's observer does.  Switches (``fail_build``,
``block_build``, ``hold_pull``, ``fail_apply``, ``block_preview``, …) choose the
branch to exercise; calls are recorded in ``calls`` for assertions, and
``open_sessions`` counts what the real core would hold mounted and locked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path

from wizard.boot import status
from wizard.boot.bootloader import (
    default_cmdline,
    menu_entries,
    render_entries,
    update_conf,
    written_block,
)
from wizard.boot.bootset import NewGeneration
from wizard.boot.fingerprint import Fingerprint
from wizard.boot.generations import new_record
from wizard.boot.initramfs import BuildTarget, InitramfsBuildError
from wizard.common.errors import (
    BootloaderError,
    Cancelled,
    ConfigError,
    DockerError,
    ImageError,
    InitramfsError,
    NotRootError,
    PartitionError,
    WizardError,
)
from wizard.common.events import Event, LogLine, Progress, StepDone, StepStarted, check_cancel
from wizard.common.mountinfo import MountEntry
from wizard.disk import layout
from wizard.disk.disks import Target
from wizard.disk.layout import Disk, DiskPlan, Part
from wizard.disk.partitions import BlockEvent, Partition
from wizard.flows.apply import Plan
from wizard.flows.bootchain import NAMES
from wizard.flows.changes import Preview
from wizard.flows.flow import WizardState
from wizard.flows.report import render_plan
from wizard.flows.review import RefindPreview, refind_preview, sections
from wizard.flows.services import DockerStatus, Environment
from wizard.flows.update import UpdatePlan
from wizard.install import sizes
from wizard.loaders import esp_plan, grub, systemd_boot
from wizard.settings.config import Settings
from wizard.store.docker_daemon import ImageSummary
from wizard.toplayer import files as toplayer

PART = Partition("dbw-fake", "1111-2222", "/dev/loop9p2", 4 << 30, (7, 9))
OTHER = Partition("data", "3333-4444", "/dev/sdb1", 8 << 30, (8, 17))
MOUNT = MountEntry(40, 1, (0, 52), "/", "/mnt/dbw", "rw", "btrfs", PART.device, "rw")
SUBVOL_MOUNT = MountEntry(41, 1, (0, 52), "/docker", "/var/lib/docker", "rw", "btrfs",
                          PART.device, "rw,subvol=/docker")
PART_MOUNTED = Partition(PART.label, PART.uuid, PART.device, PART.size, PART.devnum,
                         (MOUNT, SUBVOL_MOUNT))
NEW_DISK = Partition("usb-stick", "5555-6666", "/dev/sdc1", 16 << 30, (8, 33))
IMAGES = [
    ImageSummary("desk:1", "sha256:" + "a" * 64, "sha256:aaaaaaaaaaaa", 812 << 20,
                 "2026-01-02T03:04:05.000Z"),
    ImageSummary("desk:2", "sha256:" + "b" * 64, "sha256:bbbbbbbbbbbb", 820 << 20,
                 "2026-02-03T04:05:06.000Z"),
    ImageSummary("localhost:5000/ns/app:1.0", "sha256:" + "c" * 64, "sha256:cccccccccccc",
                 90 << 20, "2026-03-04T05:06:07.000Z"),
]
GOOD_DOCKER = DockerStatus(reachable=True, driver="btrfs", data_root="/mnt/dbw/docker",
                           docker_path="docker")
OVERLAY_DOCKER = DockerStatus(
    reachable=True, driver="overlay2", data_root="/var/lib/docker",
    problem=DockerError("Docker uses the overlay2 storage driver, not btrfs, so image layers are "
                        "not btrfs subvolumes",
                        "put {\"storage-driver\": \"btrfs\"} in /etc/docker/daemon.json"))
PULL_EVENTS: list[Event] = [
    LogLine("Pulling from library/new"),
    Progress(10, 100, "Downloading"),
    Progress(60, 100, "Downloading"),
    Progress(100, 100, "Pull complete"),
]
REFIND = b"timeout 5\n# user line kept\nmenuentry \"Other\" {\n    loader x.efi\n}\n"
IMAGE_FSTAB = b"# image fstab\nproc /proc proc defaults 0 0\n"
TARGET = BuildTarget("initramfs-tools", "6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64")
SETTINGS = Settings(label="dbw-fake", image="desk:1")
DISKS = [
    Disk("/dev/sda", 256 << 30, "Root SSD", "gpt",
         (Part("/dev/sda1", 512 << 20, "vfat", "EFI", layout.ESP_TYPE, ("/boot/efi",)),
          Part("/dev/sda2", 255 << 30, "ext4", "root", None, ("/",)))),
    Disk("/dev/sdb", 64 << 30, "Blank SSD"),
    Disk("/dev/sdc", 128 << 30, "Shared SSD", "gpt",
         (Part("/dev/sdc1", 512 << 20, "vfat", "EFI", layout.ESP_TYPE),
          Part("/dev/sdc2", 40 << 30, "ext4", "other"),
          Part("/dev/sdc3", 20 << 30))),
]
"""This machine's disks: the running root's, a blank one, one shared with another system
(its ESP, an ext4 partition, an empty partition and free space)."""
FREE = {"/dev/sdc": (61 << 21, (128 << 21) - 34)}
"""The largest free region (sectors) of each disk with a GPT: 67 GiB on sdc."""


INPUTS = Fingerprint("initramfs-tools", "6.1.0-18-amd64", "0" * 64)
_RECORD = new_record(3, INPUTS, "desk:1", "sha256:" + "3" * 64, "2026-11-30T08:00:00Z")
_PREVIOUS = new_record(2, INPUTS, "desk:1", "sha256:" + "2" * 64, "2026-11-29T08:00:00Z")
GENERATION = NewGeneration(record=_RECORD, copy_from=None, adopt=None, previous=_PREVIOUS,
                           block=render_entries(SETTINGS, _RECORD, _PREVIOUS))
"""What the fake plan adds: generation 3; the "previous" entry boots generation 2."""


class FakeServices:
    """Canned answers; attributes may be changed by a test before or during a run."""

    fail_detect: bool = False
    fail_build: bool = False
    block_build: bool = False
    fail_apply: bool = False
    refind_missing: bool = False
    block_preview: bool = False

    def __init__(self, *, parts: list[Partition] | None = None,
                 saved: dict[str, Settings] | None = None,
                 env_problems: list[WizardError | None] | None = None,
                 docker: DockerStatus = GOOD_DOCKER,
                 images: list[ImageSummary] | None = None,
                 unbootable: dict[str, str] | None = None) -> None:
        self.parts = list(parts if parts is not None else [PART_MOUNTED, OTHER])
        self.saved = dict(saved or {})
        """label -> saved settings; the value ``"broken"`` raises ConfigError."""
        self.env_problems = list(env_problems or [])
        """Problems returned by successive environment() calls, then None."""
        self.docker = docker
        self.image_list = list(IMAGES if images is None else images)
        self.unbootable = dict(unbootable or {})
        """ref -> the resolve error's problem text."""
        self.pull_events = list(PULL_EVENTS)
        self.hold_pull = False
        """Block the pull after its events until it is cancelled."""
        self.pull_waiting = threading.Event()
        self.watchers: list[Callable[[BlockEvent], None]] = []
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
        self.status_error: WizardError | None = None
        """Raised by ``status`` (e.g. the daemon is unreachable)."""
        self.update_error: WizardError | None = None
        """Raised by ``preview_update`` (e.g. nothing to roll back to)."""

    # --- welcome, partition, docker, image ---

    def environment(self) -> Environment:
        problem = self.env_problems.pop(0) if self.env_problems else None
        return Environment(is_root=not isinstance(problem, NotRootError), problem=problem)

    def partitions(self) -> list[Partition]:
        return list(self.parts)

    def watch_partitions(self, callback: Callable[[BlockEvent], None]) -> Callable[[], None]:
        self.watchers.append(callback)
        return lambda: self.watchers.remove(callback)

    def hotplug(self, event: BlockEvent, parts: list[Partition]) -> None:
        """Change the disks and notify the watchers from another thread (like pyudev)."""
        self.parts = list(parts)
        threads = [threading.Thread(target=cb, args=(event,)) for cb in list(self.watchers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def saved_config(self, partition: Partition) -> Settings | None:
        saved = self.saved.get(partition.label)
        if saved == "broken":
            raise ConfigError("config is not valid TOML", "fix or delete the file")
        return saved

    def has_data_root(self, partition: Partition) -> bool:
        return partition.label == PART.label

    def docker_status(self, partition: Partition) -> DockerStatus:
        self.calls.append(("docker_status", partition.label))
        return self.docker

    def images(self) -> list[ImageSummary]:
        return list(self.image_list)

    def resolve(self, image: str) -> Path:
        self.calls.append(("resolve", image))
        if image in self.unbootable:
            raise ImageError(self.unbootable[image], "pull or build the image again")
        return Path("/mnt/dbw/docker/btrfs/subvolumes") / (image.replace("/", "_") + "-top")

    def pull(self, ref: str, *, cancel: threading.Event) -> Iterator[Event]:
        self.calls.append(("pull", ref))
        for event in self.pull_events:
            check_cancel(cancel)
            yield event
        if self.hold_pull:
            self.pull_waiting.set()
            if not cancel.wait(timeout=10):
                raise AssertionError("the test never cancelled the held pull")
            raise Cancelled("pull cancelled", "nothing was changed")
        if ref not in {i.ref for i in self.image_list}:
            self.image_list.append(ImageSummary(ref, "sha256:" + "d" * 64,
                                                "sha256:dddddddddddd", 5 << 20,
                                                "2026-04-05T06:07:08.000Z"))

    # --- top layer, initramfs, boot entry ---

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

    def boot_entries(self, state: WizardState, *, cancel: threading.Event) -> RefindPreview:
        assert state.settings is not None
        self.find_refind(state.settings)  # raises as the core does when none is found
        self.open_sessions += 1  # like the real one: a session only while planning
        try:
            return refind_preview(self._plan(state))
        finally:
            self.open_sessions -= 1

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

    # --- review ---

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
        # The entries as the core renders them: generation 3, previous 2.
        entries = render_entries(s, GENERATION.record, GENERATION.previous)
        new = update_conf(REFIND.decode(), entries, s.default_entry)
        conf = Path(s.refind_conf or f"{s.esp or '/boot/efi'}/EFI/refind/refind.conf")
        survey = ["Secure Boot: on (rEFInd cannot boot; GRUB from the image can)",
                  f"rEFInd: {conf}", "GRUB: the image carries debian's signed shim + GRUB",
                  "systemd-boot: not on the ESP",
                  f"written: {NAMES[s.bootloader or 'refind']}"]
        if s.bootloader == "grub":
            menu = [grub.Entry(f"dockerboot-{w}", *e) for w, e in zip(
                ("default", "previous"),
                menu_entries(s, GENERATION.record, GENERATION.previous), strict=True)]
            cfg = grub.render_cfg(s, menu, newest=3, state="boot_docker/state", counting=True)
            chain = esp_plan.ChainPlan(Path(s.esp or "/boot/efi"), [esp_plan.EspWrite(
                "EFI/dockerboot/grub.cfg", None, cfg.encode())], cfg=cfg)
            return replace(self._plan(replace(state, settings=replace(s, bootloader=""))),
                           settings=s, refind_conf=None, refind_old=None, refind_new=None,
                           refind_block=None, chain=chain, survey=survey)
        if s.bootloader == "systemd-boot":  # the entries as the core renders them
            top = Path("/mnt/top/boot_docker")
            boot = [systemd_boot.BootEntry(g.number, title, top / g.loader, top / g.initrd_path,
                                           cmdline)
                    for g, (title, _, _, cmdline) in zip(
                        (GENERATION.record, GENERATION.previous),
                        menu_entries(s, GENERATION.record, GENERATION.previous), strict=True)]
            text = "".join(systemd_boot.render_entry(s.label, e) for e in boot)
            chain = esp_plan.ChainPlan(Path(s.esp or "/boot/efi"), [esp_plan.EspWrite(
                f"loader/entries/dockerboot-{s.label}-3+3.conf", None, text.encode())],
                cfg=text, loader="systemd-boot")
            return replace(self._plan(replace(state, settings=replace(s, bootloader=""))),
                           settings=s, refind_conf=None, refind_old=None, refind_new=None,
                           refind_block=None, chain=chain, survey=survey)
        return Plan(settings=s, top=Path("/mnt/top"), device=PART.device, survey=survey,
                    cmdline=default_cmdline(s, GENERATION.record),
                    image_subvolume=Path("/mnt/top/docker/btrfs/subvolumes/abc"), target=TARGET,
                    toplayer_changes=changes, refind_conf=conf, refind_old=REFIND,
                    refind_new=new.encode(), refind_block=written_block(new),
                    config_old=None, config_new=b'label = "dbw-fake"\n',
                    staged=Path("/mnt/top", state.staged_initramfs)
                    if state.staged_initramfs else None, generation=GENERATION)

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

    # --- update and rollback ---

    def status(self, settings: Settings) -> dict[str, object]:
        self.calls.append(("status", settings.label))
        if self.status_error is not None:
            raise self.status_error
        return STATUS

    def preview_update(self, settings: Settings, *, rollback: bool) -> UpdatePlan:
        self.calls.append(("preview_update", rollback))
        if self.update_error is not None:
            raise self.update_error
        return UpdatePlan(settings, Path("/mnt/top"), GENERATION, None if rollback else TARGET,
                          ["desk:1 moved: @222222222222 -> @333333333333"],
                          Path("/boot/efi/EFI/refind/refind.conf"), REFIND,
                          REFIND + b"# generation 3\n")

    def run_update(self, settings: Settings, *, rollback: bool,
                   cancel: threading.Event) -> Iterator[Event]:
        self.calls.append(("run_update", rollback))
        for step in ("initramfs", "bootloader"):
            check_cancel(cancel)
            yield StepStarted(step, f"writing {step}")
            if self.fail_apply and step == "bootloader":
                raise WizardError("cannot write refind.conf", "mount the ESP read-write")
            yield StepDone(step, f"{step} ok")

    # --- try in a VM (the Done screen) ---

    try_result: dict[str, object] | None = None
    """What ``try_boot`` returns (None: ``TRY_OK``)."""
    try_error: WizardError | None = None
    block_try: bool = False
    """Hold the try after its first step until it is cancelled."""

    def try_boot(self, settings: Settings, *,
                 cancel: threading.Event) -> Generator[Event, None, dict[str, object]]:
        self.calls.append(("try_boot", settings.label))
        yield StepStarted("view", f"a read-only view of LABEL={settings.label}")
        yield StepDone("view", "generation 1 (default entry)")
        if self.try_error is not None:
            raise self.try_error
        while self.block_try:
            check_cancel(cancel)
            cancel.wait(0.05)
        yield StepDone("scratch", "936 MiB on disk")
        yield LogLine("dockerboot: docker_rwlayer is now a fresh snapshot of desk:1")
        yield StepDone("boot", "the login prompt after 41s in the VM")
        return dict(TRY_OK if self.try_result is None else self.try_result)

    # --- a new machine (Disk, then Review installs) ---

    disk_list: list[Disk] = DISKS
    fail_install: WizardError | None = None
    """Raised by ``install`` after its disk step (the disk is written then)."""
    hold_install: bool = False
    """Hold the install after its disk step until it is cancelled."""

    def disks(self) -> list[Disk]:
        return list(self.disk_list)

    def plan_install(self, target: Target) -> tuple[Disk, DiskPlan | None]:
        """Install's own plan functions on the canned disks (this machine's UEFI unchecked)."""
        self.calls.append(("plan_install", target))
        disk = next((d for d in self.disk_list if target.device == d.path
                     or any(p.path == target.device for p in d.parts)), None)
        if disk is None:
            raise PartitionError(f"no device {target.device}", "give a disk from `lsblk -d`")
        if any(p.fstype == "btrfs" and p.label == target.label for p in disk.parts):
            return disk, None  # an earlier run made it
        need = sizes.DEFAULT_NEED
        if target.mode == "disk":
            return disk, layout.plan_disk(disk, target.label, need=need,
                                          boot_bytes=sizes.BOOT_BYTES, efi=None)
        if target.mode == "free":
            return disk, layout.plan_free(disk, target.label, FREE.get(disk.path, (0, 0)),
                                          need=need, efi=None)
        return disk, layout.plan_partition(disk, target.device, target.label, need=need,
                                           efi=None)

    def install(self, state: WizardState, *,
                cancel: threading.Event) -> Generator[Event, None, None]:
        assert state.settings is not None and state.new_disk is not None
        state.settings.validate()
        self.calls.append(("install", state))
        chosen = state.new_disk
        yield StepStarted("disk", f"preparing {chosen.target.device}")
        yield LogLine(f"{chosen.target.device}: new GPT, an ESP and a btrfs partition")
        yield StepDone("disk", f"LABEL={chosen.target.label} on {chosen.target.device}")
        if self.hold_install:
            self.apply_waiting.set()
            cancel.wait(10)
        check_cancel(cancel)
        if self.fail_install is not None:
            raise self.fail_install
        yield StepStarted("image", f"{state.settings.image} into the new store")
        yield StepDone("image", f"{state.settings.image} copied from this machine's docker")
        yield from self.apply(state, cancel=cancel)
        yield StepStarted("firmware", "the firmware's boot entry")
        yield StepDone("firmware", "no EFI variables here: the removable path boots it")



_GENERATION_2 = {"number": 2, "kernel_version": "6.1.0-18-amd64", "image_ref": "desk:1",
                 "image_id": "sha256:" + "2" * 64, "created": "2026-12-01T10:00:00Z",
                 "legacy": False, "pinned": False, "loader": "gen/2/vmlinuz",
                 "initrd": "gen/2/initrd.img",
                 "inputs": {"generator": "initramfs-tools", "kernel_version": "6.1.0-18-amd64",
                            "assets": "a" * 64}}
STATUS: dict[str, object] = {
    "label": "dbw-fake", "image": "desk:1", "problems": [], "last_good": None,
    "failed": None, "assessment": dict(status.ASSESSMENT),
    "generation": _GENERATION_2, "generations": [_GENERATION_2],
    "previous": None, "booted": None, "entries": {"default": 2, "previous": None},
    "rollback": None,
    "pending": {"update": True, "build_needed": False,
                "reasons": ["the tag moved: 222222222222 -> 333333333333"]}}
"""What ``FakeServices.status`` says: generation 2, the tag moved (no build needed)."""


__all__ = ["DISKS", "FakeServices", "GOOD_DOCKER", "IMAGES", "NEW_DISK", "OTHER",
           "OVERLAY_DOCKER", "PART", "PART_MOUNTED", "SETTINGS", "TARGET"]


TRY_OK: dict[str, object] = {
    "ok": True, "login_prompt": True, "login_line": "desk login:", "emergency": False,
    "seconds": 48.0, "failed": [],
    "hook_lines": ["dockerboot: docker_rwlayer is now a fresh snapshot of desk:1"],
    "console_tail": ["Debian GNU/Linux 12 desk ttyS0", "desk login:"]}
TRY_EMERGENCY: dict[str, object] = {
    "ok": False, "login_prompt": False, "emergency": True, "seconds": 130.0,
    "failed": ["[DEPEND] Dependency failed for mnt-missing.mount - /mnt/missing."],
    "hook_lines": [], "console_tail": ["You are in emergency mode."]}
