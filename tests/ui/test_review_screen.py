"""Pilot tests of the Review step on fakes: preview, Apply, retry, leaving, faults.

Every Apply attempt plans again for itself (the core's ``apply`` owns its
session); Review holds nothing mounted or locked while it is shown or left.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Button

from screens.common.base import ConfirmScreen, ErrorView
from screens.flows.review import ReviewScreen
from tests.ui.conftest import open_step, settle, shown, text
from tests.ui.every_step import failing, known_fault, known_faults, way_back
from tests.ui.fakes import SETTINGS, FakeServices
from wizard.common.errors import ConfigError
from wizard.flows.flow import Back, Mode, Next, Quit, Step, WizardState

STATE = WizardState(settings=SETTINGS)


class CountingServices(FakeServices):
    """Remembers each preview's plan (each apply's own plan is in ``applied_plans``)."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[object] = []

    def preview(self, st, *, cancel):
        preview = super().preview(st, cancel=cancel)
        assert self.open_sessions == 0  # the preview let its session go
        self.plans.append(preview.plan)
        return preview


async def apply(pilot) -> None:
    await pilot.press("a")
    await settle(pilot)


async def test_shows_the_preview_and_applies_all_steps():
    services = FakeServices()
    st = replace(STATE, staged_initramfs="boot_docker/.build-fake",
                 settings=replace(SETTINGS, hostname="desk1"),
                 toplayer_edits={"etc/motd": b"hi\n"}, passwords={"ann": "pw"})
    async with open_step(Step.REVIEW, st, services) as (app, pilot):
        screen = app.screen
        sections = "\n".join(shown(w) for w in screen.query("#sections Static"))
        assert "root=LABEL=dbw-fake rootflags=subvol=docker_rwlayer" in sections
        assert "already built, installed now" in sections
        assert "+desk1" in sections and "refind.conf" in sections
        assert "Nothing has been written yet" in text(screen, "#status")
        assert screen.query_one("#next", Button).disabled  # Apply is the way on
        await apply(pilot)
    assert ("apply", ("initramfs", "toplayer", "bootloader", "config")) in services.calls
    # Applied: nothing is left unsaved, staged or secret in the state.
    assert app.outcomes == [Next(replace(st, saved=st.settings, passwords={},
                                         toplayer_edits={}, staged_initramfs=None))]
    assert app.step is Step.DONE


async def test_reconfiguring_the_top_layer_writes_only_the_top_layer():
    services = FakeServices()
    st = replace(STATE, mode=Mode.RECONFIGURE_TOPLAYER, toplayer_edits={"etc/motd": b"hi\n"})
    async with open_step(Step.REVIEW, st, services) as (app, pilot):
        titles = [shown(w) for w in app.screen.query("#sections .title")]
        assert any("etc/motd" in t for t in titles)
        assert not any("initrd.img" in t or "refind.conf" in t for t in titles)
        await apply(pilot)
    assert ("apply", ("toplayer", "config")) in services.calls
    assert isinstance(app.outcomes[0], Next)


async def test_a_failed_apply_shows_the_log_and_the_next_attempt_plans_again():
    services = CountingServices()
    services.fail_apply = True
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        assert len(services.plans) == 1
        await apply(pilot)
        assert isinstance(app.screen, ErrorView)
        assert "cannot write config" in text(app.screen, "#error-problem")
        assert "How to fix: mount it read-write" in text(app.screen, "#error-fix")
        assert "toplayer log line" in text(app.screen, "#error-tail Static")
        await pilot.press("escape")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert "cannot write config" in text(screen, "#error")
        assert len(services.plans) == 2  # previewed again after the failed attempt
        assert "made again" in text(screen, "#status")
        assert not screen.query_one("#apply", Button).disabled  # may retry
        services.fail_apply = False
        await apply(pilot)
    # Each attempt planned for itself, from what was on disk then.
    assert len(services.applied_plans) == 2
    assert services.applied_plans[1] is not services.applied_plans[0]
    assert not any(p is q for p in services.applied_plans for q in services.plans)
    assert services.open_sessions == 0  # the failed attempt's session was closed too
    assert isinstance(app.outcomes[0], Next)


async def test_escape_cancels_an_apply_and_the_preview_is_made_again():
    services = CountingServices()
    services.hold_apply = True
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        await pilot.press("a")
        assert services.apply_waiting.wait(5)
        await pilot.pause()
        screen = app.screen
        assert screen.applying and screen.query_one("#back", Button).disabled
        await pilot.press("b")  # not while applying
        await pilot.press("escape")
        await settle(pilot)
        assert not screen.applying and app.screen is screen
        assert "Cancelled" in text(screen, "#error")
        assert len(services.plans) == 2
    assert app.outcomes == []  # b did nothing while applying
    assert services.open_sessions == 0


async def test_back_leaves_nothing_held_and_carries_the_state():
    services = CountingServices()
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        assert len(services.plans) == 1 and services.open_sessions == 0  # shown, not held
        await pilot.press("b")
        await settle(pilot)
    assert services.open_sessions == 0
    assert not any(name == "apply" for name, _ in services.calls)
    assert app.outcomes == [Back(STATE)]


async def test_back_while_the_preview_is_made_cancels_it():
    services = CountingServices()
    services.block_preview = True
    async with open_step(Step.REVIEW, STATE, services, settled=False) as (app, pilot):
        assert services.preview_started.wait(5)
        assert services.open_sessions == 1  # the preview's session, while it plans
        await pilot.press("b")
        await settle(pilot)
    assert services.open_sessions == 0 and services.plans == []
    assert app.outcomes == [Back(STATE)]


async def test_quit_with_unsaved_settings_asks_first():
    async with open_step(Step.REVIEW, STATE) as (app, pilot):
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
    assert app.outcomes == [Quit(STATE)]


@pytest.mark.parametrize("exc", known_faults(ConfigError("the ESP is read-only",
                                                        "remount it read-write")))
@pytest.mark.parametrize("method, keys", [("preview", ()), ("apply", ("a",))])
async def test_a_fault_is_one_line_and_only_an_apply_is_offered_again(
        method: str, keys: tuple[str, ...], exc: Exception):
    async with known_fault(Step.REVIEW, STATE, method, exc, keys=keys) as (app, _pilot):
        screen = app.screen  # no log: no dialog, the error line
        assert "Applying" not in text(screen, "#status")
        assert screen.query_one("#apply", Button).disabled is (method == "preview")


@pytest.mark.parametrize("method, keys", [("preview", ()), ("apply", ("a",))])
async def test_an_unexpected_fault_offers_the_way_back(method: str, keys: tuple[str, ...]):
    await way_back(Step.REVIEW, STATE, failing(method), keys=keys)


class OwnDefaultServices(CountingServices):
    """A refind.conf with the user's own default_selection."""

    def _plan(self, state):
        return replace(super()._plan(state), refind_old=b"timeout 5\ndefault_selection Windows\n")


async def test_the_users_own_default_selection_is_a_choice_saved_in_the_settings():
    services = OwnDefaultServices()
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        screen = app.screen
        sections = "\n".join(shown(w) for w in screen.query("#sections Static"))
        assert "line 2: default_selection Windows" in sections
        assert "y makes the wizard's default entry" in text(screen, "#status")
        await pilot.press("y")
        await settle(pilot)
        assert screen.state.settings.default_entry == "yes"
        sections = "\n".join(shown(w) for w in screen.query("#sections Static"))
        assert "commented out" in sections
        assert "Nothing has been written yet" in text(screen, "#status")
        await pilot.press("n")  # no question open any more: the key does nothing
        await settle(pilot)
        assert screen.state.settings.default_entry == "yes"
    previews = [c[1] for c in services.calls if c[0] == "preview"]
    assert [p.settings.default_entry for p in previews] == ["", "yes"]


async def test_no_question_without_an_own_default_selection():
    services = CountingServices()
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        sections = "\n".join(shown(w) for w in app.screen.query("#sections Static"))
        assert 'default_selection "Docker image"' in sections
        await pilot.press("y")
        await settle(pilot)
        assert app.screen.state.settings.default_entry == ""
