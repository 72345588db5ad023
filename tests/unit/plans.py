"""A ``Plan`` on a scratch top level, its ``Session``, the boot pair an install replaces
and a staged build.

Shared by the unit tests of ``apply``, ``review`` and ``initramfs``: plain data
on ``tmp_path``, no daemon client (whatever would build or probe must not run).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from wizard.boot.bootset import NewGeneration, plan_new
from wizard.boot.fingerprint import fingerprint
from wizard.boot.initramfs import BuildTarget
from wizard.disk.partitions import Partition
from wizard.flows.apply import Plan, Session
from wizard.settings.config import Settings
from wizard.toplayer.files import FileChange

PART = Partition("dbw", "aaaa-bbbb", "/dev/loop7p2", 1 << 30, (7, 1))
TARGET = BuildTarget("initramfs-tools", "6.1.0-18-amd64", "/boot/vmlinuz-6.1.0-18-amd64")
SETTINGS = Settings(label="dbw", image="desk:1")


def make_plan(top: Path, settings: Settings = SETTINGS, **kw) -> Plan:
    """A full plan writing under ``top`` (``kw`` replaces fields, e.g. ``target=None``)."""
    conf = top / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    base = dict(settings=settings, top=top, device=PART.device,
                cmdline="root=LABEL=dbw", image_subvolume=top / "sub", target=TARGET,
                toplayer_changes=[FileChange("etc/hostname", None, b"desk1\n")],
                refind_conf=conf, refind_old=b"timeout 5\n", refind_new=b"timeout 5\n# new\n",
                config_old=None, config_new=b'label = "dbw"\nimage = "desk:1"\n')
    base.update(kw)
    if "generation" not in base:
        base["generation"] = new_generation(top, base["settings"])  # type: ignore[arg-type]
    return Plan(**base)


IMAGE_ID = "sha256:" + "ab" * 32
"""What ``ImagesOnly`` says every image's ID is."""


class ImagesOnly:
    """A daemon client that can only tell an image's ID: nothing may build or run."""

    class images:  # noqa: N801 — mirrors ``DockerClient.images``
        @staticmethod
        def get(ref: str) -> SimpleNamespace:
            return SimpleNamespace(id=IMAGE_ID)


def new_generation(top: Path, settings: Settings = SETTINGS) -> NewGeneration:
    """The next generation on ``top`` as a plan would make it (from ``TARGET``, ``IMAGE_ID``)."""
    return plan_new(top, settings, image_id=IMAGE_ID,
                    inputs=fingerprint(TARGET.generator, TARGET.kver))


def session(top: Path, settings: Settings = SETTINGS, client: object = None) -> Session:
    """A session on ``top`` (by default no daemon client: nothing may build)."""
    return Session(settings, PART, top, client, top / "docker")  # type: ignore[arg-type]


def old_pair(boot: Path) -> None:
    """The kernel and initramfs a previous apply installed in ``boot``."""
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "vmlinuz").write_bytes(b"old kernel")
    (boot / "initrd.img").write_bytes(b"old initrd")


def staged_build(boot: Path, kernel: bytes | None = b"new k",
                 initrd: bytes | None = b"new i") -> Path:
    """A build staged in ``boot`` next to its old pair (None: that file was never written)."""
    old_pair(boot)
    staged = boot / ".build-abc"
    staged.mkdir()
    for name, data in (("vmlinuz.new", kernel), ("initrd.img.new", initrd)):
        if data is not None:
            (staged / name).write_bytes(data)
    return staged
