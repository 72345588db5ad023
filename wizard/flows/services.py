"""The core as the TUI sees it: one object whose methods the screens call.

Screens never reach for udev, docker or the filesystem themselves; they get a
``Services`` (the real one, or a fake in UI tests) from ``make_app``.  Long
work returns generators of ``wizard.common.events`` events and takes a cancel token.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard.common.errors import ImageError, NotRootError, PartitionError, WizardError
from wizard.common.events import Event
from wizard.flows.flow import Mode, WizardState
from wizard.flows.service_types import DockerStatus as DockerStatus  # re-exported
from wizard.flows.service_types import Environment as Environment  # re-exported
from wizard.flows.service_types import PlanInstall, RunInstall, TryBoot
from wizard.flows.service_types import Services as Services  # re-exported
from wizard.settings.config import Settings

if TYPE_CHECKING:
    import docker

    from wizard.boot.initramfs import BuildTarget
    from wizard.disk.disks import Target
    from wizard.disk.layout import Disk, DiskPlan
    from wizard.disk.partitions import BlockEvent, Partition
    from wizard.flows.changes import Preview
    from wizard.flows.review import RefindPreview
    from wizard.flows.update import UpdatePlan
    from wizard.store.docker_daemon import ImageSummary

# The core modules below pull in docker, pyudev and requests: imported where used,
# so that importing this module (the TUI's first screens, the tests' fakes) stays cheap.


def __getattr__(name: str) -> object:
    # ``pull_events`` (the pull screen's events) is re-exported from docker_daemon,
    # which imports docker: loaded on first use only.
    if name == "pull_events":
        from wizard.store.docker_daemon import pull_events

        return pull_events
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RealServices:
    """``Services`` over the real core: udev, docker, the btrfs partitions."""

    def __init__(self, try_boot: TryBoot | None = None, *,
                 plan_install: PlanInstall | None = None,
                 run_install: RunInstall | None = None) -> None:
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()
        self._try_boot = try_boot
        """The try's work (``wizard.trial.run.by_label``), given by the entry point."""
        self._plan_install = plan_install
        self._run_install = run_install
        """The install's work (``wizard.install.chosen``), given by the entry point."""

    def _docker(self) -> docker.DockerClient:
        from wizard.common import leftovers
        from wizard.store import docker_daemon

        # One client for the session; screens call from several worker threads.
        with self._lock:
            if self._client is None:
                self._client = docker_daemon.connect()
                # The first docker use of this run: containers of a killed run go now.
                leftovers.remove_leftover_containers(self._client)
            return self._client

    def environment(self) -> Environment:
        """Root first (nothing else works without it), then udev, then docker.

        No btrfs partition yet is no blocker: Welcome offers New machine, which
        makes one, and the Partition step says how to make one by hand.
        """
        from wizard.disk import partitions

        is_root = os.geteuid() == 0
        if not is_root:
            return Environment(False, NotRootError(
                "dockerboot-wizard must run as root (it mounts partitions and talks to "
                "dockerd)", "run it again with sudo: `sudo dockerboot-wizard`"))
        try:
            partitions.list_btrfs()
        except Exception as e:  # noqa: BLE001 — udev missing is an environment problem
            return Environment(True, PartitionError(
                f"udev cannot list block devices ({e})",
                "start systemd-udevd (or udevd) and try again"))
        try:
            self._docker()
        except WizardError as e:
            return Environment(True, e)
        return Environment(True, None)

    def partitions(self) -> list[Partition]:
        """Btrfs partitions from udev; one whose top level cannot be read has ``error`` set."""
        from wizard.disk import partitions

        return partitions.list_btrfs(probe=True)

    def watch_partitions(self, callback: Callable[[BlockEvent], None]) -> Callable[[], None]:
        """Start a udev observer thread; return its ``stop``."""
        from wizard.disk import partitions

        stop: Callable[[], None] = partitions.monitor_btrfs(callback).stop  # pyudev: untyped
        return stop

    def saved_config(self, partition: Partition) -> Settings | None:
        """Load ``boot_docker/dockerboot-wizard.toml`` from the partition's top level."""
        from wizard.disk import partitions
        from wizard.settings import config

        with partitions.top_level(partition, read_only=True) as top:
            return config.load(top)

    def has_data_root(self, partition: Partition) -> bool:
        """Whether some directory at the top level is a btrfs-driver data-root.

        False, never an error, for a partition that cannot be mounted (its
        ``error`` says why): one bad filesystem must not hide the others.
        """
        from wizard.disk import partitions

        if partition.error:
            return False
        with contextlib.suppress(PartitionError), \
                partitions.top_level(partition, read_only=True) as top:
            with contextlib.suppress(OSError):
                return any((d / "image" / "btrfs" / "repositories.json").is_file()
                           for d in top.iterdir() if d.is_dir())
        return False

    def docker_status(self, partition: Partition) -> DockerStatus:
        """Reachable, btrfs driver, data-root on ``partition``: the first problem wins."""
        from wizard.store import docker_daemon

        try:
            client = self._docker()
        except WizardError as e:
            return DockerStatus(reachable=False, problem=e)
        try:
            info = docker_daemon.daemon_info(client)
        except WizardError as e:
            return DockerStatus(reachable=False, problem=e)
        status = DockerStatus(reachable=True, driver=info.driver,
                              data_root=info.docker_root_dir)
        try:
            docker_daemon.check_storage(info)
            path = docker_daemon.docker_path_for(info.docker_root_dir, partition)
        except WizardError as e:
            return replace(status, problem=e)
        return replace(status, docker_path=path)

    def images(self) -> list[ImageSummary]:
        """Local images and tags."""
        from wizard.store import docker_daemon

        return docker_daemon.list_images(self._docker())

    def resolve(self, image: str) -> Path:
        """The image's top-layer subvolume under the daemon's data-root."""
        from wizard.store import docker_daemon, images

        info = docker_daemon.daemon_info(self._docker())
        return images.resolve_subvolume(Path(info.docker_root_dir), image)

    def pull(self, ref: str, *, cancel: threading.Event) -> Iterator[Event]:
        """Pull ``ref`` through the daemon, yielding progress; stops when cancelled."""
        import docker.errors

        from wizard.store import images
        from wizard.store.docker_daemon import pull_events

        name, tag = images.split_ref(images.normalize_ref(ref))
        try:
            stream = self._docker().api.pull(name, tag=tag or "latest", stream=True,
                                             decode=True)
            yield from pull_events(stream, cancel)
        except docker.errors.DockerException as e:
            raise ImageError(f"pull of {ref} failed: {e}",
                             "check the name and that the registry is reachable") from e

    def detect_initramfs(self, image: str) -> BuildTarget:
        """Generator and kernel found in the image (a throwaway probe container)."""
        from wizard.boot import initramfs

        return initramfs.detect(self._docker(), image)

    # --- later screens: the same core code as headless ``apply`` ---

    def toplayer_files(self, state: WizardState) -> dict[str, bytes]:
        """Files now in the partition's top layer (relative path -> content)."""
        from wizard.disk import partitions
        from wizard.toplayer import files as toplayer

        s = state.settings
        if s is None or state.mode is Mode.NEW_MACHINE:
            return {}  # a new machine's partition is made by its Review: no top layer yet
        with partitions.top_level(partitions.find_by_label(s.label), read_only=True) as top:
            root = toplayer.toplayer_dir(top, s)
            if not root.is_dir():
                return {}
            return {p.relative_to(root).as_posix(): p.read_bytes()
                    for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}

    def image_file(self, image: str, path: str) -> bytes | None:
        """The image's own ``path``, read from a created (never started) container."""
        import docker.errors

        from wizard.store.containers import throwaway

        with throwaway(self._docker(), image, purpose="image-file", command=["true"],
                       user=None) as box:
            try:
                chunks, _ = box.container.get_archive("/" + path.lstrip("/"))
            except docker.errors.NotFound:
                return None
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
                member = tf.next()
                f = tf.extractfile(member) if member is not None and member.isfile() else None
                return f.read() if f is not None else None

    def find_refind(self, settings: Settings) -> tuple[Path, bytes]:
        """refind.conf for ``settings`` and its current content."""
        from wizard.flows import apply

        conf, _warnings = apply.locate_refind(settings)
        return conf, conf.read_bytes()

    def boot_entries(self, state: WizardState, *, cancel: threading.Event) -> RefindPreview:
        """``changes.boot_entries``: the plan of the state's boot steps, made and let go."""
        from wizard.flows import changes

        return changes.boot_entries(state, cancel=cancel)

    def build_initramfs(self, state: WizardState, *,
                        cancel: threading.Event) -> Generator[Event, None, str]:
        """Build kernel + initramfs staged in ``boot_docker/``; nothing is replaced yet."""
        from wizard.boot import initramfs
        from wizard.common.lock import partition_lock
        from wizard.disk import partitions
        from wizard.store import images

        assert state.settings is not None
        s = state.settings
        client = self._docker()
        image = images.normalize_ref(s.image)
        target = initramfs.detect(client, image)
        name, tag = images.split_ref(image)
        with partitions.top_level(partitions.find_by_label(s.label)) as top, \
                partition_lock(top / s.boot_dir, s.label):
            boot = top / s.boot_dir
            staged = yield from initramfs.build(client, image, target, boot, image_name=name,
                                                image_tag=tag, cancel=cancel, stage_only=True)
            assert staged is not None
            return staged.relative_to(top).as_posix()

    def discard_staged(self, state: WizardState) -> None:
        """Remove the staged build of ``state`` (the flow ended without installing it).

        Only a ``.build-*`` directory inside the partition's boot directory is
        removed, whatever the state says.
        """
        from wizard.boot import initramfs
        from wizard.common.lock import partition_lock
        from wizard.disk import partitions

        s, staged = state.settings, state.staged_initramfs
        if s is None or not staged:
            return
        with partitions.top_level(partitions.find_by_label(s.label)) as top, \
                partition_lock(top / s.boot_dir, s.label):
            initramfs.discard_staged(top / s.boot_dir, top / staged)

    def preview(self, state: WizardState, *, cancel: threading.Event) -> Preview:
        """``changes.preview`` of ``state``'s request: the session is closed on return."""
        from wizard.flows import changes

        return changes.preview(changes.request_for(state), cancel=cancel)

    def apply(self, state: WizardState, *,
              cancel: threading.Event) -> Generator[Event, None, None]:
        """``changes.apply`` of ``state``'s request (plans again, then writes)."""
        from wizard.flows import changes

        return changes.apply(changes.request_for(state), cancel=cancel)

    def status(self, settings: Settings) -> dict[str, Any]:
        """``update.partition_status`` (a probe container only when the tag moved)."""
        from wizard.flows import update

        return update.partition_status(settings)

    def preview_update(self, settings: Settings, *, rollback: bool) -> UpdatePlan:
        """``update.preview``: its own session, closed on return."""
        from wizard.flows import update

        return update.preview(settings, rollback=rollback)

    def run_update(self, settings: Settings, *, rollback: bool,
                   cancel: threading.Event) -> Generator[Event, None, None]:
        """``update.run``: plans again in a locked session, then writes."""
        from wizard.flows import update

        return update.run(settings, rollback=rollback, cancel=cancel)

    def try_boot(self, settings: Settings, *,
                 cancel: threading.Event) -> Generator[Event, None, dict[str, Any]]:
        """The try's work given to ``__init__``; nothing on the partition is written."""
        if self._try_boot is None:
            raise WizardError("Try in a VM is not available here",
                              f"run `sudo dockerboot-wizard try --label {settings.label}`")
        return self._try_boot(settings.label, cancel)

    # --- a new machine ---

    def disks(self) -> list[Disk]:
        """``disks.list_disks``: one ``lsblk`` for every whole disk."""
        from wizard.disk import disks

        return disks.list_disks()

    def plan_install(self, target: Target) -> tuple[Disk, DiskPlan | None]:
        """The install's plan given to ``__init__`` (``install.flow.plan``)."""
        return self._install_work()[0](target)

    def install(self, state: WizardState, *,
                cancel: threading.Event) -> Generator[Event, None, None]:
        """The install's flow given to ``__init__``, for ``changes.request_for(state)``."""
        from wizard.flows import changes

        if state.new_disk is None:
            raise ValueError("no disk chosen yet: nothing to install")
        chosen = state.new_disk
        return self._install_work()[1](chosen.target, chosen.plan, changes.request_for(state),
                                       cancel)

    def _install_work(self) -> tuple[PlanInstall, RunInstall]:
        if self._plan_install is None or self._run_install is None:
            raise WizardError("New machine is not available here",
                              "run `sudo dockerboot-wizard install --help` for the headless "
                              "install")
        return self._plan_install, self._run_install
