
"""Pilot tests of the first screens: welcome, partition, docker daemon, images."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Button, DataTable, Input, OptionList, ProgressBar, Static

from screens.wizard_app import make_app
from tests.ui.conftest import SIZE, settle
from tests.ui.fakes import NEW_DISK, OTHER, OVERLAY_DOCKER, PART, PART_MOUNTED, FakeServices
from wizard.config import Settings
from wizard.errors import DockerError
from wizard.flow import Mode, Step, WizardState
from wizard.partitions import BlockEvent, Partition

CHOSEN = WizardState(settings=Settings(label=PART.label, image=""))


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def next_enabled(app) -> bool:
    return not app.screen.query_one("#next", Button).disabled


# --- welcome ---

async def test_welcome_without_saved_config_offers_full_setup_only():
    app = make_app(FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modes = app.screen.query_one("#modes", OptionList)
        assert modes.option_count == 1
        assert "Full setup" in str(modes.get_option_at_index(0).prompt)
        assert "No saved configuration" in text(app, "#found")
        await pilot.press("enter")
        await settle(pilot)
        assert app.step is Step.PARTITION and app.state.saved is None


async def test_welcome_shows_saved_config_and_unreadable_ones():
    saved = Settings(label=PART.label, image="desk:2", hostname="box")
    app = make_app(FakeServices(saved={PART.label: saved, OTHER.label: "broken"}))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        found = text(app, "#found")
        assert "LABEL=dbw-fake: boots desk:2, hostname box" in found
        assert "Unreadable config on data: config is not valid TOML" in found
        prompts = [str(o.prompt) for o in app.screen.query_one("#modes", OptionList).options]
        assert prompts[0].startswith("Reconfigure top layer") and prompts[-1] == "Full setup"
        await pilot.press("n")  # the highlighted first option
        await settle(pilot)
        assert app.state.mode is Mode.RECONFIGURE_TOPLAYER and app.state.settings == saved


async def test_full_setup_takes_the_saved_config_of_the_chosen_partition_only():
    mine = Settings(label=OTHER.label, image="mine:1")
    theirs = Settings(label=PART.label, image="theirs:1")
    prefilled = WizardState(settings=mine)
    app = make_app(FakeServices(saved={PART.label: theirs, OTHER.label: mine}),
                   state=prefilled)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        modes = app.screen.query_one("#modes", OptionList)
        modes.highlighted = modes.option_count - 1  # Full setup
        await pilot.press("n")
        await settle(pilot)
        assert app.state.mode is Mode.FULL
        assert app.state.saved == mine and app.state.settings == mine


# --- partition ---

async def test_partition_table_lists_udev_partitions():
    app = make_app(FakeServices(), start_at=Step.PARTITION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#partitions", DataTable)
        assert [str(c.label) for c in table.columns.values()] == [
            "Label", "UUID", "Size", "Device", "Docker data-root", "Mountpoint"]
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert rows == [
            [PART.label, PART.uuid, "4.0G", PART.device, "yes", "/mnt/dbw (+1)"],
            ["data", OTHER.uuid, "8.0G", "/dev/sdb1", "no", "-"]]


async def test_partition_table_refreshes_on_hotplug():
    fake = FakeServices()
    app = make_app(fake, start_at=Step.PARTITION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#partitions", DataTable)
        assert table.row_count == 2 and len(fake.watchers) == 1
        fake.hotplug(BlockEvent("add", NEW_DISK.device, NEW_DISK.label, True),
                     [PART_MOUNTED, OTHER, NEW_DISK])
        await settle(pilot)
        assert table.row_count == 3 and str(table.get_row_at(2)[0]) == "usb-stick"
        assert "udev: add usb-stick" in text(app, "#status")
        fake.hotplug(BlockEvent("remove", OTHER.device, "", False), [PART_MOUNTED, NEW_DISK])
        await settle(pilot)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == [
            PART.label, "usb-stick"]
        await pilot.press("n")
        await settle(pilot)
        assert app.state.settings.label == PART.label  # the cursor stayed on its partition
        assert fake.watchers == []  # the udev watch stops with the screen


async def test_partition_without_label_cannot_be_chosen():
    bare = Partition("", "7777-8888", "/dev/sdd1", 1 << 30, (8, 49))
    app = make_app(FakeServices(parts=[bare]), start_at=Step.PARTITION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not next_enabled(app)
        assert "btrfs filesystem label /dev/sdd1 NAME" in text(app, "#status")
        await pilot.press("n")
        await settle(pilot)
        assert app.step is Step.PARTITION


# --- docker daemon ---

async def test_docker_problem_disables_next_until_fixed():
    fake = FakeServices(docker=OVERLAY_DOCKER)
    app = make_app(fake, start_at=Step.DOCKER, state=CHOSEN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not next_enabled(app)
        problem = text(app, "#problem")
        assert "overlay2 storage driver" in problem
        assert 'Fix: put {"storage-driver": "btrfs"} in /etc/docker/daemon.json' in problem
        assert "✘ storage driver: overlay2" in text(app, "#checks")
        await pilot.press("n")
        await settle(pilot)
        assert app.step is Step.DOCKER
        fake.docker = fake.docker.__class__(reachable=True, driver="btrfs",
                                            data_root="/mnt/dbw/docker", docker_path="docker")
        await pilot.press("r")
        await settle(pilot)
        assert next_enabled(app) and "All checks passed" in text(app, "#problem")
        assert fake.calls.count(("docker_status", PART.label)) == 2
        await pilot.press("n")
        await settle(pilot)
        assert app.step is Step.IMAGE and app.state.settings.docker_path == "docker"


async def test_docker_unreachable_and_missing_partition_are_explained():
    from wizard.services import DockerStatus
    down = DockerStatus(reachable=False, problem=DockerError("cannot reach the Docker daemon",
                                                             "start dockerd"))
    app = make_app(FakeServices(docker=down), start_at=Step.DOCKER, state=CHOSEN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "✘ daemon reachable" in text(app, "#checks")
        assert "Fix: start dockerd" in text(app, "#problem") and not next_enabled(app)
    gone = WizardState(settings=Settings(label="unplugged", image=""))
    app = make_app(FakeServices(), start_at=Step.DOCKER, state=gone)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "no btrfs partition labelled unplugged" in text(app, "#problem")
        assert not next_enabled(app)


# --- images ---

async def test_image_filter_narrows_the_table():
    app = make_app(FakeServices(), start_at=Step.IMAGE, state=CHOSEN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#images", DataTable)
        assert table.row_count == 3
        await pilot.press("slash")
        await pilot.press(*"app")  # typing n/b/q/p here must not navigate
        await settle(pilot)
        assert table.row_count == 1 and str(table.get_row_at(0)[0]) == "localhost:5000/ns/app:1.0"
        await pilot.press("enter", "n")  # leave the filter, then Next
        await settle(pilot)
        assert app.state.settings.image == "localhost:5000/ns/app:1.0"


async def test_selected_image_shows_its_subvolume_or_the_resolve_error():
    fake = FakeServices(unbootable={"desk:2": "image desk:2 has no layer cache-id"})
    app = make_app(fake, start_at=Step.IMAGE, state=CHOSEN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "desk:1 boots from subvolume /mnt/dbw/docker/btrfs/subvolumes/desk:1-top" in \
            text(app, "#resolved")
        assert next_enabled(app)
        await pilot.press("down")
        await settle(pilot)
        shown = text(app, "#resolved")
        assert "✘ desk:2 cannot boot: image desk:2 has no layer cache-id" in shown
        assert not next_enabled(app)
        await pilot.press("n")
        await settle(pilot)
        assert app.step is Step.IMAGE


async def test_pull_shows_progress_and_lists_the_new_image():
    fake = FakeServices()
    app = make_app(fake, start_at=Step.IMAGE, state=CHOSEN)
    progress_seen = []
    async with app.run_test(size=SIZE, message_hook=lambda m: progress_seen.append(m)) as pilot:
        await settle(pilot)
        await pilot.press("p", *"new:1", "enter")
        await settle(pilot)
        bar = app.screen.query_one("#progress", ProgressBar)
        assert (bar.progress, bar.total) == (100, 100)
        assert ("pull", "new:1") in fake.calls
        assert "Pulled new:1." in text(app, "#pullstatus")
        # the hook sees a bubbling message once per node it reaches: count each once
        unique = {id(m): m for m in progress_seen if type(m).__name__ == "PullProgressed"}
        events = [m.event for m in unique.values()]
        assert [getattr(e, "current", None) for e in events] == [None, 10, 60, 100]
        table = app.screen.query_one("#images", DataTable)
        assert table.row_count == 4
        await pilot.press("n")
        await settle(pilot)
        assert app.state.settings.image == "new:1"


async def test_escape_cancels_a_running_pull():
    fake = FakeServices()
    fake.hold_pull = True
    app = make_app(fake, start_at=Step.IMAGE, state=CHOSEN)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("p", *"slow:1", "enter")
        await pilot.pause()
        assert fake.pull_waiting.wait(5)
        assert app.screen.pulling and not next_enabled(app)
        await pilot.press("escape")
        await settle(pilot)
        assert not app.screen.pulling
        assert "pull cancelled" in text(app, "#error")
        assert app.screen.query_one("#images", DataTable).row_count == 3
        assert app.screen.query_one("#pull", Input).value == "slow:1"


async def test_another_image_drops_the_initramfs_staged_for_the_first():
    staged = replace(CHOSEN, settings=replace(CHOSEN.settings, image="desk:1"),
                     staged_initramfs="boot_docker/.build-desk1")
    for presses, image, kept in (((), "desk:1", "boot_docker/.build-desk1"),
                                 (("down",), "desk:2", None)):
        app = make_app(FakeServices(), start_at=Step.IMAGE, state=staged)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(*presses, "n")
            await settle(pilot)
            assert app.state.settings.image == image
            assert app.state.staged_initramfs == kept
