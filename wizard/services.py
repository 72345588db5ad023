"""The core as the TUI sees it: one object whose methods the screens call.

Screens never reach for udev, docker or the filesystem themselves; they get a
``Services`` (the real one, or a fake in UI tests) from ``make_app``.  Long
work returns generators of ``wizard.events`` events and takes a cancel token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wizard.config import Settings
from wizard.docker_daemon import ImageSummary
from wizard.events import Event
from wizard.initramfs import BuildTarget
from wizard.partitions import BlockEvent, Partition


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
    problem: str | None = None
    """One-line problem + fix (``str(WizardError)``), or None when all is well."""


@dataclass(frozen=True)
class Environment:
    """Preconditions checked before the first screen."""

    is_root: bool
    """Running as root."""
    problem: str | None
    """What blocks the wizard entirely (not root, no btrfs, …) with its fix, or None."""


class Services(Protocol):
    """Everything the screens may ask of the core."""

    def environment(self) -> Environment:
        """Check root, udev and that some btrfs partition exists."""
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
