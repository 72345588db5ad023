"""Pilot tests of the flow: every route, Back from each step, Quit, the problem screen."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList, Static

from screens import wizard_app
from screens.base import ConfirmScreen
from screens.problem import ProblemScreen
from screens.wizard_app import DockerbootApp, make_app
from tests.ui.conftest import SIZE, settle, with_placeholders
from tests.ui.fakes import PART, FakeServices
from wizard.config import Settings
from wizard.errors import DockerError, NotRootError, PartitionError
from wizard.flow import ROUTES, Mode, Step, WizardState

SAVED = Settings(label=PART.label, image="desk:1", hostname="box", users=("ann",))
MODE_ORDER = [Mode.RECONFIGURE_TOPLAYER, Mode.SWITCH_IMAGE, Mode.REBUILD_INITRAMFS,
              Mode.REWRITE_BOOT_ENTRY, Mode.FULL]
"""The welcome screen's option order for one saved config."""


async def walk(app: DockerbootApp, pilot, presses: int) -> list[Step | None]:
    """Press n ``presses`` times; return the step on screen before each press and at the end."""
    seen = []
    for _ in range(presses):
        await settle(pilot)
        seen.append(app.step)
        await pilot.press("n")
    await settle(pilot)
    seen.append(app.step)
    return seen


async def test_full_route_collects_settings_and_ends():
    app = with_placeholders(make_app(FakeServices()))
    async with app.run_test(size=SIZE) as pilot:
        seen = await walk(app, pilot, len(ROUTES[Mode.FULL].steps) - 1)
        assert seen == list(ROUTES[Mode.FULL].steps)
        settings = app.state.settings
        assert (settings.label, settings.image, settings.docker_path) == (PART.label, "desk:1",
                                                                          "docker")
        assert app.state.mode is Mode.FULL
        await pilot.press("n")  # Next on Done ends the wizard
        await pilot.pause()
    assert app.return_code == 0 and app.step is Step.DONE


@pytest.mark.parametrize("mode", MODE_ORDER)
async def test_each_mode_route_from_welcome(mode):
    app = with_placeholders(make_app(FakeServices(saved={PART.label: SAVED})))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modes = app.screen.query_one("#modes", OptionList)
        assert modes.option_count == 5
        for _ in range(MODE_ORDER.index(mode)):
            await pilot.press("down")
        await pilot.press("enter")
        seen = await walk(app, pilot, len(ROUTES[mode].steps) - 2)
        assert seen == list(ROUTES[mode].steps[1:])
        assert app.state.mode is mode and app.state.saved == SAVED
        assert app.state.settings.image == "desk:1" and app.state.settings.hostname == "box"


@pytest.mark.parametrize("index", range(1, len(ROUTES[Mode.FULL].steps)))
async def test_back_from_each_step(index):
    route = ROUTES[Mode.FULL].steps
    app = with_placeholders(make_app(FakeServices()))
    async with app.run_test(size=SIZE) as pilot:
        await walk(app, pilot, index)
        assert app.step is route[index]
        await pilot.press("b")
        await settle(pilot)
        assert app.step is route[index - 1]


async def test_back_on_a_reconfigure_route_skips_full_setup_steps():
    state = WizardState(settings=SAVED, saved=SAVED, mode=Mode.REBUILD_INITRAMFS)
    app = with_placeholders(make_app(FakeServices(), start_at=Step.REVIEW, state=state))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        assert app.step is Step.INITRAMFS


async def test_quit_with_unsaved_changes_asks_and_no_stays():
    app = with_placeholders(make_app(FakeServices()))
    async with app.run_test(size=SIZE) as pilot:
        await walk(app, pilot, 2)  # a partition was chosen: unsaved
        assert app.step is Step.DOCKER
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert app.step is Step.DOCKER and app.is_running
        assert app.state.settings.label == PART.label
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert app.step is Step.DOCKER and not app.is_running


async def test_ctrl_q_with_unsaved_changes_asks_too():
    app = with_placeholders(make_app(FakeServices()))
    async with app.run_test(size=SIZE) as pilot:
        await walk(app, pilot, 3)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running and app.step is Step.IMAGE


async def test_quit_without_changes_does_not_ask():
    app = make_app(FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert not app.is_running and app.step is Step.WELCOME


PROBLEMS = {
    "not-root": NotRootError("dockerboot-wizard must run as root", "run it again with sudo"),
    "no-docker": DockerError("cannot reach the Docker daemon at unix:///var/run/docker.sock",
                             "start dockerd"),
    "no-btrfs": PartitionError("no btrfs partition found",
                               "create one (`mkfs.btrfs -L NAME /dev/…`)"),
}


@pytest.mark.parametrize("kind", PROBLEMS)
async def test_problem_screen_explains_and_rechecks(kind):
    problem, fix = PROBLEMS[kind].problem, PROBLEMS[kind].fix
    app = make_app(FakeServices(env_problems=[PROBLEMS[kind]]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ProblemScreen)
        assert str(app.screen.query_one("#problem", Static).render()) == problem
        assert fix in str(app.screen.query_one("#fix", Static).render())
        await pilot.press("r")  # the fake's environment is fine the second time
        await settle(pilot)
        assert app.step is Step.WELCOME


async def test_problem_screen_quit_leaves():
    app = make_app(FakeServices(env_problems=[PROBLEMS["no-docker"]]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running and app.step is None


async def test_start_at_opens_that_step_with_the_given_state():
    state = WizardState(settings=SAVED)
    app = make_app(FakeServices(), start_at=Step.IMAGE, state=state)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.step is Step.IMAGE and type(app.screen).__name__ == "ImagesScreen"
        assert app.state is state


async def test_screenshot_goes_to_the_known_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(wizard_app, "SCREENSHOTS", tmp_path / "shots")
    app = make_app(FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.deliver_screenshot()
        for _ in range(50):
            await pilot.pause(0.05)
            if list((tmp_path / "shots").glob("*.svg")):
                break
        await pilot.pause(0.2)
        shots = list((tmp_path / "shots").glob("*.svg"))
        assert len(shots) == 1 and "<svg" in shots[0].read_text()
        notes = [str(n.message) for n in app._notifications]
        assert any(str(shots[0]) in n for n in notes), notes
