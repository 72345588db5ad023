"""Helpers for the generation tests: fake kernels, staged builds, records, a fake docker."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker.errors

from wizard.boot import generations
from wizard.boot.fingerprint import Fingerprint
from wizard.boot.initramfs import SCRATCH_PREFIX, STAGED_INITRD, STAGED_KERNEL


def image_id(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def bzimage(kver: str) -> bytes:
    """A file with an x86 boot-protocol header naming ``kver`` (what kernel_version_of reads)."""
    data = bytearray(0x400)
    data[0x202:0x206] = b"HdrS"
    data[0x20E:0x210] = (0x100).to_bytes(2, "little")  # the string at 0x300
    text = f"{kver} (builder@example) #1 SMP Debian".encode() + b"\0"
    data[0x300:0x300 + len(text)] = text
    return bytes(data)


def inputs(kver: str = "6.1.0-31-amd64", generator: str = "initramfs-tools",
           assets: str = "a" * 64) -> Fingerprint:
    return Fingerprint(generator, kver, assets)


def stage(boot_dir: Path, kver: str = "6.1.0-31-amd64", name: str = "x1") -> Path:
    """A staged build as ``initramfs.build(stage_only=True)`` leaves it."""
    staged = boot_dir / f"{SCRATCH_PREFIX}{name}"
    staged.mkdir(parents=True)
    (staged / STAGED_KERNEL).write_bytes(bzimage(kver))
    (staged / STAGED_INITRD).write_bytes(b"initramfs of " + kver.encode())
    return staged


def make_gen(boot_dir: Path, number: int, seed: str, kver: str = "6.1.0-31-amd64",
             ref: str = "desktop:latest") -> generations.Generation:
    """Add generation ``number`` built from image ``image_id(seed)``."""
    record = generations.new_record(number, inputs(kver), ref, image_id(seed),
                                    created=f"2026-11-{number:02d}T08:00:00Z")
    return generations.add(boot_dir, stage(boot_dir, kver, name=f"g{number}"), record)


def api_error(code: int, text: str) -> docker.errors.APIError:
    response = SimpleNamespace(status_code=code, reason=text, url="http://docker/fake")
    return docker.errors.APIError(text, response=response, explanation=text)


class FakeImage:
    def __init__(self, store: FakeDocker, iid: str) -> None:
        self.store, self.id = store, iid
        self.attrs: dict[str, Any] = {"Config": {"Volumes": None}}

    @property
    def tags(self) -> list[str]:
        return sorted(t for t, i in self.store.tags.items() if i == self.id)

    def tag(self, repository: str, tag: str) -> bool:
        self.store.calls.append(("tag", f"{repository}:{tag}", self.id))
        self.store.tags[f"{repository}:{tag}"] = self.id
        return True


class FakeContainer:
    def __init__(self, store: FakeDocker, cid: str, image: str, name: str,
                 labels: dict[str, str], status: str = "created") -> None:
        self.store, self.id, self.image_id, self.name = store, cid, image, name
        self.labels, self.status = labels, status

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def remove(self, v: bool = False, force: bool = False) -> None:
        self.store.calls.append(("remove container", self.name, force))
        if self.status == "running" and not force:
            raise api_error(409, f"cannot remove running container {self.name}")
        del self.store.containers[self.id]


class _Images:
    def __init__(self, store: FakeDocker) -> None:
        self.store = store

    def _id(self, ref: str) -> str:
        if ref in self.store.images:
            return ref
        if ref in self.store.tags:
            return self.store.tags[ref]
        raise docker.errors.ImageNotFound(f"No such image: {ref}")

    def get(self, ref: str) -> FakeImage:
        return FakeImage(self.store, self._id(ref))

    def list(self, name: str | None = None) -> list[FakeImage]:
        ids = {i for t, i in self.store.tags.items()
               if name is None or t.rpartition(":")[0] == name}
        return [FakeImage(self.store, i) for i in sorted(ids)]

    def remove(self, image: str, force: bool = False, noprune: bool = False) -> None:
        """docker rmi, as measured: a tag with other references only untags; the last
        reference, or an ID, deletes the image unless a container uses it."""
        self.store.calls.append(("rmi", image, force))
        iid = self._id(image)
        users = [c for c in self.store.containers.values() if c.image_id == iid]
        tags = [t for t, i in self.store.tags.items() if i == iid]
        if image in self.store.tags and len(tags) > 1:
            del self.store.tags[image]
            return
        if users and not force:
            raise api_error(409, f"conflict: unable to remove {image} (must force) - "
                                 "image is being used by a stopped container")
        if image not in self.store.tags and len(tags) > 1 and not force:
            raise api_error(409, "image is referenced in multiple repositories")
        self.store.images.discard(iid)
        for t in tags:
            del self.store.tags[t]

    def prune_all(self) -> None:
        """docker image prune -a, as measured: unused images go; a used one loses
        references until the last one is refused."""
        for iid in sorted(self.store.images):
            for t in [t for t, i in sorted(self.store.tags.items()) if i == iid]:
                try:
                    self.remove(t)
                except docker.errors.APIError:
                    pass
            if iid in self.store.images and not any(
                    c.image_id == iid for c in self.store.containers.values()):
                self.remove(iid)


class _Containers:
    def __init__(self, store: FakeDocker) -> None:
        self.store = store

    def list(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[FakeContainer]:
        wanted = (filters or {}).get("label", [])
        wanted = [wanted] if isinstance(wanted, str) else wanted
        ancestor = (filters or {}).get("ancestor")

        def ok(c: FakeContainer) -> bool:
            if ancestor is not None and c.image_id != ancestor:
                return False
            for w in wanted:
                k, eq, v = w.partition("=")
                if k not in c.labels or (eq and c.labels[k] != v):
                    return False
            return True
        return [c for c in self.store.containers.values() if ok(c)]

    def create(self, image: str, command: Any = None, *, name: str, labels: dict[str, str],
               **kw: Any) -> FakeContainer:
        self.store.calls.append(("create", name, image))
        if image not in self.store.images:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        if any(c.name == name for c in self.store.containers.values()):
            raise api_error(409, f'Conflict. The container name "/{name}" is already in use')
        cid = hashlib.sha256(f"{name}{next(self.store.counter)}".encode()).hexdigest()
        c = FakeContainer(self.store, cid, image, name, dict(labels))
        self.store.containers[cid] = c
        return c


class FakeDocker:
    """Images, tags and containers with docker's reference rules, as measured."""

    def __init__(self) -> None:
        self.images: set[str] = set()
        self.tags: dict[str, str] = {}
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.counter = itertools.count()
        self.images_api = _Images(self)
        self.containers_api = _Containers(self)

    def add_image(self, seed: str, *tags: str) -> str:
        iid = image_id(seed)
        self.images.add(iid)
        for t in tags:
            self.tags[t] = iid
        return iid

    def exists(self, iid: str) -> bool:
        return iid in self.images


class FakeClient:
    def __init__(self, store: FakeDocker) -> None:
        self.store = store
        self.images = store.images_api
        self.containers = store.containers_api
