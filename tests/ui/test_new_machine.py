"""Pilot tests of the New machine route on fakes: Welcome, the Disk step, its Review, Done."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Button, Input, OptionList, RadioSet

from screens.wizard_app import make_app
from tests.ui.conftest import SIZE, next_enabled, open_step, press, settle, text, until
from tests.ui.every_step import back_and_quit, failing, known_fault, known_faults, way_back
from tests.ui.fakes import DISKS, PART, FakeServices
from wizard.common.errors import PartitionError, WizardError
from wizard.disk.disks import Chosen, Target
from wizard.flows.flow import Mode, Next, Step, WizardState
from wizard.settings.config import Settings

NEW = WizardState(mode=Mode.NEW_MACHINE)
ROOT, BLANK, SHARED = DISKS


def calls(services: FakeServices, name: str) -> list[object]:
    return [arg for called, arg in services.calls if called == name]


def chosen_for(target: Target) -> Chosen:
    disk, plan = FakeServices().plan_install(target)
    return Chosen(target, disk, plan)


def ready_for_review(target: Target) -> WizardState:
    return replace(NEW, settings=Settings(label=target.label, image="desk:1"),
                   new_disk=chosen_for(target))


async def type_label(pilot, label: str) -> None:
    pilot.app.screen.query_one("#label", Input).focus()
    await press(pilot, *label)


async def choose_disk(pilot, disk) -> None:
    screen = pilot.app.screen
    screen.query_one("#disks").focus()
    await press(pilot, "home", *["down"] * DISKS.index(disk))


async def choose_where(pilot, index: int) -> None:
    where = pilot.app.screen.query_one("#where", RadioSet)
    where.focus()
    await press(pilot, *["down"] * index, "enter")  # moves from the pressed button, then picks


# --- the whole route by keys ---

async def test_new_machine_route_by_keys_from_welcome_to_done():
    services = FakeServices(parts=[])  # no btrfs partition yet: nothing saved
    app = make_app(services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modes = app.screen.query_one("#modes", OptionList)
        assert str(modes.get_option_at_index(modes.highlighted).prompt).startswith("New machine")
        await press(pilot, "enter")
        await until(pilot, lambda: app.step is Step.DISK, "the Disk step")
        await settle(pilot)
        assert "2/6" in str(app.screen.query_one("#steps").render())
        await press(pilot, "down")  # the blank disk (the root's disk is first)
        await press(pilot, "tab", "tab", *"newbox")  # where (whole disk), then the label
        assert "new GPT partition table" in text(app.screen, "#plan")
        await press(pilot, "enter")  # Enter in the label: Next
        assert app.step is Step.IMAGE
        await press(pilot, "n")  # the host's images: nothing to resolve
        assert app.step is Step.TOPLAYER
        await press(pilot, "n")
        assert app.step is Step.REVIEW
        assert "Everything on /dev/sdb is lost" in text(app.screen, "#status")
        await press(pilot, *"/dev/sdb", "enter")  # typed in the focused confirmation
        await until(pilot, lambda: app.step is Step.DONE, "the Done step")
        await settle(pilot)
        done = app.screen.query_one("#text").query_one("Markdown")
        source = done.source
        assert 'Reboot and choose the disk, or "dockerboot newbox"' in source
        assert "The system you installed from stays in the firmware's boot menu" in source
    [state] = calls(services, "install")
    assert state.new_disk.target == Target("disk", "/dev/sdb", "newbox")
    assert state.settings == Settings(label="newbox", image="desk:1")
    assert calls(services, "apply") == [("initramfs", "toplayer", "bootloader", "config")]
    assert calls(services, "resolve") == []  # install copies the image: no subvolume here


# --- Welcome ---

async def test_welcome_highlights_new_machine_when_nothing_is_saved():
    async with open_step(Step.WELCOME, WizardState()) as (app, pilot):
        modes = app.screen.query_one("#modes", OptionList)
        prompts = [str(o.prompt) for o in modes.options]
        assert prompts == ["New machine: a disk, free space or an empty partition",
                           "Full setup"]
        assert modes.highlighted == 0
        await press(pilot, "enter")
    assert app.outcomes == [Next(NEW)]
    assert app.step is Step.DISK


async def test_welcome_keeps_full_setup_first_for_a_partition_chosen_beforehand():
    # ``dockerboot-wizard sandbox`` opens the wizard with its partition chosen.
    state = WizardState(settings=Settings(label=PART.label, image=""))
    async with open_step(Step.WELCOME, state) as (app, pilot):
        await press(pilot, "enter")
    assert app.outcomes[0].state.mode is Mode.FULL


async def test_welcome_with_a_saved_config_offers_new_machine_before_full_setup():
    saved = Settings(label=PART.label, image="desk:2")
    async with open_step(Step.WELCOME, WizardState(), FakeServices(saved={PART.label: saved})
                         ) as (app, pilot):
        modes = app.screen.query_one("#modes", OptionList)
        prompts = [str(o.prompt) for o in modes.options]
        assert prompts[-2].startswith("New machine") and prompts[-1] == "Full setup"
        assert modes.highlighted == 0  # the saved config's own first mode
        modes.highlighted = len(prompts) - 2
        await press(pilot, "enter")
    # Nothing of the saved configuration comes along: another partition is made.
    assert app.outcomes == [Next(NEW)]


# --- the Disk step ---

async def test_the_running_roots_disk_is_refused_in_one_line_and_next_stays_off():
    async with open_step(Step.DISK, NEW) as (app, pilot):
        screen = app.screen
        assert "Type the new btrfs partition's label" in text(screen, "#plan")
        await type_label(pilot, "newbox")
        plan = text(screen, "#plan")
        assert plan == ("Refused: /dev/sda holds the running system's root (/) — install to "
                        "another disk, or boot a live USB and install from it")
        assert not next_enabled(screen) and screen.query_one("#plan").has_class("error")
        await choose_disk(pilot, BLANK)
        assert "new GPT partition table" in text(screen, "#plan") and next_enabled(screen)
        await press(pilot, "n")
    [outcome] = app.outcomes
    assert outcome.state.new_disk.target == Target("disk", "/dev/sdb", "newbox")
    assert outcome.state.settings == Settings(label="newbox", image="")


async def test_a_label_the_boot_entry_cannot_carry_keeps_next_off():
    async with open_step(Step.DISK, NEW) as (app, pilot):
        await choose_disk(pilot, BLANK)
        await type_label(pilot, "my box")
        assert "invalid partition label 'my box'" in text(app.screen, "#plan")
        assert not next_enabled(app.screen)
        await press(pilot, "backspace", "backspace", "backspace", "backspace", "_", "b")
        assert next_enabled(app.screen)
        assert "btrfs \"my_b\"" in text(app.screen, "#plan")


async def test_free_space_and_an_empty_partition_of_a_shared_disk():
    services = FakeServices()
    async with open_step(Step.DISK, NEW, services) as (app, pilot):
        screen = app.screen
        await choose_disk(pilot, SHARED)
        await type_label(pilot, "newbox")
        assert "/dev/sdc1 (vfat \"EFI\", 512 MiB)" in text(screen, "#plan")  # destroyed
        await choose_where(pilot, 1)  # free space
        plan = text(screen, "#plan")
        assert "new: btrfs \"newbox\" in the free space (67.0 GiB)" in plan
        assert "reused: the ESP /dev/sdc1" in plan and next_enabled(screen)
        await choose_where(pilot, 1)  # from free space to an empty partition
        parts = screen.query_one("#parts", OptionList)
        assert parts.display and parts.option_count == 3
        assert text(screen, "#plan").startswith("Refused: /dev/sdc1 (vfat")  # not empty
        assert not next_enabled(screen)
        parts.focus()
        await press(pilot, "down", "down")
        assert "formatted: /dev/sdc3 as btrfs \"newbox\"" in text(screen, "#plan")
        assert next_enabled(screen)
        await press(pilot, "escape", "n")
    [outcome] = app.outcomes
    assert outcome.state.new_disk.target == Target("partition", "/dev/sdc3", "newbox")


async def test_coming_back_shows_the_choice_made_before():
    state = ready_for_review(Target("free", "/dev/sdc", "again"))
    async with open_step(Step.DISK, state) as (app, _pilot):
        screen = app.screen
        assert screen.selected_disk() == SHARED and screen.mode() == "free"
        assert screen.query_one("#label", Input).value == "again" and next_enabled(screen)


async def test_an_earlier_runs_partition_is_carried_on_not_formatted():
    made = replace(BLANK, pttype="gpt", parts=(
        DISKS[2].parts[0], replace(DISKS[2].parts[2], path="/dev/sdb2", fstype="btrfs",
                                   label="newbox")))
    services = FakeServices()
    services.disk_list = [ROOT, made, SHARED]
    async with open_step(Step.DISK, NEW, services) as (app, pilot):
        await choose_disk(pilot, BLANK)
        await type_label(pilot, "newbox")
        assert "LABEL=newbox is there already (an earlier run): nothing is formatted" in text(
            app.screen, "#plan")
        assert next_enabled(app.screen)


async def test_disk_back_and_quit_carry_the_state():
    state = ready_for_review(Target("disk", "/dev/sdb", "newbox"))
    await back_and_quit(Step.DISK, state, NEW)


@pytest.mark.parametrize("exc", known_faults(PartitionError("lsblk is not installed",
                                                             "install util-linux")))
async def test_disks_that_cannot_be_listed_are_a_known_fault(exc):
    async with known_fault(Step.DISK, NEW, "disks", exc) as (app, pilot):
        screen = app.screen
        await type_label(pilot, "newbox")
        assert "No disk found" in text(screen, "#plan") and not next_enabled(screen)
        delattr(app.services, "disks")  # the class's answer again
        screen.query_one("#disks").focus()
        await press(pilot, "r", "down")  # listed again; the blank disk
        assert not screen.query_one("#error").display and next_enabled(screen)


async def test_a_bug_listing_the_disks_offers_the_way_back():
    await way_back(Step.DISK, NEW, failing("disks"))


# --- the Review of a new machine ---

async def test_a_whole_disk_needs_its_name_typed_exactly():
    state = ready_for_review(Target("disk", "/dev/sdb", "newbox"))
    services = FakeServices()
    async with open_step(Step.REVIEW, state, services) as (app, pilot):
        screen = app.screen
        apply = screen.query_one("#apply", Button)
        sections = " ".join(str(w.render()) for w in screen.query("#sections Static"))
        assert "/dev/sdb: Blank SSD, 64.0 GiB, no partition table" in sections
        assert apply.disabled and screen.query_one("#confirm", Input).has_focus
        await press(pilot, *"/dev/sdc")  # a typo: another disk
        assert apply.disabled
        await press(pilot, "enter")
        assert calls(services, "install") == []
        await press(pilot, "backspace", "b")
        assert not apply.disabled
        await press(pilot, "enter")
        await until(pilot, lambda: app.step is Step.DONE, "Done")
    [outcome] = app.outcomes
    assert outcome.state.saved == outcome.state.settings and outcome.state.passwords == {}


async def test_a_partition_needs_no_typed_name():
    state = ready_for_review(Target("partition", "/dev/sdc3", "newbox"))
    async with open_step(Step.REVIEW, state) as (app, pilot):
        assert not app.screen.query_one("#confirm", Input).display
        assert "formatted: /dev/sdc3" in " ".join(
            str(w.render()) for w in app.screen.query("#sections Static"))
        await press(pilot, "a")
        await until(pilot, lambda: app.step is Step.DONE, "Done")


async def test_a_failed_install_shows_one_line_and_plans_again():
    state = ready_for_review(Target("disk", "/dev/sdb", "newbox"))
    services = FakeServices()
    services.fail_install = WizardError("the image is not in the new store",
                                        "check the registry's tags")
    async with open_step(Step.REVIEW, state, services) as (app, pilot):
        await press(pilot, *"/dev/sdb", "enter")
        await settle(pilot)
        if app.screen is not app.current:  # the log's tail in a dialog over the step
            await press(pilot, "escape")
        screen = app.screen
        assert text(screen, "#error") == ("Problem: the image is not in the new store\n"
                                          "How to fix: check the registry's tags")
        assert "The last Apply did not finish" in text(screen, "#status")
        assert screen.query_one("#confirm", Input).value == ""  # typed again for a new plan
        assert screen.query_one("#apply", Button).disabled and app.step is Step.REVIEW
    assert len(calls(services, "plan_install")) == 2


async def test_a_disk_refused_at_review_keeps_apply_off():
    state = ready_for_review(Target("disk", "/dev/sdb", "newbox"))
    error = PartitionError("/dev/sdb has mounted filesystems (/mnt)",
                           "unmount them (and swapoff), or choose another disk")
    async with known_fault(Step.REVIEW, state, "plan_install", error) as (app, _pilot):
        assert app.screen.query_one("#apply", Button).disabled


async def test_a_disk_for_another_machine_is_planned_so_and_done_says_where_it_boots():
    async with open_step(Step.DISK, NEW) as (app, pilot):
        await choose_disk(pilot, BLANK)
        await type_label(pilot, "vmdisk")
        app.screen.query_one("#elsewhere").focus()
        await press(pilot, "space")
        await until(pilot, lambda: next_enabled(app.screen), "the plan for another machine")
        await press(pilot, "escape", "n")
    [outcome] = app.outcomes
    target = outcome.state.new_disk.target
    assert target == Target("disk", "/dev/sdb", "vmdisk", here=False)
    state = replace(outcome.state, settings=Settings(label="vmdisk", image="desk:1"))
    async with open_step(Step.DONE, state) as (app, pilot):
        source = app.screen.query_one("#text").query_one("Markdown").source
    assert "Put the disk in the UEFI machine it is for" in source
    assert "Reboot and choose the disk" not in source
