"""Pilot tests of the Update step on fakes: the plan shown, Apply, rollback, refusals,
failures; and the Welcome step showing the status and offering Update and Rollback."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Button, OptionList

from tests.ui.conftest import open_step, settle, text
from tests.ui.fakes import PART, SETTINGS, FakeServices
from wizard.common.errors import DockerError
from wizard.flows.flow import Mode, Next, Step, WizardState
from wizard.flows.update import NothingToRollBackError

UPDATE = WizardState(settings=SETTINGS, saved=SETTINGS, mode=Mode.UPDATE)


async def test_shows_the_plan_then_applies_it():
    services = FakeServices()
    async with open_step(Step.UPDATE, UPDATE, services) as (app, pilot):
        screen = app.screen
        plan = text(screen, "#plan-text")
        assert "new generation 3" in plan and "built now" in plan
        assert 'the "previous" entry boots generation 2' in plan and "+# generation 3" in plan
        assert "Nothing has been written yet" in text(screen, "#status")
        assert ("run_update", False) not in services.calls  # nothing before Apply
        assert screen.query_one("#next", Button).disabled
        await pilot.press("a")
        await settle(pilot)
    assert ("run_update", False) in services.calls
    assert app.outcomes == [Next(replace(UPDATE, saved=UPDATE.settings))]


async def test_rollback_plans_a_rollback():
    services = FakeServices()
    state = replace(UPDATE, mode=Mode.ROLLBACK)
    async with open_step(Step.UPDATE, state, services) as (app, pilot):
        assert "built now" not in text(app.screen, "#plan-text")  # a rollback builds nothing
        await pilot.press("a")
        await settle(pilot)
    assert ("preview_update", True) in services.calls and ("run_update", True) in services.calls


async def test_nothing_to_roll_back_is_one_error_line_and_no_apply():
    services = FakeServices()
    services.update_error = NothingToRollBackError(
        "there is no previous generation to roll back to", "apply an image")
    state = replace(UPDATE, mode=Mode.ROLLBACK)
    async with open_step(Step.UPDATE, state, services) as (app, pilot):
        screen = app.screen
        assert "no previous generation" in text(screen, "#error")
        assert screen.query_one("#apply", Button).disabled
        await pilot.press("a")
        await settle(pilot)
    assert not any(c[0] == "run_update" for c in services.calls)
    assert app.outcomes == []


async def test_a_failed_update_shows_its_line_and_stays():
    services = FakeServices()
    services.fail_apply = True
    async with open_step(Step.UPDATE, UPDATE, services) as (app, pilot):
        await pilot.press("a")
        await settle(pilot)
        assert "cannot write refind.conf" in text(app.screen, "#error")
        assert not app.screen.applying
    assert app.outcomes == []


async def test_welcome_shows_status_and_offers_update_and_rollback():
    services = FakeServices(saved={PART.label: SETTINGS})
    async with open_step(Step.WELCOME, WizardState(), services) as (app, pilot):
        found = text(app.screen, "#found")
        assert "default entry: generation 2, kernel 6.1.0-18-amd64" in found
        assert "update pending: the tag moved" in found and "(no build)" in found
        modes = app.screen.query_one("#modes", OptionList)
        prompts = [str(modes.get_option_at_index(i).prompt) for i in range(modes.option_count)]
        assert any(p.startswith("Update to what the tag is now") for p in prompts)
        assert "Roll back to the previous generation" in prompts


async def test_welcome_without_status_says_why_in_one_line():
    services = FakeServices(saved={PART.label: SETTINGS})
    services.status_error = DockerError("cannot reach the docker daemon", "start dockerd")
    async with open_step(Step.WELCOME, WizardState(), services) as (app, pilot):
        found = text(app.screen, "#found")
        assert "status unavailable: cannot reach the docker daemon" in found
        assert f"boots {SETTINGS.image}" in found  # the config is still offered
