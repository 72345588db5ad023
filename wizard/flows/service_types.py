"""``Services``, what the screens may ask of the core, and the plain data it returns.

The real object is ``wizard.flows.services.RealServices``; UI tests pass fakes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from wizard.common.errors import WizardError
from wizard.common.events import Event
from wizard.flows.flow import WizardState
from wizard.settings.config import Settings

if TYPE_CHECKING:
    from wizard.boot.initramfs import BuildTarget
    from wizard.disk.disks import Target
    from wizard.disk.layout import Disk, DiskPlan
    from wizard.disk.partitions import BlockEvent, Partition
    from wizard.flows.changes import ApplyRequest, Preview
    from wizard.flows.review import RefindPreview
    from wizard.flows.update import UpdatePlan
    from wizard.store.docker_daemon import ImageSummary


@dataclass(frozen=True)
class DockerStatus:
    """What the Docker step shows for a partition."""

    reachable: bool
    """Whether the daemon answered."""
    driver: str = ""
    """Storage driver name (``btrfs`` is the only one that boots)."""
    data_root: str = ""
    """The daemon's data-root."""
    docker_path: str | None = None
    """Data-root relative to the partition's top level, when it is on the partition."""
    problem: WizardError | None = None
    """What is wrong (problem and fix), or None when all is well."""


@dataclass(frozen=True)
class Environment:
    """Preconditions checked before the first screen."""

    is_root: bool
    """Running as root."""
    problem: WizardError | None
    """What blocks the wizard entirely (not root, no udev, no daemon) with its fix, or None."""


class Services(Protocol):
    """Everything the screens may ask of the core."""

    def environment(self) -> Environment:
        """Check root, udev and the Docker daemon (no btrfs partition yet is no blocker)."""
        ...

    def partitions(self) -> list[Partition]:
        """Btrfs partitions from udev."""
        ...

    def watch_partitions(self, callback: Callable[[BlockEvent], None]) -> Callable[[], None]:
        """Call ``callback`` (from another thread) on block hotplug; return a stopper."""
        ...

    def saved_config(self, partition: Partition) -> Settings | None:
        """The config saved on the partition, if any."""
        ...

    def has_data_root(self, partition: Partition) -> bool:
        """Whether the partition holds a Docker data-root."""
        ...

    def docker_status(self, partition: Partition) -> DockerStatus:
        """Check the daemon: reachable, btrfs driver, data-root on this partition."""
        ...

    def images(self) -> list[ImageSummary]:
        """Local images and tags."""
        ...

    def resolve(self, image: str) -> Path:
        """The image's subvolume (raises ImageError when it is not bootable)."""
        ...

    def pull(self, ref: str, *, cancel: threading.Event) -> Iterator[Event]:
        """Pull an image, yielding Progress/LogLine events."""
        ...

    def detect_initramfs(self, image: str) -> BuildTarget:
        """Generator and kernel found in the image (raises InitramfsError)."""
        ...

    # --- later screens (toplayer, initramfs, bootloader, review) ---

    def toplayer_files(self, state: WizardState) -> dict[str, bytes]:
        """Files now in the partition's top layer (relative path -> content); {} if none."""
        ...

    def image_file(self, image: str, path: str) -> bytes | None:
        """The image's own copy of ``path`` (e.g. ``etc/fstab``), or None if it has none."""
        ...

    def find_refind(self, settings: Settings) -> tuple[Path, bytes]:
        """refind.conf for ``settings`` (its esp/refind_conf overrides) and its content.

        Raises BootloaderError when no ESP or refind.conf is found.
        """
        ...

    def boot_entries(self, state: WizardState, *, cancel: threading.Event) -> RefindPreview:
        """The boot entries apply writes for ``state`` and their refind.conf diff.

        Planned like apply plans them (``changes.boot_entries``), nothing held after.
        Raises BootloaderError when no ESP or refind.conf is found.
        """
        ...

    def build_initramfs(self, state: WizardState, *,
                        cancel: threading.Event) -> Generator[Event, None, str]:
        """Build kernel + initramfs staged: nothing is replaced yet.

        Returns the staged directory relative to the partition's top level
        (for ``WizardState.staged_initramfs``).
        """
        ...

    def discard_staged(self, state: WizardState) -> None:
        """Remove ``state.staged_initramfs`` (a build never installed); no-op without one."""
        ...

    def preview(self, state: WizardState, *, cancel: threading.Event) -> Preview:
        """The plan for ``state`` (its mode's steps, edits, staged build), made and let go.

        Nothing stays mounted or locked afterwards (``changes.preview``).
        Raises WizardError (bad settings first, before anything is mounted).
        """
        ...

    def apply(self, state: WizardState, *,
              cancel: threading.Event) -> Generator[Event, None, None]:
        """Plan ``state`` again from what is on disk now and write it (``changes.apply``).

        Its session is closed when the generator ends, fails or is closed.
        """
        ...

    def status(self, settings: Settings) -> dict[str, Any]:
        """The partition's status JSON (``update.partition_status``)."""
        ...

    def preview_update(self, settings: Settings, *, rollback: bool) -> UpdatePlan:
        """What ``update`` (or ``rollback``) would do; nothing written, nothing held."""
        ...

    def run_update(self, settings: Settings, *, rollback: bool,
                   cancel: threading.Event) -> Generator[Event, None, None]:
        """Plan again under the lock and carry it out (``update.run``)."""
        ...

    def try_boot(self, settings: Settings, *,
                 cancel: threading.Event) -> Generator[Event, None, dict[str, Any]]:
        """Boot the next boot in a VM over a copy (``dockerboot-wizard try --headless``).

        Returns ``try --json``'s object; nothing on the partition is written.
        """
        ...

    # --- a new machine (the New machine route: Disk, then Review installs) ---

    def disks(self) -> list[Disk]:
        """The machine's whole disks with their partitions (``lsblk``), nothing written."""
        ...

    def plan_install(self, target: Target) -> tuple[Disk, DiskPlan | None]:
        """The disk as it is now and install's plan for ``target`` (None: made before).

        Raises PartitionError, one line, for what install refuses.
        """
        ...

    def install(self, state: WizardState, *,
                cancel: threading.Event) -> Generator[Event, None, None]:
        """Carry out ``state.new_disk``: the disk, the store, the image, then apply ``state``.

        ``dockerboot-wizard install``'s flow; the request is made as apply's is.
        """
        ...


TryBoot = Callable[[str, threading.Event], Generator[Event, None, dict[str, Any]]]
"""``try_boot``'s work by partition label, handed to ``RealServices`` by the entry point:
it lives in ``wizard.trial``, a layer above ``flows``."""
PlanInstall = Callable[["Target"], "tuple[Disk, DiskPlan | None]"]
"""``plan_install``'s work (``wizard.install.chosen.plan``), handed in like ``TryBoot``:
``wizard.install`` is a layer above ``flows`` too."""
RunInstall = Callable[["Target", "DiskPlan | None", "ApplyRequest", threading.Event],
                      Generator[Event, None, None]]
"""``install``'s work (``wizard.install.chosen.run``), handed in like ``TryBoot``."""
