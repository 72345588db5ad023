"""Pilot tests of the Welcome step on fakes: saved configs found, the mode chosen, faults."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import OptionList

from tests.ui.conftest import next_enabled, open_step, press, text
from tests.ui.every_step import BOOM, back_and_quit, failing, known_fault, way_back
from tests.ui.fakes import OTHER, PART, FakeServices
from wizard.common.errors import PartitionError
from wizard.flows.flow import Mode, Next, Step, WizardState
from wizard.settings.config import Settings

START = WizardState()
SAVED = Settings(label=PART.label, image="desk:2", hostname="box")
NEW_MACHINE = "New machine: a disk, free space or an empty partition"


def prompts(screen) -> list[str]:
    return [str(o.prompt) for o in screen.query_one("#modes", OptionList).options]


async def test_without_saved_config_a_new_machine_or_a_full_setup_is_offered():
    async with open_step(Step.WELCOME, START) as (app, pilot):
        assert prompts(app.screen) == [NEW_MACHINE, "Full setup"]
        assert "No saved configuration" in text(app.screen, "#found")
        await press(pilot, "down", "enter")  # New machine is highlighted first
    assert app.outcomes == [Next(replace(START, mode=Mode.FULL))]
    assert app.step is Step.PARTITION


async def test_a_saved_config_is_shown_and_next_reconfigures_it():
    services = FakeServices(saved={PART.label: SAVED, OTHER.label: "broken"})
    async with open_step(Step.WELCOME, START, services) as (app, pilot):
        found = text(app.screen, "#found")
        assert "LABEL=dbw-fake: boots desk:2, hostname box" in found
        assert "Unreadable config on data: config is not valid TOML" in found
        shown = prompts(app.screen)
        assert shown[0].startswith("Reconfigure top layer") and shown[-1] == "Full setup"
        await press(pilot, "n")  # the highlighted first option
    assert app.outcomes == [Next(WizardState(settings=SAVED, saved=SAVED,
                                             mode=Mode.RECONFIGURE_TOPLAYER))]
    assert app.step is Step.TOPLAYER


async def test_two_saved_configs_name_their_partition_and_either_can_be_chosen():
    theirs = Settings(label=OTHER.label, image="theirs:1")
    services = FakeServices(saved={PART.label: SAVED, OTHER.label: theirs})
    async with open_step(Step.WELCOME, START, services) as (app, pilot):
        shown = prompts(app.screen)
        assert shown[0].startswith("dbw-fake: Reconfigure top layer")
        assert shown[6].startswith("data: Reconfigure top layer") and len(shown) == 14
        await press(pilot, *["down"] * 7, "enter")  # data: Switch image/tag
    assert app.outcomes == [Next(WizardState(settings=theirs, saved=theirs,
                                             mode=Mode.SWITCH_IMAGE))]


async def test_full_setup_takes_the_saved_config_of_the_chosen_partition_only():
    mine = Settings(label=OTHER.label, image="mine:1")
    prefilled = WizardState(settings=mine)
    services = FakeServices(saved={PART.label: SAVED, OTHER.label: mine})
    async with open_step(Step.WELCOME, prefilled, services) as (app, pilot):
        modes = app.screen.query_one("#modes", OptionList)
        modes.highlighted = modes.option_count - 1  # Full setup
        await press(pilot, "n")
    assert app.outcomes == [Next(WizardState(settings=mine, saved=mine, mode=Mode.FULL))]


async def test_back_and_quit_carry_the_state():
    await back_and_quit(Step.WELCOME, WizardState(settings=SAVED), START)


async def test_a_scan_that_fails_is_shown_and_a_full_setup_still_offered():
    error = PartitionError("udev does not answer", "start systemd-udevd")
    async with known_fault(Step.WELCOME, START, "partitions", error) as (app, pilot):
        assert prompts(app.screen) == [NEW_MACHINE, "Full setup"] and next_enabled(app.screen)
        assert "No saved configuration" in text(app.screen, "#found")  # not "Looking…"
        await press(pilot, "down", "n")
    assert app.outcomes == [Next(replace(START, mode=Mode.FULL))]


async def test_a_bug_in_the_scan_offers_the_way_back():
    await way_back(Step.WELCOME, START, failing("partitions"))


async def test_a_bug_reading_one_config_costs_that_partition_only():
    async with open_step(Step.WELCOME, START, failing("saved_config", BOOM)) as (app, _pilot):
        found = text(app.screen, "#found")
        assert "Unreadable config on dbw-fake: unexpected RuntimeError: boom" in found
        assert "Unreadable config on data" in found and next_enabled(app.screen)
