"""RealServices (what the TUI's later screens call) against the real lab.

Staged initramfs build in a real container, then preview + apply with the
TUI's top-layer edits: the same core as headless apply, nothing replaced
before apply.  A preview leaves nothing mounted or locked; an apply's
session is closed even when its consumer stops early.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace

import pytest

from tests.integration.conftest import SERVICES_IMAGE
from tests.integration.conftest import ServicesLab as Env
from wizard.boot import generations
from wizard.boot.initramfs import STAGED_INITRD, STAGED_KERNEL
from wizard.common import leftovers
from wizard.common.errors import ConfigError
from wizard.common.events import StepStarted
from wizard.common.lock import LockedError, partition_lock
from wizard.disk import partitions
from wizard.flows import apply, changes
from wizard.flows.flow import Mode, WizardState
from wizard.flows.services import RealServices
from wizard.settings.config import Settings
from wizard.toplayer.users import collect

# Every wizard mount of the machine is counted (none left after a session).
pytestmark = [pytest.mark.lab, pytest.mark.machine_wide]

IMAGE = SERVICES_IMAGE


def test_image_file_and_refind(services_lab: Env) -> None:
    services = RealServices()
    assert b"root:" in (services.image_file(IMAGE, "etc/passwd") or b"")
    assert services.image_file(IMAGE, "etc/no-such-file") is None
    conf, data = services.find_refind(Settings(label=services_lab.label, image=IMAGE,
                                               esp=str(services_lab.esp)))
    assert conf == services_lab.esp / "EFI/BOOT/refind.conf" and data == conf.read_bytes()


def test_staged_build_then_preview_and_apply(services_lab: Env) -> None:
    services = RealServices()
    settings = Settings(label=services_lab.label, image=IMAGE, esp=str(services_lab.esp),
                        hostname="tui-box")
    state = WizardState(settings=settings, passwords={"bob": "b0b-pass-1"},
                        toplayer_edits={"etc/motd": b"hello from the TUI\n"})
    boot = services_lab.top / "boot_docker"

    events, staged = collect(services.build_initramfs(state, cancel=threading.Event()))
    assert events and (services_lab.top / staged / STAGED_KERNEL).stat().st_size > 0
    assert (services_lab.top / staged / STAGED_INITRD).stat().st_size > 0
    assert not (boot / "gen").exists()  # no generation before execute

    state = replace(state, staged_initramfs=staged)
    preview = services.preview(state, cancel=threading.Event())
    assert {c.relpath for c in preview.plan.toplayer_changes} >= {"etc/hostname", "etc/motd",
                                                                  "etc/shadow"}
    assert preview.plan.staged == services_lab.top / staged
    assert "already built, installed now" in preview.text
    assert (services_lab.top / staged).is_dir() and not (boot / "gen").exists()
    list(services.apply(state, cancel=threading.Event()))

    newest = generations.load(boot).newest  # the staged pair, installed as generation 1
    assert newest is not None and newest.number == 1
    assert (boot / newest.loader).stat().st_size > 0
    assert (boot / newest.initrd_path).stat().st_size > 0
    assert not (services_lab.top / staged).exists()
    files = services.toplayer_files(state)
    assert files["etc/motd"] == b"hello from the TUI\n"
    assert files["etc/hostname"] == b"tui-box\n"
    assert b"bob:" in files["etc/shadow"] and b"b0b-pass-1" not in files["etc/shadow"]
    assert "# >>> dockerboot-wizard" in (services_lab.esp / "EFI/BOOT/refind.conf").read_text()
    assert "bob" in (boot / "dockerboot-wizard.toml").read_text()


# --- nothing held between calls ---

@pytest.fixture
def own_mount(services_lab: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the lab's own mount of the top level from ``partitions.top_level``.

    The wizard then mounts the top level itself in ``leftovers.RUN_DIR``, as on a
    machine where it is not mounted: what a session leaves behind shows there.
    """
    real = partitions.read_mountinfo
    monkeypatch.setattr(partitions, "read_mountinfo", lambda: [
        e for e in real() if e.mountpoint != str(services_lab.top)])


def wizard_mounts() -> list[str]:
    """Mounts in the wizard's private run directory (where sessions mount the top level)."""
    return [e.mountpoint for e in partitions.read_mountinfo()
            if e.mountpoint.startswith(f"{leftovers.RUN_DIR}/")]


def lock_is_free(lab: Env) -> bool:
    """Whether the partition's lock can be taken right now (it is released at once)."""
    try:
        with partition_lock(lab.top / "boot_docker", lab.label):
            return True
    except LockedError:
        return False


def toplayer_state(lab: Env, hostname: str) -> WizardState:
    settings = Settings(label=lab.label, image=IMAGE, hostname=hostname)
    return WizardState(settings=settings, saved=settings, mode=Mode.RECONFIGURE_TOPLAYER)


def test_preview_leaves_nothing_mounted_or_locked(services_lab: Env, own_mount: None) -> None:
    services = RealServices()
    state = toplayer_state(services_lab, "preview-box")
    preview = services.preview(state, cancel=threading.Event())
    top = preview.plan.top
    assert str(top).startswith(f"{leftovers.RUN_DIR}/")  # the session's own mount …
    assert not os.path.ismount(top) and not top.exists()  # … is gone again
    assert wizard_mounts() == [] and lock_is_free(services_lab)
    assert not (services_lab.top / "boot_docker" / ".lock").exists()
    assert "+preview-box" in preview.text and preview.steps == apply.TOPLAYER_ONLY
    # Nothing held: a second preview (with the lock) and an apply run right after.
    again = changes.preview(changes.ApplyRequest(state.settings, steps=apply.TOPLAYER_ONLY))
    assert not os.path.ismount(again.plan.top) and wizard_mounts() == []
    list(services.apply(state, cancel=threading.Event()))
    assert wizard_mounts() == [] and lock_is_free(services_lab)
    toplayer = services_lab.top / "boot_docker/toplayer"
    assert (toplayer / "etc/hostname").read_bytes() == b"preview-box\n"


def test_apply_closed_early_closes_its_session(services_lab: Env, own_mount: None) -> None:
    services = RealServices()
    state = toplayer_state(services_lab, "never-written")
    hostname = services_lab.top / "boot_docker/toplayer/etc/hostname"
    before = hostname.read_bytes() if hostname.exists() else None
    gen = services.apply(state, cancel=threading.Event())
    first = next(gen)
    assert isinstance(first, StepStarted) and first.step == "toplayer"
    assert len(wizard_mounts()) == 1 and not lock_is_free(services_lab)  # held meanwhile
    with pytest.raises(LockedError):
        services.preview(state, cancel=threading.Event())
    gen.close()  # the consumer stops iterating
    assert wizard_mounts() == [] and lock_is_free(services_lab)
    assert (hostname.read_bytes() if hostname.exists() else None) == before
    services.preview(state, cancel=threading.Event())  # runs right after


def test_a_bad_setting_is_refused_before_anything_is_mounted(
        services_lab: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_mount(*a: object, **k: object) -> None:
        raise AssertionError("the top level was mounted")

    monkeypatch.setattr(partitions, "top_level", no_mount)
    bad = Settings(label=services_lab.label, image=IMAGE, kernel_options="root=/dev/sda1")
    with pytest.raises(ConfigError, match="root= is set by the wizard"):
        RealServices().preview(WizardState(settings=bad), cancel=threading.Event())
    with pytest.raises(ConfigError, match="root= is set by the wizard"):
        list(RealServices().apply(WizardState(settings=bad), cancel=threading.Event()))
