"""RealServices (what the TUI's later screens call) against the real lab.

Staged initramfs build in a real container, then plan + execute with the
TUI's top-layer edits: the same core as headless apply, nothing replaced
before execute.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import lab, qemu
from wizard import apply
from wizard.config import Settings
from wizard.flow import WizardState
from wizard.initramfs import STAGED_INITRD, STAGED_KERNEL
from wizard.services import RealServices
from wizard.users import collect

pytestmark = pytest.mark.lab

IMAGE = "dbw-services/debian:12"


@dataclass
class Env:
    label: str
    top: Path
    esp: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("services")
    with lab.loop_disk(work, size="6G") as disk, \
            lab.mounted(disk.btrfs_dev, work / "mnt") as top:
        lab.run("btrfs", "subvolume", "create", top / "docker")
        with lab.dockerd(top / "docker") as daemon, pytest.MonkeyPatch.context() as mp:
            daemon.docker("import", "--change", 'CMD ["/bin/sh"]',
                          lab.rootfs_tarball("initramfs-tools"), IMAGE, timeout=900)
            mp.setenv("DOCKER_HOST", daemon.host)
            esp = work / "esp"
            qemu.make_esp(esp)
            yield Env(disk.label, top, esp)


def test_image_file_and_refind(env: Env) -> None:
    services = RealServices()
    assert b"root:" in (services.image_file(IMAGE, "etc/passwd") or b"")
    assert services.image_file(IMAGE, "etc/no-such-file") is None
    conf, data = services.find_refind(Settings(label=env.label, image=IMAGE, esp=str(env.esp)))
    assert conf == env.esp / "EFI/BOOT/refind.conf" and data == conf.read_bytes()


def test_staged_build_then_plan_and_execute(env: Env) -> None:
    services = RealServices()
    settings = Settings(label=env.label, image=IMAGE, esp=str(env.esp), hostname="tui-box")
    state = WizardState(settings=settings, passwords={"bob": "b0b-pass-1"},
                        toplayer_edits={"etc/motd": b"hello from the TUI\n"})
    boot = env.top / "boot_docker"

    events, staged = collect(services.build_initramfs(state, cancel=threading.Event()))
    assert events and (env.top / staged / STAGED_KERNEL).stat().st_size > 0
    assert (env.top / staged / STAGED_INITRD).stat().st_size > 0
    assert not (boot / "vmlinuz").exists()  # nothing replaced before execute

    state = state.with_changes(staged_initramfs=staged)
    plan = services.plan(state, cancel=threading.Event())
    assert {c.relpath for c in plan.toplayer_changes} >= {"etc/hostname", "etc/motd",
                                                          "etc/shadow"}
    list(services.execute(plan, steps=apply.EXECUTE_STEPS, cancel=threading.Event()))

    assert (boot / "vmlinuz").stat().st_size > 0 and (boot / "initrd.img").stat().st_size > 0
    assert not (env.top / staged).exists()
    files = services.toplayer_files(state)
    assert files["etc/motd"] == b"hello from the TUI\n"
    assert files["etc/hostname"] == b"tui-box\n"
    assert b"bob:" in files["etc/shadow"] and b"b0b-pass-1" not in files["etc/shadow"]
    assert "# >>> dockerboot-wizard" in (env.esp / "EFI/BOOT/refind.conf").read_text()
    assert "bob" in (boot / "dockerboot-wizard.toml").read_text()
