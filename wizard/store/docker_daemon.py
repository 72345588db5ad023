"""Step 2, docker daemon: reach it and check it stores images where the boot hook looks.

The boot hook reads the classic ``btrfs`` graph driver's files, so the daemon
must use that driver (not overlay2, not the containerd image store that
Docker 29 makes the default on fresh installs) and its data-root must be on
the chosen partition.  Every failure says what to put in
``/etc/docker/daemon.json``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from wizard.common.errors import DockerError, ImageError
from wizard.common.events import Event, LogLine, Progress, check_cancel
from wizard.common.mountinfo import MountEntry, parse_mountinfo, read_mountinfo
from wizard.disk.partitions import Partition, is_on

if TYPE_CHECKING:  # the SDK costs ~0.1 s: imported where it is used
    import docker

DAEMON_JSON = '{"storage-driver": "btrfs", "features": {"containerd-snapshotter": false}}'
"""The ``/etc/docker/daemon.json`` content that selects the classic btrfs graph driver."""

_STORAGE_FIX = (f"put {DAEMON_JSON} in /etc/docker/daemon.json, restart docker, "
                "then pull or build your images again (they are not migrated)")


@dataclass(frozen=True)
class DaemonInfo:
    """What the wizard needs from ``docker info``."""

    driver: str
    """Storage driver (``btrfs``; the snapshotter name in containerd mode)."""
    driver_status: tuple[tuple[str, str], ...]
    """``DriverStatus`` pairs; ``("driver-type", "io.containerd.snapshotter.v1")`` = containerd."""
    docker_root_dir: str
    """The daemon's data-root (``/var/lib/docker``)."""
    server_version: str
    """Engine version."""

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> DaemonInfo:
        """Build from the dict ``DockerClient.info()`` returns."""
        return cls(driver=info.get("Driver") or "",
                   driver_status=tuple((str(k), str(v))
                                       for k, v in (info.get("DriverStatus") or [])),
                   docker_root_dir=info.get("DockerRootDir") or "",
                   server_version=info.get("ServerVersion") or "")

    @property
    def containerd_store(self) -> bool:
        """True when images live in the containerd image store (snapshotters)."""
        return ("driver-type", "io.containerd.snapshotter.v1") in self.driver_status


@dataclass(frozen=True)
class ImageSummary:
    """One tag of a local image."""

    ref: str
    """``name:tag`` as Docker shows it (``localhost:5000/ns/app:1.0``)."""
    id: str
    """Image ID (``sha256:…``)."""
    short_id: str
    """Short image ID (``sha256:`` + 12 hex digits)."""
    size: int
    """Image size in bytes."""
    created: str
    """Creation time (RFC 3339, as the daemon reports it)."""

    @property
    def name(self) -> str:
        """The repository part of ``ref``."""
        return self.ref.rsplit(":", 1)[0] if ":" in self.ref.rsplit("/", 1)[-1] else self.ref

    @property
    def tag(self) -> str:
        """The tag part of ``ref``."""
        return self.ref[len(self.name) + 1:]

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable dict (for ``dockerboot-wizard images --json``)."""
        return asdict(self)


def connect() -> docker.DockerClient:
    """Connect to the daemon like the docker CLI does (``DOCKER_HOST`` is honoured).

    Raises:
        DockerError: the daemon cannot be reached.

    """
    import docker

    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        raise DockerError(f"cannot reach the Docker daemon at {host} ({_first_line(e)})",
                          "start dockerd (`systemctl start docker`) or set DOCKER_HOST "
                          "to its socket") from e
    return client


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def daemon_info(client: docker.DockerClient) -> DaemonInfo:
    """The daemon's storage facts.

    Raises:
        DockerError: the daemon did not answer.

    """
    import docker.errors

    try:
        return DaemonInfo.from_info(client.info())
    except docker.errors.DockerException as e:
        raise DockerError(f"docker info failed ({_first_line(e)})",
                          "check that dockerd is running and healthy") from e


def check_storage(info: DaemonInfo) -> None:
    """Refuse any storage setup other than the classic btrfs graph driver.

    Raises:
        DockerError: containerd image store or a non-btrfs driver; the fix
            gives the exact ``/etc/docker/daemon.json`` content.

    """
    if info.containerd_store:
        raise DockerError(
            f"Docker uses the containerd image store ({info.driver or 'snapshotter'}), "
            "whose layers the boot hook cannot find", _STORAGE_FIX)
    if info.driver != "btrfs":
        raise DockerError(
            f"Docker uses the {info.driver or 'unknown'} storage driver, not btrfs, "
            "so image layers are not btrfs subvolumes", _STORAGE_FIX)


def _mount_of(path: PurePosixPath, mounts: list[MountEntry]) -> MountEntry | None:
    best: MountEntry | None = None
    for entry in mounts:
        mp = PurePosixPath(entry.mountpoint)
        # ">=" so that of two mounts stacked on one mountpoint the later (visible) wins.
        if (path == mp or mp in path.parents) and (
                best is None or len(mp.parts) >= len(PurePosixPath(best.mountpoint).parts)):
            best = entry
    return best


def docker_path_for(data_root: Path | str, partition: Partition,
                    mountinfo: str | None = None) -> str:
    """The data-root's path relative to the partition's btrfs top level (``docker_path=``).

    Works whether the top level is mounted (data-root ``<mnt>/docker``) or the
    data-root subvolume itself (``subvol=docker`` on ``/var/lib/docker``): the
    mount's root inside the filesystem is joined with the rest of the path.

    Args:
        data_root: the daemon's ``DockerRootDir``.
        partition: the chosen partition.
        mountinfo: text of a mountinfo file; ``/proc/self/mountinfo`` by
            default (then symlinks in ``data_root`` are resolved first).

    Raises:
        DockerError: the data-root is not on the partition, or is its top level.

    """
    if mountinfo is None:
        mounts = read_mountinfo()
        data_root = Path(os.path.realpath(data_root))
    else:
        mounts = parse_mountinfo(mountinfo)
    path = PurePosixPath(data_root)
    entry = _mount_of(path, mounts)
    where = f"LABEL={partition.label}" if partition.label else partition.device
    if entry is None or not is_on(entry, partition):
        other = f"{entry.source} ({entry.fstype})" if entry else "an unknown filesystem"
        raise DockerError(
            f"data-root {data_root} is on {other}, not on {where}",
            f"mount the partition's docker subvolume at {data_root} (or set \"data-root\" "
            "in /etc/docker/daemon.json to a directory on it) and restart docker")
    inside = PurePosixPath(entry.root) / path.relative_to(entry.mountpoint)
    rel = str(inside).lstrip("/")
    if not rel or rel == ".":
        raise DockerError(f"data-root {data_root} is the top level of {where}",
                          "keep docker's data in a subvolume: `btrfs subvolume create "
                          "<top>/docker` and set \"data-root\" there")
    return rel


def list_images(client: docker.DockerClient) -> list[ImageSummary]:
    """Every tag of every local image, sorted by reference; untagged images are left out.

    Raises:
        DockerError: the daemon did not answer.

    """
    import docker.errors

    try:
        found = client.images.list()
    except docker.errors.DockerException as e:
        raise DockerError(f"listing images failed ({_first_line(e)})",
                          "check that dockerd is running and healthy") from e
    summaries = [ImageSummary(ref=tag, id=image.id or "", short_id=image.short_id,
                              size=int(image.attrs.get("Size") or 0),
                              created=str(image.attrs.get("Created") or ""))
                 for image in found for tag in image.tags if not tag.endswith(":<none>")]
    return sorted(summaries, key=lambda s: s.ref)


def pull_events(stream: Iterable[dict[str, Any]], cancel: threading.Event | None = None
                ) -> Iterator[Event]:
    """Turn the Docker API's pull stream into ``Progress``/``LogLine`` events.

    The stream (``client.api.pull(..., stream=True, decode=True)``) reports
    each layer separately; progress is the sum over the layers seen so far,
    so the total grows while layers are announced.

    Args:
        stream: decoded JSON messages of the pull.
        cancel: token checked between messages.

    Raises:
        ImageError: the daemon reported an error in-band (``errorDetail``).
        Cancelled: the token was set.

    """
    layers: dict[str, tuple[float, float]] = {}
    last_status = ""
    for message in stream:
        check_cancel(cancel)
        error = message.get("errorDetail") or ({"message": message["error"]}
                                               if message.get("error") else None)
        if error:
            raise ImageError(f"pull failed: {error.get('message', error)}",
                             "check the image name and the registry's reachability")
        status = str(message.get("status") or "")
        detail = message.get("progressDetail") or {}
        layer = message.get("id")
        if layer and detail.get("total"):
            layers[layer] = (float(detail.get("current") or 0), float(detail["total"]))
        elif layer and status in ("Pull complete", "Already exists", "Download complete"):
            done = layers.get(layer, (0.0, 0.0))[1]
            layers[layer] = (done, done)
        if layers:
            yield Progress(sum(c for c, _ in layers.values()),
                           sum(t for _, t in layers.values()) or None, label=status)
        text = f"{layer}: {status}" if layer else status
        if status and text != last_status and not detail.get("total"):
            last_status = text
            yield LogLine(text)
