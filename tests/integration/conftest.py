"""Shared fixtures of the lab tests (module scope: each module gets its own lab)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import lab, qemu

SERVICES_IMAGE = "dbw-services/debian:12"
"""The debootstrapped initramfs-tools image imported into ``services_lab``'s daemon."""


@dataclass
class ServicesLab:
    """A loop btrfs disk with a private dockerd (btrfs driver) and an ESP directory."""

    label: str
    top: Path
    esp: Path
    daemon: lab.Dockerd
    image: str = SERVICES_IMAGE


@pytest.fixture(scope="module")
def services_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicesLab]:
    """The disk, daemon and image; ``DOCKER_HOST`` points at the daemon meanwhile."""
    work = tmp_path_factory.mktemp("services")
    with lab.loop_disk(work, size="6G") as disk, \
            lab.mounted(disk.btrfs_dev, work / "mnt") as top:
        lab.run("btrfs", "subvolume", "create", top / "docker")
        with lab.dockerd(top / "docker") as daemon, pytest.MonkeyPatch.context() as mp:
            daemon.docker("import", "--change", 'CMD ["/bin/sh"]',
                          lab.rootfs_tarball("initramfs-tools"), SERVICES_IMAGE, timeout=900)
            mp.setenv("DOCKER_HOST", daemon.host)
            esp = work / "esp"
            qemu.make_esp(esp)
            yield ServicesLab(disk.label, top, esp, daemon)
