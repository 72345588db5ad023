"""One real generation from an image: what the generation tests build (as apply's build does)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from tests.lab import lab
from wizard.boot import generations, initramfs
from wizard.boot.fingerprint import fingerprint
from wizard.common.events import drive
from wizard.sandbox.qemu import make_esp
from wizard.store.images import split_ref


def build_generation(client: Any, boot: Path, image: str,
                     number: int | None = None) -> generations.Generation:
    """Detect, build staged in a container of ``image``, add as generation ``number`` (or next)."""
    if number is None:
        number = generations.next_number(generations.load(boot))
    target = initramfs.detect(client, image)
    name, tag = split_ref(image)
    staged = drive(initramfs.build(client, image, target, boot, image_name=name, image_tag=tag,
                                   cancel=threading.Event(), stage_only=True))
    assert staged is not None
    record = generations.new_record(number, fingerprint(target.generator, target.kver),
                                    image, str(client.images.get(image).id))
    return generations.add(boot, staged, record)


@dataclass
class BuildLab:
    """A lab disk's store, a client of its daemon and an empty ESP."""

    dd: lab.DockerDisk
    client: docker.DockerClient
    esp: Path

    @property
    def boot(self) -> Path:
        return self.dd.top / "boot_docker"

    def image_id(self, ref: str) -> str:
        return str(self.client.images.get(ref).id)


@contextlib.contextmanager
def build_lab(work: Path, image: str | None = None) -> Iterator[BuildLab]:
    """A lab disk under ``work`` (with ``image`` imported, when given); all of it stopped after."""
    with lab.docker_disk(work) as dd:
        if image is not None:
            lab.import_rootfs(dd.daemon, image)
        client = docker.DockerClient(base_url=dd.daemon.host, timeout=600)
        make_esp(work / "esp")
        try:
            yield BuildLab(dd, client, work / "esp")
        finally:
            client.close()
