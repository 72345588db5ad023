"""Plan and apply a configuration: the one code path behind the CLI and the TUI.

``open_session`` finds the partition, mounts its top level when needed and
checks the daemon; ``make_plan`` works out every change without writing
anything (the dry run and the review screen show it) and returns it as plain
data; ``execute`` carries a plan out in an open session, as a generator of
typed events that honours a cancel token.  ``wizard.flows.changes`` puts the three
together for the CLI and the TUI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.boot import bootloader, bootset, initramfs
from wizard.boot.fingerprint import fingerprint
from wizard.common import atomic, leftovers
from wizard.common.errors import BootloaderError, NotRootError, WizardError
from wizard.common.events import Event, LogLine, StepDone, StepStarted, check_cancel
from wizard.common.lock import partition_lock
from wizard.disk import partitions
from wizard.flows import bootchain
from wizard.loaders import esp_plan, grub
from wizard.loaders.esp import esp_warning, find_esp, find_refind_conf
from wizard.settings import config
from wizard.settings.cmdline import kernel_cmdline
from wizard.settings.config import Settings
from wizard.store import docker_daemon, images
from wizard.toplayer import files as toplayer
from wizard.toplayer import machine, selfupdate
from wizard.toplayer import plan as toplayer_plan
from wizard.toplayer.plan import edit_changes as edit_changes  # re-exported

if TYPE_CHECKING:
    import docker

EXECUTE_STEPS = ("initramfs", "toplayer", "bootloader", "config")
"""What ``execute`` can write, in the order it writes it."""
TOPLAYER_ONLY = ("toplayer", "config")
"""Reconfigure mode: only the top layer (and the saved config) change."""


class PlanError(WizardError):
    """``execute`` was asked to run a step the plan was not made for, or in another session."""


class TargetGoneError(WizardError):
    """The plan's top level is no longer the partition's mount: writing would miss it."""


@dataclass
class Session:
    """A checked partition + daemon pair, with the partition's top level mounted."""

    settings: Settings
    """Settings as given (``docker_path`` filled in from the daemon)."""
    partition: partitions.Partition
    """The btrfs partition found by label."""
    top: Path
    """Where the partition's top level (subvolid=5) is mounted."""
    client: docker.DockerClient
    """SDK client for the daemon whose data-root is on the partition."""
    data_root: Path
    """The daemon's data-root as seen from this process."""
    top_dev: int | None = None
    """``st_dev`` of ``top`` when it was mounted: ``execute`` refuses to write
    when ``top`` is no longer that mount (None: not checked, e.g. test fakes)."""


@dataclass
class Plan:
    """Everything ``execute`` will do, computed without changing anything.

    Plain data: it holds no mount, client or lock, so it outlives the
    session it was made in (a preview); ``execute`` takes an open session
    on the same top level to carry it out.
    """

    settings: Settings
    """The settings the plan was made for (``docker_path`` filled in from the daemon)."""
    top: Path
    """Where the partition's top level was mounted when the plan was made: paths
    shown in the review start with it, and ``execute`` refuses another session's."""
    device: str
    """The partition's block device (shown in the review)."""
    cmdline: str
    """Kernel command line of the default boot entry (with ``dockerboot.generation=<n>``
    when the plan writes the entries; without the boot entry in its steps, the image's)."""
    image_subvolume: Path
    """The image's top-layer subvolume, proof that it is bootable."""
    target: initramfs.BuildTarget | None
    """Generator and kernel version found in the image (None: the initramfs is not
    in this plan's steps)."""
    toplayer_changes: list[toplayer.FileChange]
    """Files to write into the top layer."""
    refind_conf: Path | None
    """The refind.conf to edit (None: the boot entry is not in this plan's steps)."""
    refind_old: bytes | None
    """Its current content (None with ``refind_conf``)."""
    refind_new: bytes | None
    """Its content after the edit (None with ``refind_conf``)."""
    config_old: bytes | None
    """The saved config's current content, if any."""
    config_new: bytes
    """The saved config after apply."""
    warnings: list[str] = field(default_factory=list)
    """Things worth knowing that do not stop the apply."""
    staged: Path | None = None
    """A kernel/initramfs pair already built with ``initramfs.build(stage_only=True)``:
    ``execute`` installs it instead of building again."""
    persistent: toplayer_plan.ToplayerPlan = field(default_factory=toplayer_plan.ToplayerPlan)
    """Subvolumes and home directories to create (only those missing)."""
    generation: bootset.NewGeneration | None = None
    """The generation the initramfs step adds, and the entries that name it."""
    refind_block: str | None = None
    """The wizard's marked block as ``refind_new`` holds it (``bootset.entries``, with
    the default line when it gets one; None with ``refind_conf``): what the Bootloader
    step and the Review show."""
    chain: esp_plan.ChainPlan | None = None
    """GRUB's files on the ESP, when GRUB boots the entries (then ``refind_conf`` is None)."""
    survey: list[str] = field(default_factory=list)
    """What each bootloader found and which one is written (``bootchain.survey``)."""


def require_root() -> None:
    """Raise ``NotRootError`` unless running as root (mounts, btrfs and /boot need it)."""
    if os.geteuid() != 0:
        raise NotRootError("dockerboot-wizard must run as root", "run it with sudo")


@contextlib.contextmanager
def open_session(settings: Settings, *, lock: bool = True) -> Iterator[Session]:
    """Find the partition, check the daemon, and keep the top level mounted meanwhile.

    With ``lock`` (every run that may write) the partition's lock is held
    for the whole session, from the plan to the last write; a dry run
    changes nothing and takes none.

    Raises:
        LockedError: another dockerboot-wizard works on the partition.
        WizardError: no such partition, the daemon is unusable, bad settings.

    """
    settings.validate()
    partition = partitions.find_by_label(settings.label)
    client = docker_daemon.connect()
    # Containers a killed earlier run left (one may hold a new shadow file): gone now.
    leftovers.remove_leftover_containers(client)
    info = docker_daemon.daemon_info(client)
    docker_daemon.check_storage(info)
    data_root = Path(info.docker_root_dir)
    docker_path = docker_daemon.docker_path_for(data_root, partition)
    with partitions.top_level(partition) as top, contextlib.ExitStack() as held:
        if lock:
            held.enter_context(partition_lock(top / settings.boot_dir, settings.label))
        yield Session(replace(settings, docker_path=docker_path), partition, top, client,
                      data_root, top_dev=os.stat(top).st_dev)


def locate_refind(settings: Settings) -> tuple[Path, list[str]]:
    """The refind.conf to edit (explicit path, else searched on the ESP) and warnings."""
    if settings.refind_conf:
        conf = Path(settings.refind_conf)
        if not conf.is_file():
            raise BootloaderError(f"{conf} does not exist", "give the path of rEFInd's refind.conf")
        return conf, []
    esp = Path(settings.esp) if settings.esp else find_esp()
    warning = esp_warning(esp)
    return find_refind_conf(esp), [warning] if warning else []


ESP_SLACK = 64 << 10
"""Room beyond the new refind.conf and its backup: FAT clusters, directory entries."""


def check_esp_writable(conf: Path, size: int) -> None:
    """Refuse at plan time an ESP that apply could not write: read-only, or too full.

    Found now, the apply stops before the minutes-long build and before the
    partition changes, instead of failing at the boot entry after both.

    Raises:
        BootloaderError: the directory of ``conf`` is not writable, or has less
            than ``size`` (the new file and the backup) plus some slack free.

    """
    where = conf.parent
    if not os.access(where, os.W_OK) or (conf.exists() and not os.access(conf, os.W_OK)):
        raise BootloaderError(f"cannot write {conf}: the ESP is read-only",
                                         "mount the ESP read-write (mount -o remount,rw "
                                         "MOUNTPOINT), then run apply again")
    free = shutil.disk_usage(where).free
    if free < size + ESP_SLACK:
        raise BootloaderError(
            f"no space on the ESP for {conf} and its backup ({free} bytes free, "
            f"{size + ESP_SLACK} needed)", "free space on the ESP, then run apply again")


def check_steps(steps: tuple[str, ...]) -> None:
    """Raise ``ValueError`` for a step name ``execute`` does not know."""
    unknown = set(steps) - set(EXECUTE_STEPS)
    if unknown:
        raise ValueError(f"unknown apply steps {sorted(unknown)}")


def make_plan(session: Session, passwords: dict[str, str], *, cancel: threading.Event | None = None,
              steps: tuple[str, ...] = EXECUTE_STEPS, staged: Path | None = None,
              edits: dict[str, bytes] | None = None) -> Plan:
    """Work out every change; runs throwaway containers but writes nothing outside them.

    Only what ``steps`` will write is planned, so ``TOPLAYER_ONLY`` needs no
    probe container and no ESP and takes seconds.  The image is resolved in
    every case: it proves the image is still bootable, and it is cheap.

    Args:
        session: from ``open_session``.
        passwords: new users' passwords (a throwaway container creates them).
        cancel: set it to stop between the parts of the plan.
        steps: the ``EXECUTE_STEPS`` that ``execute`` will run with this plan.
        staged: a ``build(stage_only=True)`` result to install: no probe needed.
        edits: top-layer files edited in the TUI (relative path -> content):
            the machine files (fstab, hosts, daemon.json) are merged into them.

    Raises:
        WizardError: a precondition fails (image, initramfs, ESP/refind.conf, …).
        ValueError: an unknown step name.

    """
    check_steps(steps)
    s = session.settings
    image = images.normalize_ref(s.image)
    subvolume = images.resolve_subvolume(session.data_root, image)
    signed = grub.find_chain(subvolume) if "bootloader" in steps else None
    if "bootloader" in steps:  # before the top layer: its update.conf names the bootloader
        s = replace(s, bootloader=bootchain.choose(s, signed))
    target = new = None
    if "initramfs" in steps:
        # Also for a staged build: the record needs the generator, and the tag's ID
        # now is what the build is pinned to (a pull meanwhile cannot slip in).
        target = initramfs.detect(session.client, image)
        new = bootset.plan_new(session.top, replace(s, image=image),
                               image_id=str(session.client.images.get(image).id),
                               inputs=fingerprint(target.generator, target.kver))
    check_cancel(cancel)

    saved = config.config_path(session.top, s)
    old_settings = config.load(session.top, s.boot_dir) if saved.exists() else None
    if "toplayer" in steps:
        top_plan = toplayer_plan.plan_toplayer(
            session.client, image, s, session.top, subvolume, passwords, edits,
            old_settings=old_settings, cancel=cancel)
    else:
        passwords = {}  # users are created in the top layer: not in this plan
        top_plan = toplayer_plan.ToplayerPlan()
    check_cancel(cancel)

    cmdline = kernel_cmdline(replace(s, image=image))
    conf = old = new_conf = block = None
    resolved = replace(s, image=image)
    warnings = machine.image_warnings(resolved, subvolume)
    chain, survey = None, []
    if "bootloader" in steps:
        entries, cmdline = bootset.entries(session.top, resolved, new)
        survey = bootchain.survey(session.settings, subvolume, signed, s.bootloader)
        if s.bootloader in bootchain.ON_ESP:
            chain, esp_warnings = bootchain.plan_loader(
                session.top, resolved, new, subvolume, signed,
                counting=machine.has_systemd(subvolume))
            block = chain.cfg
        else:
            conf, esp_warnings = locate_refind(s)
            old, new_conf = bootloader.plan_refind(conf, entries, s.default_entry)
            block = bootloader.written_block(bootloader.decode(new_conf))
            check_esp_writable(conf, len(old) + len(new_conf))
        warnings += esp_warnings

    final = replace(s, image=image, users=tuple(dict.fromkeys([*s.users, *passwords])))
    return Plan(settings=s, top=session.top, device=session.partition.device, cmdline=cmdline,
                image_subvolume=subvolume, target=target,
                toplayer_changes=top_plan.changes, refind_conf=conf, refind_old=old,
                refind_new=new_conf, refind_block=block,
                config_old=saved.read_bytes() if saved.exists() else None,
                config_new=config.to_toml(final).encode(), warnings=warnings, staged=staged,
                persistent=top_plan, generation=new, chain=chain, survey=survey)


def execute(session: Session, plan: Plan, *, cancel: threading.Event | None = None,
            steps: tuple[str, ...] = EXECUTE_STEPS) -> Iterator[Event]:
    """Carry out ``plan`` in ``session``, yielding events; the slow, fallible build runs first.

    The initramfs is built into scratch space and becomes a new generation
    only when complete; the boot entries name it after that, and old
    generations go last (``wizard.boot.bootset``), so a failure or cancel leaves
    the previous kernel, initramfs, top layer and boot entries as they were.
    With ``plan.staged`` the pair built earlier (the TUI's initramfs step) is
    installed instead.

    Args:
        session: open, on the top level the plan was made for (``plan.top``);
            normally the session ``make_plan`` ran in.
        plan: from ``make_plan``.
        cancel: set it to stop between steps (and inside the build).
        steps: which of ``EXECUTE_STEPS`` to run, e.g. ``TOPLAYER_ONLY`` to
            reconfigure the top layer in seconds (no initramfs, no boot entry).

    """
    check_steps(steps)
    _check_planned(session, plan, steps)
    s = plan.settings
    image = images.normalize_ref(s.image)
    check_target(session)
    boot_dir = session.top / s.boot_dir
    boot_dir.mkdir(parents=True, exist_ok=True)
    name, _, tag = image.rpartition(":")
    if "initramfs" in steps:
        assert plan.target is not None and plan.generation is not None  # _check_planned
        check_target(session)
        yield from bootset.make_generation(
            session.client, session.top, s, plan.generation, target=plan.target,
            staged=plan.staged, cancel=cancel, image_name=name, image_tag=tag)
    check_cancel(cancel)
    if "toplayer" in steps:
        check_target(session)
        yield from _write_toplayer(session, plan)
    if "bootloader" in steps:
        check_target(session)  # the ESP is elsewhere, but a half-applied partition is not
        if plan.chain is not None:
            yield from bootchain.write_grub(plan.chain, session.top, s, session.client)
        else:
            assert plan.refind_conf is not None and plan.refind_new is not None
            yield from bootset.write_entries(plan.refind_conf, plan.refind_new, session.top,
                                             s, session.client)
    if "config" in steps:
        check_target(session)
        yield StepStarted("config", "saving the configuration")
        path = config.save(session.top, config.from_toml(plan.config_new.decode()))
        yield StepDone("config", str(path))
    # Everything is on disk before "done" is reported: the partition, then the ESP.
    atomic.syncfs(session.top)
    if "bootloader" in steps and plan.refind_conf is not None:
        atomic.syncfs(plan.refind_conf.parent)
    if "bootloader" in steps and plan.chain is not None:
        atomic.syncfs(plan.chain.esp)


def check_target(session: Session) -> None:
    """Raise ``TargetGoneError`` unless ``session.top`` is still the mount made for it.

    A plan outlives its mount when its session was closed (a failed or
    cancelled apply, the partition unplugged): ``mkdir(parents=True)`` would
    then recreate the temporary mountpoint on the host and "succeed" there.
    """
    if session.top_dev is None:
        return
    top = session.top
    try:
        same = os.path.ismount(top) and os.stat(top).st_dev == session.top_dev
    except OSError:
        same = False
    if not same:
        raise TargetGoneError(f"the partition {session.settings.label} is no longer mounted "
                              f"at {top}", "run apply again")


def _check_planned(session: Session, plan: Plan, steps: tuple[str, ...]) -> None:
    # Before anything is written: a plan made for another top level (its paths and
    # diffs describe that one) or a step whose part was not planned must not half-run.
    if plan.top != session.top or plan.settings.label != session.settings.label:
        raise PlanError(f"the plan was made for LABEL={plan.settings.label} at {plan.top}, "
                        f"not for the session's LABEL={session.settings.label} at "
                        f"{session.top}", "make the plan in the session that executes it")
    missing = []
    if "initramfs" in steps and (plan.target is None or plan.generation is None):
        missing.append("initramfs")
    if "bootloader" in steps and plan.chain is None and (
            plan.refind_conf is None or plan.refind_new is None):
        missing.append("bootloader")
    if missing:
        raise PlanError(f"the plan was made without the {', '.join(missing)} step but "
                        "execute was asked to run it",
                        "make the plan with the same steps: make_plan(..., steps=...)")


def _write_toplayer(session: Session, plan: Plan) -> Iterator[Event]:
    s = plan.settings
    yield StepStarted("toplayer", f"writing the top layer ({len(plan.toplayer_changes)} files)")
    toplayer.ensure_toplayer(session.top, s)
    for made in toplayer_plan.install(session.top, plan.persistent):
        yield LogLine(f"created {made}")
    toplayer.apply_changes(session.top, s, plan.toplayer_changes)
    if selfupdate.install_parts(session.top, s):
        yield LogLine(f"dockerboot-update's parts: {session.top / s.boot_dir / 'selfupdate'}")
    yield StepDone("toplayer", str(toplayer.toplayer_dir(session.top, s)))
