"""Pilot tests of the Image step on fakes: filter, resolve, pull, the choice, faults."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import DataTable, Input, ProgressBar

from screens.common.base import ErrorView
from tests.ui.conftest import next_enabled, open_step, press, text
from tests.ui.every_step import BOOM, back_and_quit, failing, known_fault, known_faults, way_back
from tests.ui.fakes import PART, FakeServices
from wizard.common.errors import ImageError
from wizard.common.faults import message
from wizard.flows.flow import Next, Step, WizardState
from wizard.settings.config import Settings

CHOSEN = WizardState(settings=Settings(label=PART.label, image="", docker_path="docker"))
STAGED = WizardState(settings=replace(CHOSEN.settings, image="desk:1"),
                     staged_initramfs="boot_docker/.build-desk1")
PULL = ("p", *"new:1", "enter")


def chose(state: WizardState, image: str, staged: str | None = None) -> Next:
    """The Next that picks ``image`` (a build staged for another image is dropped)."""
    return Next(replace(state, settings=replace(state.settings, image=image),
                        staged_initramfs=staged))


def rows(screen) -> list[str]:
    table = screen.query_one("#images", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_the_filter_narrows_the_table_and_next_takes_the_one_left():
    async with open_step(Step.IMAGE, CHOSEN) as (app, pilot):
        assert rows(app.screen) == ["desk:1", "desk:2", "localhost:5000/ns/app:1.0"]
        await press(pilot, "slash", *"app")  # typing n/b/q/p here must not navigate
        assert rows(app.screen) == ["localhost:5000/ns/app:1.0"]
        await press(pilot, "enter", "n")  # leave the filter, then Next
        assert app.step is Step.TOPLAYER
    assert app.outcomes == [chose(CHOSEN, "localhost:5000/ns/app:1.0")]


async def test_the_highlighted_image_shows_its_subvolume_or_why_it_cannot_boot():
    services = FakeServices(unbootable={"desk:2": "image desk:2 has no layer cache-id"})
    async with open_step(Step.IMAGE, CHOSEN, services) as (app, pilot):
        assert "✔ desk:1 boots from subvolume /mnt/dbw/docker/btrfs/subvolumes/desk:1-top" \
            in text(app.screen, "#resolved")
        assert next_enabled(app.screen)
        await press(pilot, "down")
        assert "✘ desk:2 cannot boot: image desk:2 has no layer cache-id" in text(
            app.screen, "#resolved")
        await press(pilot, "n")
        assert app.outcomes == [] and not next_enabled(app.screen)


@pytest.mark.parametrize("presses, image, staged", [
    ((), "desk:1", STAGED.staged_initramfs),
    (("down",), "desk:2", None),
])
async def test_next_sets_the_image_and_drops_a_build_staged_for_another(
        presses: tuple[str, ...], image: str, staged: str | None):
    async with open_step(Step.IMAGE, STAGED) as (app, pilot):
        await press(pilot, *presses, "enter")  # Enter on a row is Next too
    assert app.outcomes == [chose(STAGED, image, staged)]


async def test_a_pull_shows_its_progress_and_lists_the_new_image():
    services = FakeServices()
    async with open_step(Step.IMAGE, CHOSEN, services) as (app, pilot):
        await press(pilot, *PULL)
        bar = app.screen.query_one("#progress", ProgressBar)
        assert (bar.progress, bar.total) == (100, 100)
        assert ("pull", "new:1") in services.calls
        assert "Pulled new:1." in text(app.screen, "#pullstatus")
        assert "new:1" in rows(app.screen)
        await press(pilot, "n")  # the cursor is on the pulled image
    assert app.outcomes == [chose(CHOSEN, "new:1")]


async def test_escape_cancels_a_running_pull():
    services = FakeServices()
    services.hold_pull = True
    async with open_step(Step.IMAGE, CHOSEN, services) as (app, pilot):
        screen = app.screen
        await pilot.press("p", *"slow:1", "enter")
        assert services.pull_waiting.wait(5)
        await pilot.pause()
        assert screen.pulling and not next_enabled(screen)
        assert text(screen, "#pullstatus") == "Pulling from library/new"
        await press(pilot, "escape")
        assert not screen.pulling and next_enabled(screen)
        assert text(screen, "#error") == "Cancelled: pull cancelled"
        assert rows(screen) == ["desk:1", "desk:2", "localhost:5000/ns/app:1.0"]
        assert screen.query_one("#pull", Input).value == "slow:1"


async def test_back_and_quit_carry_the_state():
    await back_and_quit(Step.IMAGE, STAGED, replace(STAGED, saved=STAGED.settings))


@pytest.mark.parametrize("exc", known_faults(ImageError("cannot list the images",
                                                        "check the daemon")))
async def test_a_list_that_fails_is_shown_and_r_reloads(exc: Exception):
    async with known_fault(Step.IMAGE, CHOSEN, "images", exc, retry="r") as (app, _):
        assert rows(app.screen) == [] and not next_enabled(app.screen)


@pytest.mark.parametrize("exc", known_faults(ImageError("pull access denied for new",
                                                        "docker login first")))
async def test_a_pull_that_fails_is_shown_and_enter_tries_again(exc: Exception):
    async with known_fault(Step.IMAGE, CHOSEN, "pull", exc, keys=PULL,
                           retry="enter") as (app, _):  # Enter in the pull field
        screen = app.screen
        assert not screen.pulling and text(screen, "#pullstatus") == ""
        assert screen.query_one("#progress", ProgressBar).progress == 0
        assert screen.query_one("#pull", Input).value == "new:1"  # kept, to correct
    assert ("pull", "new:1") in app.services.calls  # the retry (the fault records none)


@pytest.mark.parametrize("exc", [
    *known_faults(ImageError("image desk:1 has no layer cache-id", "pull it again")),
    pytest.param(BOOM, id="bug")])
async def test_a_resolve_that_fails_is_shown_next_to_the_image(exc: Exception):
    async with open_step(Step.IMAGE, CHOSEN, failing("resolve", exc)) as (app, _pilot):
        screen = app.screen
        assert not isinstance(screen, ErrorView)  # not the error path: the image's own line
        assert text(screen, "#resolved") == f"✘ desk:1 cannot boot: {message(exc)}"
        assert not screen.query_one("#error").display and not next_enabled(screen)


@pytest.mark.parametrize("method, keys", [("images", ()), ("pull", PULL)])
async def test_a_bug_in_the_list_or_the_pull_offers_the_way_back(method: str,
                                                                 keys: tuple[str, ...]):
    await way_back(Step.IMAGE, CHOSEN, failing(method), keys=keys)
