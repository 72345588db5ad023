"""``FakeServices``: the ``Services`` Protocol with canned data, for Pilot tests.

Everything is in memory and deterministic.  Hotplug events are delivered
from a separate thread, as pyudev's observer does.  The later screens'
methods come from ``LateFakesMixin`` (tests/ui/fakes_late.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.ui.fakes_late import OTHER, PART, LateFakesMixin
from wizard.config import Settings
from wizard.docker_daemon import ImageSummary
from wizard.errors import Cancelled, ConfigError, DockerError, ImageError, NotRootError, WizardError
from wizard.events import Event, LogLine, Progress, check_cancel
from wizard.mountinfo import MountEntry
from wizard.partitions import BlockEvent, Partition
from wizard.services import DockerStatus, Environment

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


class FakeServices(LateFakesMixin):
    """Canned answers; attributes may be changed by a test before or during a run."""

    def __init__(self, *, parts: list[Partition] | None = None,
                 saved: dict[str, Settings] | None = None,
                 env_problems: list[WizardError | None] | None = None,
                 docker: DockerStatus = GOOD_DOCKER,
                 images: list[ImageSummary] | None = None,
                 unbootable: dict[str, str] | None = None) -> None:
        super().__init__()
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


__all__ = ["FakeServices", "GOOD_DOCKER", "IMAGES", "NEW_DISK", "OTHER", "OVERLAY_DOCKER",
           "PART", "PART_MOUNTED"]
