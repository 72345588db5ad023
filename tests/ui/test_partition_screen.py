"""Pilot tests of the Partition step on fakes: the table, hotplug, the choice, faults."""

from __future__ import annotations

import errno
import os
from dataclasses import replace

import pytest
from textual.widgets import DataTable

from tests.ui.conftest import next_enabled, open_step, press, text
from tests.ui.every_step import back_and_quit, failing, known_fault, known_faults, way_back
from tests.ui.fakes import NEW_DISK, OTHER, PART, PART_MOUNTED, FakeServices
from wizard.common.errors import PartitionError
from wizard.disk.partitions import BlockEvent, Partition
from wizard.flows.flow import Next, Step, WizardState
from wizard.settings.config import Settings

START = WizardState()
CHOSEN = WizardState(settings=Settings(label=PART.label, image=""))


def labels(screen) -> list[str]:
    table = screen.query_one("#partitions", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def test_the_table_lists_the_btrfs_partitions_udev_knows():
    async with open_step(Step.PARTITION, START) as (app, _pilot):
        table = app.screen.query_one("#partitions", DataTable)
        assert [str(c.label) for c in table.columns.values()] == [
            "Label", "UUID", "Size", "Device", "Docker data-root", "Mountpoint"]
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows == [
            [PART.label, PART.uuid, "4.0G", PART.device, "yes", "/mnt/dbw (+1)"],
            ["data", OTHER.uuid, "8.0G", "/dev/sdb1", "no", "-"]]


@pytest.mark.parametrize("key", ["n", "enter"])
async def test_next_sets_the_label_of_the_highlighted_partition(key: str):
    async with open_step(Step.PARTITION, START) as (app, pilot):
        await press(pilot, key)
    assert app.outcomes == [Next(CHOSEN)]
    assert app.step is Step.DOCKER


async def test_next_keeps_the_other_settings_and_starts_on_the_chosen_label():
    before = WizardState(settings=Settings(label=OTHER.label, image="desk:1", hostname="box"))
    async with open_step(Step.PARTITION, before) as (app, pilot):
        assert app.screen.query_one("#partitions", DataTable).cursor_row == 1
        await press(pilot, "up", "n")
    assert app.outcomes == [Next(replace(before, settings=replace(before.settings,
                                                                  label=PART.label)))]


async def test_the_table_follows_hotplug_and_keeps_the_cursor():
    services = FakeServices()
    async with open_step(Step.PARTITION, START, services) as (app, pilot):
        assert labels(app.screen) == [PART.label, "data"] and len(services.watchers) == 1
        services.hotplug(BlockEvent("add", NEW_DISK.device, NEW_DISK.label, True),
                         [PART_MOUNTED, OTHER, NEW_DISK])
        await press(pilot)
        assert labels(app.screen) == [PART.label, "data", "usb-stick"]
        assert "udev: add usb-stick" in text(app.screen, "#status")
        services.hotplug(BlockEvent("remove", OTHER.device, "", False), [PART_MOUNTED, NEW_DISK])
        await press(pilot)
        assert labels(app.screen) == [PART.label, "usb-stick"]
        await press(pilot, "n")
        assert services.watchers == []  # the udev watch stops with the screen
    assert app.outcomes == [Next(CHOSEN)]  # the cursor stayed on its partition


@pytest.mark.parametrize("label, why", [
    ("", "btrfs filesystem label /dev/sdd1 NAME"),
    ("my disk", "invalid partition label 'my disk': the boot entry cannot carry it"),
])
async def test_a_partition_the_boot_entry_cannot_name_cannot_be_chosen(label: str, why: str):
    bad = Partition(label, "7777-8888", "/dev/sdd1", 1 << 30, (8, 49))
    async with open_step(Step.PARTITION, START, FakeServices(parts=[bad])) as (app, pilot):
        assert why in text(app.screen, "#status") and not next_enabled(app.screen)
        await press(pilot, "n")
        assert app.outcomes == [] and app.step is Step.PARTITION


async def test_no_btrfs_partition_says_how_to_make_one():
    async with open_step(Step.PARTITION, START, FakeServices(parts=[])) as (app, _pilot):
        assert "No btrfs partition: create one with `mkfs.btrfs" in text(app.screen, "#status")
        assert not next_enabled(app.screen)


async def test_back_and_quit_carry_the_state():
    await back_and_quit(Step.PARTITION, CHOSEN, START)


@pytest.mark.parametrize("exc", known_faults(PartitionError("udev does not answer",
                                                            "start systemd-udevd")))
async def test_a_list_that_fails_is_shown_and_r_retries(exc: Exception):
    async with known_fault(Step.PARTITION, START, "partitions", exc, retry="r") as (app, _):
        assert labels(app.screen) == [] and not next_enabled(app.screen)


async def test_one_unreadable_partition_keeps_the_others():
    services = FakeServices()

    def has_data_root(part: Partition) -> bool:
        if part.label == "data":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return True

    services.has_data_root = has_data_root  # type: ignore[method-assign]
    async with open_step(Step.PARTITION, START, services) as (app, _pilot):
        assert labels(app.screen) == [PART.label, "data"]
        assert "data: Input/output error" in text(app.screen, "#status")
        assert "r retries" in text(app.screen, "#status") and next_enabled(app.screen)


async def test_a_bug_in_the_list_offers_the_way_back():
    await way_back(Step.PARTITION, CHOSEN, failing("partitions"))
