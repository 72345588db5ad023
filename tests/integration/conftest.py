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
    with lab.docker_disk(work) as dd, pytest.MonkeyPatch.context() as mp:
        lab.import_rootfs(dd.daemon, SERVICES_IMAGE)
        mp.setenv("DOCKER_HOST", dd.daemon.host)
        esp = work / "esp"
        qemu.make_esp(esp)
        yield ServicesLab(dd.disk.label, dd.top, esp, dd.daemon)
