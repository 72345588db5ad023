"""Pilot tests of the Initramfs step on fakes: the staged build, its outcomes and faults."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Button, Static

from screens.boot.initramfs import InitramfsScreen
from screens.common.base import ConfirmScreen, ErrorView
from tests.ui.conftest import open_step, settle, text
from tests.ui.every_step import BOOM, failing, way_back
from tests.ui.fakes import SETTINGS, FakeServices
from wizard.common.events import LogLine
from wizard.flows.flow import Back, Next, Quit, Step, WizardState

STAGED = "boot_docker/.build-fake"  # what the fake build returns
OLD = "boot_docker/.build-old"
CLEAN = WizardState(settings=SETTINGS, saved=SETTINGS)
"""Saved == settings: nothing in the state itself is unsaved."""


def discarded(services: FakeServices) -> list[object]:
    return [arg for name, arg in services.calls if name == "discard_staged"]


def builds(services: FakeServices) -> int:
    return [name for name, _ in services.calls].count("build_initramfs")


async def until_building(pilot, services: FakeServices) -> None:
    for _ in range(500):
        if services.build_started.is_set():
            await pilot.pause()
            return
        await pilot.pause()
    raise AssertionError("the build never started")


async def test_build_runs_on_entry_and_next_carries_the_staged_build():
    async with open_step(Step.INITRAMFS, state=CLEAN) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, InitramfsScreen)
        assert screen.query_one(".nav").styles.dock == "bottom"  # StepScreen's CSS applies
        assert "initramfs-tools" in text(screen, "#target")
        assert "6.1.0-18-amd64" in text(screen, "#target")
        assert "dockerboot-build: running mkinitramfs" in screen.work_log.lines
        assert "Built (installed at Review): staged" in text(screen, "#status")
        assert not screen.query_one("#next", Button).disabled
        assert screen.query_one("#cancel", Button).disabled
        assert not screen.query_one("#build", Button).disabled
        await pilot.press("n")
        await settle(pilot)
        assert app.outcomes == [Next(replace(CLEAN, staged_initramfs=STAGED))]
        assert app.state.staged_initramfs == STAGED
        assert app.screen.STEP is Step.BOOTLOADER


async def test_a_build_handed_on_before_is_offered_not_rebuilt():
    services = FakeServices()
    kept = replace(CLEAN, staged_initramfs=OLD)
    async with open_step(Step.INITRAMFS, state=kept, services=services) as (app, pilot):
        assert "Already built" in text(app.screen, "#status")
        assert builds(services) == 0
        await pilot.press("n")
        await settle(pilot)
    assert app.outcomes == [Next(kept)]


async def test_back_carries_the_new_build_and_the_app_discards_it():
    services = FakeServices()
    async with open_step(Step.INITRAMFS, state=CLEAN, services=services) as (app, pilot):
        await pilot.press("b")
        await settle(pilot)
        assert app.outcomes == [Back(replace(CLEAN, staged_initramfs=STAGED))]
        assert discarded(services) == [STAGED]
        assert app.state.staged_initramfs is None
        assert app.screen.STEP is Step.TOPLAYER


async def test_quit_carries_the_new_build_and_the_app_discards_it():
    services = FakeServices()
    async with open_step(Step.INITRAMFS, state=CLEAN, services=services) as (app, pilot):
        await pilot.press("q")  # nothing unsaved: no question
        await settle(pilot)
        assert app.outcomes == [Quit(replace(CLEAN, staged_initramfs=STAGED))]
        assert not app.is_running
    assert discarded(services) == [STAGED]


async def test_quit_asks_first_when_the_settings_are_not_saved():
    services = FakeServices()
    unsaved = WizardState(settings=SETTINGS)
    async with open_step(Step.INITRAMFS, state=unsaved, services=services) as (app, pilot):
        screen = app.screen
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and app.outcomes == []
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert app.outcomes == [Quit(replace(unsaved, staged_initramfs=STAGED))]
    assert discarded(services) == [STAGED]


async def test_cancelled_rebuild_says_so_and_back_carries_no_build():
    services = FakeServices()
    kept = replace(CLEAN, staged_initramfs=OLD)
    async with open_step(Step.INITRAMFS, state=kept, services=services) as (app, pilot):
        screen = app.screen
        services.block_build = True
        await pilot.press("r")
        await until_building(pilot, services)
        assert screen.building and screen.busy
        assert screen.query_one("#next", Button).disabled
        assert not screen.query_one("#cancel", Button).disabled
        assert screen.query_one("#build", Button).disabled
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen  # a cancel is no failure: no dialog
        error = screen.query_one("#error", Static)
        assert "Cancelled: " in text(screen, "#error")
        assert "previous kernel and initramfs are untouched" in text(screen, "#error")
        assert not error.has_class("error")
        assert not screen.building and not screen.busy
        assert screen.query_one("#next", Button).disabled
        assert screen.query_one("#cancel", Button).disabled
        assert not screen.query_one("#build", Button).disabled
        await pilot.press("n")  # nothing staged: Next stays unavailable
        await pilot.pause()
        assert app.outcomes == []
        await pilot.press("b")
        await settle(pilot)
        assert app.outcomes == [Back(replace(kept, staged_initramfs=None))]
        # The rebuild removed the old build: the app forgets it, nothing left to discard.
        assert app.state.staged_initramfs is None
        assert discarded(services) == []


async def test_leaving_during_a_build_stops_it_and_carries_no_build():
    services = FakeServices()
    kept = replace(CLEAN, staged_initramfs=OLD)
    async with open_step(Step.INITRAMFS, state=kept, services=services) as (app, pilot):
        services.block_build = True
        await pilot.press("r")
        await until_building(pilot, services)
        await pilot.press("b")
        await settle(pilot)
        assert app.outcomes == [Back(replace(kept, staged_initramfs=None))]
        assert app.screen.STEP is Step.TOPLAYER
        assert not any(w.group == "initramfs" and not w.is_finished for w in app.workers)


async def test_build_failure_shows_problem_fix_and_the_last_log_lines():
    services = FakeServices()
    services.fail_build = True
    async with open_step(Step.INITRAMFS, state=CLEAN, services=services) as (app, pilot):
        view = app.screen
        assert isinstance(view, ErrorView)
        assert "no btrfs module" in text(view, "#error-problem")
        assert "fix the image" in text(view, "#error-fix")
        tail = str(view.query_one("#error-tail Static", Static).render())
        # The relayed log, then the build's own last lines.
        assert "dockerboot-build: running mkinitramfs" in tail
        assert "E: no btrfs module" in tail
        assert not view.query("#error-back")  # the user's problem: stay and fix it
        await pilot.press("escape")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InitramfsScreen)
        line = text(screen, "#error")
        assert "Problem: building the initramfs in desk:1 failed: no btrfs module" in line
        assert "How to fix: fix the image" in line
        assert screen.query_one("#error", Static).has_class("error")
        assert screen.query_one("#next", Button).disabled
        assert screen.state.staged_initramfs is None
        services.fail_build = False
        await pilot.press("r")  # a retry clears the error and builds
        await settle(pilot)
        assert not screen.query_one("#error", Static).display
        assert screen.state.staged_initramfs == STAGED


async def test_detect_failure_names_what_to_add_to_the_image():
    services = FakeServices()
    services.fail_detect = True
    async with open_step(Step.INITRAMFS, state=CLEAN, services=services) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, InitramfsScreen)  # no log tail: no dialog
        line = text(screen, "#error")
        assert "Problem: image desk:1 has no kernel in /lib/modules" in line
        assert "How to fix: add `linux-image-amd64` to its Dockerfile" in line
        assert builds(services) == 0
        assert not screen.busy and not screen.query_one("#build", Button).disabled


def broken_build(state, *, cancel):
    yield LogLine("dockerboot-build: running mkinitramfs")
    raise BOOM


async def test_a_bug_in_the_detection_or_the_build_offers_the_way_back():
    await way_back(Step.INITRAMFS, CLEAN, failing("detect_initramfs"))
    services = FakeServices()
    services.build_initramfs = broken_build  # type: ignore[method-assign]
    await way_back(Step.INITRAMFS, CLEAN, services)
