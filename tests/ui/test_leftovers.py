"""Pilot tests (fake services): staged builds are discarded when the flow ends without
applying them."""

from __future__ import annotations

from dataclasses import replace

from screens.base import ConfirmScreen
from screens.done import DoneScreen
from screens.initramfs import InitramfsScreen
from screens.review import ReviewScreen
from screens.wizard_app import make_app
from tests.ui.conftest import SIZE
from tests.ui.fakes import FakeServices
from tests.ui.fakes_late import SETTINGS
from wizard.flow import Step, WizardState

STAGED = "boot_docker/.build-fake"  # what FakeServices.build_initramfs returns
# Saved == settings: nothing in the state itself is unsaved.
CLEAN = WizardState(settings=SETTINGS, saved=SETTINGS)


async def until(pilot, ready, what: str) -> None:
    """Pump the app until ``ready()`` (the flow worker never completes)."""
    for _ in range(2000):
        await pilot.pause()
        if ready():
            return
    raise AssertionError(f"never happened: {what} (at {pilot.app.screen!r})")


def discarded(services: FakeServices) -> list[object]:
    return [arg for name, arg in services.calls if name == "discard_staged"]


def built(app) -> bool:
    return isinstance(app.screen, InitramfsScreen) and app.screen.state.staged_initramfs == STAGED


async def test_ctrl_q_at_review_discards_the_staged_build_after_confirming():
    services = FakeServices()
    st = replace(CLEAN, settings=replace(SETTINGS, hostname="desk9"),
                 staged_initramfs=STAGED)
    app = make_app(services, start_at=Step.REVIEW, state=st)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen)
                    and app.screen.plan is not None, "plan")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen), "back on review")
        assert discarded(services) == []  # still there while the user stays
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, "exit")
    assert discarded(services) == [STAGED]
    assert not any(name == "apply" for name, _ in services.calls)


async def test_back_from_bootloader_keeps_the_build_and_applying_installs_it():
    services = FakeServices()
    app = make_app(services, start_at=Step.INITRAMFS, state=CLEAN)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: built(app), "staged build")
        await pilot.press("n")
        await until(pilot, lambda: app.step == Step.BOOTLOADER, "bootloader step")
        await pilot.press("b")
        # Back on the initramfs step the handed-on build is offered again, not rebuilt.
        await until(pilot, lambda: built(app), "initramfs step again")
        await pilot.press("n")
        await until(pilot, lambda: app.step == Step.BOOTLOADER
                    and app.screen.found is not None, "bootloader step again")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ReviewScreen)
                    and app.screen.plan is not None, "plan")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, DoneScreen), "done")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, "exit")
    assert [name for name, _ in services.calls].count("build_initramfs") == 1
    assert discarded(services) == []  # installed by apply, nothing to discard


# Text typed but not kept in the top-layer editor asks before quitting:
# tests/ui/test_toplayer_screen.py::test_quit_with_pending_edits_asks_first.
