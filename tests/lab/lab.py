"""Real components for integration and e2e tests (DESIGN §7).

The machinery now ships in the product (``wizard.sandbox.parts``, used by
``dockerboot-wizard sandbox``); this module keeps the test lab's names.
Everything runs as root against the real kernel: loop devices, btrfs,
systemd-udevd, a private dockerd per disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from wizard.common.commands import CommandError, run
from wizard.disk.partitions import mounted
from wizard.sandbox.parts import (
    UDEVD,
    Disk,
    attach_disk,
    ensure_udevd,
    loop_disk,
    rootfs_tarball,
    udev_settle,
    unique_label,
)
from wizard.store.private_daemon import Dockerd, dockerd

__all__ = ["UDEVD", "CommandError", "Disk", "DockerDisk", "Dockerd", "attach_disk", "docker_disk",
           "dockerd", "ensure_udevd", "import_rootfs", "loop_disk", "mounted", "rootfs_tarball",
           "run", "tar_of", "udev_settle", "unique_label"]


@dataclasses.dataclass
class DockerDisk:
    """A loop btrfs disk, its top level mounted, and a private dockerd on its ``docker``."""

    disk: Disk
    top: Path
    daemon: Dockerd


@contextlib.contextmanager
def docker_disk(work: Path, *, size: str = "6G") -> Iterator[DockerDisk]:
    """The lab most integration tests start from (torn down in reverse order)."""
    with loop_disk(work, size=size) as disk, mounted(disk.btrfs_dev, work / "mnt") as top:
        run("btrfs", "subvolume", "create", top / "docker")
        with dockerd(top / "docker") as daemon:
            yield DockerDisk(disk, top, daemon)


def import_rootfs(daemon: Dockerd, image: str, generator: str = "initramfs-tools") -> None:
    """Import the cached debootstrapped rootfs as ``image`` (no Docker Hub)."""
    daemon.docker("import", "--change", 'CMD ["/bin/sh"]', rootfs_tarball(generator), image,
                  timeout=900)


def tar_of(path: Path, files: dict[str, str | bytes]) -> Path:
    """Write a tar of ``files`` (path in the tar -> content, mode 0644): a tiny image to import."""
    with tarfile.open(path, "w") as tf:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return path


@contextlib.contextmanager
def cli_lab(work: Path, image: str, tiny: str) -> Iterator[tuple[DockerDisk, Path]]:
    """``docker_disk`` with the sample rootfs as ``image``, a kernel-less ``tiny`` image and
    an ESP directory with rEFInd: what the CLI tests run ``apply`` against."""
    from wizard.sandbox.qemu import make_esp

    with docker_disk(work) as dd:
        import_rootfs(dd.daemon, image)
        dd.daemon.docker("import", tar_of(work / "tiny.tar",
                                          {"etc/tiny": "tiny image without a kernel\n"}), tiny)
        esp = work / "esp"
        make_esp(esp)
        yield dd, esp
