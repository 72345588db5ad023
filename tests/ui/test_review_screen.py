"""Pilot tests of the Review step on fakes: preview, Apply, retry, leaving, faults.

Every Apply attempt plans again for itself (the core's ``apply`` owns its
session); Review holds nothing mounted or locked while it is shown or left.
"""

from __future__ import annotations

import errno
import os
from dataclasses import replace

import docker.errors
import pytest
from rich.syntax import Syntax
from textual.widgets import Button, Static

from screens.base import ConfirmScreen, ErrorView
from screens.review import ReviewScreen
from tests.ui.conftest import open_step, settle
from tests.ui.fakes import FakeServices
from tests.ui.fakes_late import SETTINGS
from wizard.flow import Back, Mode, Next, Quit, Step, WizardState

STATE = WizardState(settings=SETTINGS)
FAULTS = {
    "oserror": (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/mnt/top/boot_docker/x"),
                "No space left on device writing /mnt/top/boot_docker/x"),
    "docker": (docker.errors.APIError("500 Server Error: boom"), "the Docker daemon failed"),
}


def plain(widget: Static) -> str:
    content = widget.content
    return content.code if isinstance(content, Syntax) else str(content)


def text_of(screen, selector: str) -> str:
    return plain(screen.query_one(selector, Static))


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
        shown = "\n".join(plain(w) for w in screen.query("#sections Static"))
        assert "root=LABEL=dbw-fake rootflags=subvol=docker_rwlayer" in shown
        assert "already built, installed now" in shown
        assert "+desk1" in shown and "refind.conf" in shown
        assert "Nothing has been written yet" in text_of(screen, "#status")
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
        titles = [plain(w) for w in app.screen.query("#sections .title")]
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
        assert "cannot write config" in text_of(app.screen, "#error-problem")
        assert "How to fix: mount it read-write" in text_of(app.screen, "#error-fix")
        assert "toplayer log line" in text_of(app.screen, "#error-tail Static")
        await pilot.press("escape")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert "cannot write config" in text_of(screen, "#error")
        assert len(services.plans) == 2  # previewed again after the failed attempt
        assert "made again" in text_of(screen, "#status")
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
        assert "Cancelled" in text_of(screen, "#error")
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


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_a_preview_fault_is_one_line_with_its_fix(kind: str):
    exc, words = FAULTS[kind]
    services = FakeServices()

    def preview(state, *, cancel):
        raise exc

    services.preview = preview  # type: ignore[method-assign]
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert words in text_of(screen, "#error") and "How to fix" in text_of(screen, "#error")
        assert "Traceback" not in text_of(screen, "#error")
        assert screen.query_one("#apply", Button).disabled


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_an_apply_fault_is_one_line_and_apply_is_offered_again(kind: str):
    exc, words = FAULTS[kind]
    services = FakeServices()

    def failing_apply(state, *, cancel):
        yield from ()
        raise exc

    services.apply = failing_apply  # type: ignore[method-assign]
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        await apply(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)  # no log: no dialog, the error line
        assert words in text_of(screen, "#error")
        assert "Applying" not in text_of(screen, "#status")
        assert not screen.query_one("#apply", Button).disabled


@pytest.mark.parametrize("worker", ["preview", "apply"])
async def test_an_unexpected_fault_offers_the_way_back(worker: str):
    services = FakeServices()

    def preview(state, *, cancel):
        raise RuntimeError("something odd")

    def failing_apply(state, *, cancel):
        yield from ()
        raise RuntimeError("something odd")

    if worker == "preview":
        services.preview = preview  # type: ignore[method-assign]
    else:
        services.apply = failing_apply  # type: ignore[method-assign]
    async with open_step(Step.REVIEW, STATE, services) as (app, pilot):
        if worker == "apply":
            await apply(pilot)
        assert isinstance(app.screen, ErrorView)
        assert "unexpected RuntimeError: something odd" in text_of(app.screen,
                                                                   "#error-problem")
        await pilot.press("b")
        await settle(pilot)
    assert app.outcomes == [Back(STATE)]
