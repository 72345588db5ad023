"""RealServices (what the TUI's later screens call) against the real lab.

Staged initramfs build in a real container, then plan + execute with the
TUI's top-layer edits: the same core as headless apply, nothing replaced
before execute.
"""

from __future__ import annotations

import threading

import pytest

from tests.integration.conftest import SERVICES_IMAGE
from tests.integration.conftest import ServicesLab as Env
from wizard import apply
from wizard.config import Settings
from wizard.flow import WizardState
from wizard.initramfs import STAGED_INITRD, STAGED_KERNEL
from wizard.services import RealServices
from wizard.users import collect

pytestmark = pytest.mark.lab

IMAGE = SERVICES_IMAGE


def test_image_file_and_refind(services_lab: Env) -> None:
    services = RealServices()
    assert b"root:" in (services.image_file(IMAGE, "etc/passwd") or b"")
    assert services.image_file(IMAGE, "etc/no-such-file") is None
    conf, data = services.find_refind(Settings(label=services_lab.label, image=IMAGE,
                                               esp=str(services_lab.esp)))
    assert conf == services_lab.esp / "EFI/BOOT/refind.conf" and data == conf.read_bytes()


def test_staged_build_then_plan_and_execute(services_lab: Env) -> None:
    services = RealServices()
    settings = Settings(label=services_lab.label, image=IMAGE, esp=str(services_lab.esp),
                        hostname="tui-box")
    state = WizardState(settings=settings, passwords={"bob": "b0b-pass-1"},
                        toplayer_edits={"etc/motd": b"hello from the TUI\n"})
    boot = services_lab.top / "boot_docker"

    events, staged = collect(services.build_initramfs(state, cancel=threading.Event()))
    assert events and (services_lab.top / staged / STAGED_KERNEL).stat().st_size > 0
    assert (services_lab.top / staged / STAGED_INITRD).stat().st_size > 0
    assert not (boot / "vmlinuz").exists()  # nothing replaced before execute

    state = state.with_changes(staged_initramfs=staged)
    plan = services.plan(state, cancel=threading.Event())
    assert {c.relpath for c in plan.toplayer_changes} >= {"etc/hostname", "etc/motd",
                                                          "etc/shadow"}
    list(services.execute(plan, steps=apply.EXECUTE_STEPS, cancel=threading.Event()))

    assert (boot / "vmlinuz").stat().st_size > 0 and (boot / "initrd.img").stat().st_size > 0
    assert not (services_lab.top / staged).exists()
    files = services.toplayer_files(state)
    assert files["etc/motd"] == b"hello from the TUI\n"
    assert files["etc/hostname"] == b"tui-box\n"
    assert b"bob:" in files["etc/shadow"] and b"b0b-pass-1" not in files["etc/shadow"]
    assert "# >>> dockerboot-wizard" in (services_lab.esp / "EFI/BOOT/refind.conf").read_text()
    assert "bob" in (boot / "dockerboot-wizard.toml").read_text()
