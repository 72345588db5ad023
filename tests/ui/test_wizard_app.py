"""Pilot tests of the flow: every route, Back from each step, Quit, the problem screen."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import OptionList, Static

from screens import wizard_app
from screens.common.base import ConfirmScreen
from screens.common.problem import ProblemScreen
from screens.wizard_app import DockerbootApp, make_app
from tests.ui.conftest import SIZE, open_step, press, settle, stub_for, until, with_placeholders
from tests.ui.fakes import PART, SETTINGS, FakeServices
from wizard.common.errors import DockerError, NotRootError, PartitionError
from wizard.flows.flow import ROUTES, Mode, Step, WizardState
from wizard.settings.config import Settings

SAVED = Settings(label=PART.label, image="desk:1", hostname="box", users=("ann",))
MODE_ORDER = [Mode.RECONFIGURE_TOPLAYER, Mode.SWITCH_IMAGE, Mode.REBUILD_INITRAMFS,
              Mode.REWRITE_BOOT_ENTRY, Mode.UPDATE, Mode.ROLLBACK, Mode.NEW_MACHINE, Mode.FULL]
"""The welcome screen's option order for one saved config."""
FROM_SAVED = [m for m in MODE_ORDER if m is not Mode.NEW_MACHINE]
"""The modes that start from the saved config (New machine: ``test_new_machine``)."""


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


async def full_setup(pilot) -> None:
    """Welcome with nothing saved: from New machine (highlighted first) to Full setup."""
    await settle(pilot)
    await pilot.press("down")


async def test_full_route_collects_settings_and_ends():
    app = with_placeholders(make_app(FakeServices()))
    async with app.run_test(size=SIZE) as pilot:
        await full_setup(pilot)
        seen = await walk(app, pilot, len(ROUTES[Mode.FULL].steps) - 1)
        assert seen == list(ROUTES[Mode.FULL].steps)
        settings = app.state.settings
        assert (settings.label, settings.image, settings.docker_path) == (PART.label, "desk:1",
                                                                          "docker")
        assert app.state.mode is Mode.FULL
        await pilot.press("n")  # Next on Done ends the wizard
        await pilot.pause()
    assert app.return_code == 0 and app.step is Step.DONE


@pytest.mark.parametrize("mode", FROM_SAVED)
async def test_each_mode_route_from_welcome(mode):
    app = with_placeholders(make_app(FakeServices(saved={PART.label: SAVED})))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modes = app.screen.query_one("#modes", OptionList)
        assert modes.option_count == len(MODE_ORDER)
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
        await full_setup(pilot)
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


@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_quit_with_unsaved_changes_asks_and_no_stays(key: str):
    app = with_placeholders(make_app(FakeServices()))
    async with app.run_test(size=SIZE) as pilot:
        await full_setup(pilot)
        await walk(app, pilot, 2)  # a partition was chosen: unsaved
        for answer in ("n", "y"):
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            await press(pilot, answer)
            assert app.step is Step.DOCKER and app.state.settings.label == PART.label
            assert app.is_running is (answer == "n")


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


# --- the later steps for real: a staged build's life ---

STAGED = "boot_docker/.build-fake"  # what FakeServices.build_initramfs returns
CLEAN = WizardState(settings=SETTINGS, saved=SETTINGS)
"""Saved == settings: nothing in the state itself is unsaved."""
NO_TOPLAYER = {Step.TOPLAYER: stub_for(Step.TOPLAYER)}
"""The real later steps, the Top layer a stub (its own tests: test_toplayer_screen)."""


def calls(services: FakeServices, name: str) -> list[object]:
    return [arg for called, arg in services.calls if called == name]


async def test_back_from_the_boot_entry_keeps_the_build_and_apply_installs_it():
    services = FakeServices()
    st = replace(CLEAN, settings=replace(SETTINGS, hostname="desk1"))
    async with open_step(Step.INITRAMFS, st, services, screens=NO_TOPLAYER) as (app, pilot):
        await press(pilot, "n", "b")  # Boot entry, then back to the build handed on
        assert app.step is Step.INITRAMFS and app.screen.state.staged_initramfs == STAGED
        await press(pilot, "n")
        await press(pilot, "n")
        await press(pilot, "a")  # Review applies
        assert app.step is Step.DONE
    assert calls(services, "build_initramfs") == ["desk:1"]  # offered again, not rebuilt
    assert calls(services, "apply") == [("initramfs", "toplayer", "bootloader", "config")]
    assert calls(services, "preview")[0].staged_initramfs == STAGED
    assert calls(services, "discard_staged") == []  # installed by apply, nothing to discard


async def test_ctrl_q_at_review_discards_the_staged_build_after_confirming():
    services = FakeServices()
    st = replace(CLEAN, settings=replace(SETTINGS, hostname="desk9"), staged_initramfs=STAGED)
    async with open_step(Step.REVIEW, st, services, screens={}) as (app, pilot):
        for answer in ("n", "y"):
            await pilot.press("ctrl+q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            await press(pilot, answer)
            # Still there while the user stays; gone with the wizard.
            assert calls(services, "discard_staged") == ([] if answer == "n" else [STAGED])
    assert not app.is_running and calls(services, "apply") == []


async def test_reconfiguring_the_top_layer_skips_the_build_and_the_boot_entry():
    services = FakeServices()
    st = replace(CLEAN, mode=Mode.RECONFIGURE_TOPLAYER)
    async with open_step(Step.TOPLAYER, st, services, screens=NO_TOPLAYER) as (app, pilot):
        await press(pilot, "n")
        assert app.step is Step.REVIEW
        await press(pilot, "a")
        assert app.step is Step.DONE
    assert calls(services, "apply") == [("toplayer", "config")]
    assert calls(services, "build_initramfs") == []
