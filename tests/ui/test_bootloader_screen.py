"""Pilot tests of the Boot entry step on fakes: the preview, another path, outcomes, faults."""

from __future__ import annotations

from dataclasses import replace
from threading import Event

from textual.widgets import Button, Input, Static

from screens.boot.bootloader import BootloaderScreen
from screens.common.base import ConfirmScreen, ErrorView
from tests.ui.conftest import open_step, settle, text
from tests.ui.every_step import back_and_quit
from tests.ui.fakes import SETTINGS, FakeServices
from wizard.flows.flow import Back, Next, Quit, Step, WizardState

CLEAN = WizardState(settings=SETTINGS, saved=SETTINGS)
"""Saved == settings: nothing in the state itself is unsaved."""
AT_ESP = replace(CLEAN, settings=replace(SETTINGS, esp="/esp"))


async def test_the_preview_is_the_block_apply_writes_and_the_review_shows():
    # A new user's first look: the step must show what apply writes (generation 3 of the
    # fake partition, dockerboot.generation=3), not the old flat boot_docker/vmlinuz entry.
    services = FakeServices()
    async with open_step(Step.BOOTLOADER, state=CLEAN, services=services) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, BootloaderScreen)
        shown_entry = text(screen, "#entry")
    written = services._plan(CLEAN).refind_block  # what apply's plan writes
    assert written is not None and shown_entry == written
    assert "loader boot_docker/gen/3/vmlinuz" in shown_entry
    assert "dockerboot.generation=3" in shown_entry
    review = {s.title: s.body for s in services.preview(CLEAN, cancel=Event()).sections}
    assert review["rEFInd entries (the block written into refind.conf)"] == written.rstrip("\n")


async def test_shows_where_the_entry_goes_and_the_diff_then_next():
    async with open_step(Step.BOOTLOADER, state=CLEAN) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, BootloaderScreen)
        assert "/boot/efi/EFI/refind/refind.conf" in text(screen, "#where")
        assert "volume dbw-fake" in text(screen, "#entry")
        diff = text(screen, "#diff")
        assert "+menuentry" in diff and "docker_image=desk:1" in diff
        assert not screen.query_one("#next", Button).disabled
        await pilot.press("n")
        await settle(pilot)
        assert app.outcomes == [Next(CLEAN)]
        assert app.screen.STEP is Step.REVIEW


async def test_not_found_then_another_path_is_looked_up_and_handed_on():
    services = FakeServices()
    services.refind_missing = True
    async with open_step(Step.BOOTLOADER, state=CLEAN, services=services) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, BootloaderScreen)  # the user's problem: no dialog
        assert "Problem: no mounted ESP found" in text(screen, "#error")
        assert "How to fix: mount it or give its path" in text(screen, "#error")
        assert "type the ESP directory or refind.conf path below" in text(screen, "#where")
        assert screen.query_one("#next", Button).disabled
        await pilot.press("n")
        await pilot.pause()
        assert app.outcomes == []  # nothing found: Next is unavailable
        await pilot.press("o")
        await pilot.press(*"/esp", "enter")
        await settle(pilot)
        assert not screen.query_one("#error", Static).display
        assert "/esp/EFI/refind/refind.conf" in text(screen, "#where")
        assert ("find_refind", ("/esp", None)) in services.calls
        await pilot.press("escape", "n")
        await settle(pilot)
        assert app.outcomes == [Next(AT_ESP)]
        assert app.state == AT_ESP


async def test_back_carries_the_path_given():
    async with open_step(Step.BOOTLOADER, state=CLEAN) as (app, pilot):
        await pilot.press("o", *"/esp", "enter")
        await settle(pilot)
        await pilot.press("escape", "b")
        await settle(pilot)
        assert app.outcomes == [Back(AT_ESP)]
        assert app.screen.STEP is Step.INITRAMFS


async def test_back_and_quit_carry_the_state():
    await back_and_quit(Step.BOOTLOADER, WizardState(settings=SETTINGS), CLEAN)


async def test_quit_asks_first_when_a_typed_path_would_be_lost():
    async with open_step(Step.BOOTLOADER, state=CLEAN) as (app, pilot):
        screen = app.screen
        await pilot.press("o", *"/esp")  # typed, not submitted
        await pilot.press("escape", "q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and app.outcomes == []
        assert screen.query_one("#override", Input).value == "/esp"
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert app.outcomes == [Quit(CLEAN)]  # the typed path was never taken


async def test_unexpected_fault_offers_the_way_back():
    services = FakeServices()

    def broken(settings):
        raise RuntimeError("something odd")

    services.find_refind = broken  # type: ignore[method-assign]
    async with open_step(Step.BOOTLOADER, state=CLEAN, services=services) as (app, pilot):
        view = app.screen
        assert isinstance(view, ErrorView)
        assert "unexpected RuntimeError: something odd" in text(view, "#error-problem")
        assert "Back to the previous step" in str(view.query_one("#error-back", Button).label)
        await pilot.press("escape")  # stay: the error line keeps the problem
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, BootloaderScreen)
        assert "unexpected RuntimeError" in text(screen, "#error")
        assert screen.query_one("#next", Button).disabled
        screen.look_up()
        await settle(pilot)
        await pilot.press("b")  # the dialog again; this time back
        await settle(pilot)
        assert app.screen.STEP is Step.INITRAMFS


async def test_g_switches_to_the_images_grub_and_back():
    # The choice the Bootloader step offers: what each found, Secure Boot, then GRUB's entries.
    async with open_step(Step.BOOTLOADER, state=CLEAN) as (app, pilot):
        screen = app.screen

        async def switch(to: str) -> str:
            await pilot.press("g")
            await settle(pilot)
            assert screen.state.settings.bootloader == to
            return text(screen, "#entry")

        assert "Secure Boot: on" in text(screen, "#where")
        assert "GRUB: the image carries debian's" in text(screen, "#where")
        grub_cfg = await switch("grub")
        assert "linux /boot_docker/gen/3/vmlinuz" in grub_cfg and "save_env" in grub_cfg
        assert "grub.cfg: /boot/efi/EFI/dockerboot/grub.cfg" in text(screen, "#where")
        sd = await switch("systemd-boot")  # the next one: its entries, the kernels copied
        assert "linux /EFI/dockerboot/dbw-fake/3/vmlinuz" in sd and "version 3" in sd
        assert "entries: /boot/efi/loader/entries" in text(screen, "#where")
        assert "volume dbw-fake" in await switch("refind")
        await switch("grub")
        await pilot.press("n")
        await settle(pilot)
    assert app.outcomes[-1].state.settings.bootloader == "grub"
