"""Pilot tests of the Done step: the text, Finish (Enter), Quit, and no way back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Button, Markdown, Static

from screens.flows.done import DoneScreen
from tests.ui.conftest import open_step, press, until
from tests.ui.fakes import GENERATION, SETTINGS, TRY_EMERGENCY, FakeServices
from wizard.boot.bootloader import render_entries
from wizard.common.errors import WizardError
from wizard.flows.flow import Mode, Next, Outcome, Quit, Step, WizardState

APPLIED = WizardState(settings=SETTINGS, saved=SETTINGS)
"""What Review hands on after Apply."""


async def test_explains_next_boot_update_and_return_with_finish_focused():
    async with open_step(Step.DONE, state=APPLIED) as (app, _pilot):
        screen = app.screen
        assert isinstance(screen, DoneScreen)
        source = screen.query_one(Markdown).source
        assert "docker pull desk:1" in source
        assert "sudo dockerboot-wizard" in source
        assert "reset at\nevery boot" in source
        assert str(screen.query_one("#next", Button).label) == "Finish"
        assert screen.active_bindings["n"].binding.description == "Finish"
        assert app.focused is screen.query_one("#next", Button)


async def test_names_the_entry_title_render_entries_writes():
    block = render_entries(SETTINGS, GENERATION.record, GENERATION.previous)
    title = block.split('menuentry "', 1)[1].split('"', 1)[0]
    assert title == "Docker image desk:1"
    async with open_step(Step.DONE, state=APPLIED) as (app, _pilot):
        source = app.screen.query_one(Markdown).source
        assert f"**{title}**" in source
        assert "dockerboot desk:1" not in source


@pytest.mark.parametrize("key, focused, outcome", [
    ("enter", True, Next(APPLIED)),
    ("enter", False, Next(APPLIED)),  # the text focused: Enter still finishes
    # Review hands on a state with nothing unsaved: the one quit rule does not ask.
    ("q", True, Quit(APPLIED)),
    ("ctrl+q", True, Quit(APPLIED)),
])
async def test_enter_finishes_and_quit_does_not_ask_after_apply(key: str, focused: bool,
                                                                 outcome: Outcome):
    async with open_step(Step.DONE, state=APPLIED) as (app, pilot):
        if not focused:
            app.screen.set_focus(None)
        await press(pilot, key)
        assert not app.is_running
    assert app.outcomes == [outcome]


@pytest.mark.parametrize("bootloader, says, never", [
    ("", "rEFInd boots its default entry", "GRUB"),
    ("grub", "GRUB boots its default entry", "rEFInd"),
])
async def test_names_the_bootloader_that_boots_the_entries(bootloader: str, says: str,
                                                           never: str):
    st = replace(APPLIED, settings=replace(SETTINGS, bootloader=bootloader))
    async with open_step(Step.DONE, state=st) as (app, _pilot):
        source = app.screen.query_one(Markdown).source
    assert says in source and never not in source
    assert ("boots it by itself" in source) is (bootloader == "grub")


async def test_reconfigure_says_only_the_top_layer_changed():
    st = replace(APPLIED, mode=Mode.RECONFIGURE_TOPLAYER)
    async with open_step(Step.DONE, state=st) as (app, _pilot):
        assert "top layer was updated" in app.screen.query_one(Markdown).source


async def test_there_is_no_way_back_after_apply():
    async with open_step(Step.DONE, state=APPLIED) as (app, pilot):
        screen = app.screen
        assert not screen.query_one("#back", Button).display
        assert not any(b.binding.action == "back" for b in screen.active_bindings.values()
                       if b.binding.show)  # not in the footer
        await press(pilot, "b")
        assert app.outcomes == [] and app.screen is screen


def status_text(screen) -> str:
    return str(screen.query_one("#status", Static).render())


async def test_try_in_a_vm_shows_the_login_prompt_and_finish_still_works():
    services = FakeServices()
    async with open_step(Step.DONE, state=APPLIED, services=services) as (app, pilot):
        screen = app.screen
        assert screen.active_bindings["t"].binding.description == "Try in a VM"
        await press(pilot, "t")
        await until(pilot, lambda: "login prompt" in status_text(screen), "the try's result")
        assert services.calls[-1] == ("try_boot", SETTINGS.label)
        assert "Nothing on the partition changed" in status_text(screen)
        assert "reached the login prompt (desk login:) after 48s" in status_text(screen)
        lines = screen.work_log.lines
        assert "desk login:" in "\n".join(lines)
        assert any("fresh snapshot of desk:1" in line for line in lines)
        assert not screen.busy and not screen.query_one("#try", Button).disabled
        await press(pilot, "n")
        assert not app.is_running
    assert app.outcomes == [Next(APPLIED)]


@pytest.mark.parametrize("start", ["click", "key"])
@pytest.mark.parametrize("outcome", ["emergency mode", "no QEMU"])
async def test_a_try_that_did_not_reach_a_normal_system_says_so(outcome: str, start: str):
    """Emergency mode: the status says to fix it before rebooting; a try that
    cannot start: one problem line; either way Try is offered again."""
    services = FakeServices()
    if outcome == "emergency mode":
        services.try_result = TRY_EMERGENCY
    else:
        services.try_error = WizardError("qemu-system-x86_64 is not installed",
                                         "install the Debian package qemu-system-x86")
    async with open_step(Step.DONE, state=APPLIED, services=services) as (app, pilot):
        screen = app.screen
        await (pilot.click("#try") if start == "click" else press(pilot, "t"))
        error = screen.query_one("#error", Static)
        expected = ("emergency mode" if outcome == "emergency mode"
                    else "qemu-system-x86_64 is not installed")
        await until(pilot, lambda: not screen.busy
                    and expected in status_text(screen) + str(error.render()), "the try's end")
        if outcome == "emergency mode":
            assert "fix it before you reboot" in status_text(screen)
            assert any("mnt-missing.mount" in line for line in screen.work_log.lines)
        assert not screen.query_one("#try", Button).disabled


async def test_a_running_try_can_be_cancelled_and_finish_waits_for_it():
    services = FakeServices()
    services.block_try = True
    async with open_step(Step.DONE, state=APPLIED, services=services) as (app, pilot):
        screen = app.screen
        await pilot.press("t")
        await until(pilot, lambda: screen.busy, "the try to run")
        assert screen.query_one("#next", Button).disabled  # Finish waits for it
        await pilot.press("escape")
        await until(pilot, lambda: not screen.busy, "the cancel")
        assert "Cancelled" in str(screen.query_one("#error", Static).render())
