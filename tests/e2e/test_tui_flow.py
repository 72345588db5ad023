"""The whole wizard driven by Pilot against the real sandbox, then a QEMU boot of what it wrote.

What ``dockerboot-wizard sandbox`` does, step by step, with no fake anywhere:
the product's sandbox (loop GPT disk, real udevd, a private dockerd with the
btrfs driver, the debootstrapped sample image) and ``RealServices``.  Keys
go in through Pilot: Full setup → partition (found by udev, by label) →
Docker checks → image (resolved to its subvolume) → top layer (hostname and
a user typed into the form) → initramfs (built in a container of the image)
→ bootloader (refind.conf diff) → review → Apply → Done.  Then the disk is
reconfigured the way a user comes back later: the wizard finds the saved
config, "Reconfigure top layer" changes the hostname and writes only the
top layer (kernel, initramfs and refind.conf keep their bytes and mtimes).
Then the disk is booted through OVMF and rEFInd, and the console must show
the reconfigured hostname and the user typed into the TUI, on a fresh rw
layer of the sample image.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, OptionList, Static, TabbedContent

from screens.boot.bootloader import BootloaderScreen
from screens.boot.initramfs import InitramfsScreen
from screens.disk.partition import PartitionScreen
from screens.flows.done import DoneScreen
from screens.flows.review import ReviewScreen
from screens.flows.welcome import WelcomeScreen
from screens.store.docker_daemon import DockerDaemonScreen
from screens.store.images import ImagesScreen
from screens.toplayer.toplayer import ToplayerScreen
from screens.wizard_app import make_app
from wizard.boot import generations
from wizard.flows.flow import Mode, Step, WizardState
from wizard.flows.services import RealServices
from wizard.sandbox import SAMPLE_IMAGE, qemu, sandbox
from wizard.settings import config

# Its Welcome lists the setups of every btrfs partition of the machine.
pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.machine_wide]

SIZE = (100, 32)
HOSTNAME = "tui-sandbox"
PASSWORD = "typed in the TUI"
RECONFIGURED = "tui-reconfigured"


async def until(pilot, screen_type: type, ready: Callable = lambda s: True,
                timeout: float = 600) -> object:
    """Pump the app until a ``screen_type`` is on top and ``ready``; real work takes seconds."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        screen = app.screen
        if isinstance(screen, screen_type) and ready(screen):
            return screen
    shown = app.screen.query("#status, #problem, #error").results(Static)
    status = [str(w.render()) for w in shown]
    raise AssertionError(f"{screen_type.__name__} not ready after {timeout:.0f}s; on screen: "
                         f"{type(app.screen).__name__} {status}")


async def type_into(pilot, selector: str, text: str) -> None:
    await pilot.click(selector)
    await pilot.press(*("space" if c == " " else c for c in text))  # keys, not characters


async def test_full_setup_in_the_tui_then_boot(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # The smaller image without systemd: box.settings() boots it with the fast test init.
    with sandbox(workdir=tmp_path / "box", systemd=False) as box:
        monkeypatch.setenv("DOCKER_HOST", box.docker_host)
        conf_before = box.machine.refind_conf.read_bytes()
        app = make_app(RealServices(), state=WizardState(settings=box.settings()))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, WelcomeScreen, lambda s: s.found is not None)
            assert app.screen.found == []  # a new disk: nothing saved yet
            await pilot.press("enter")  # the only option: Full setup

            screen = await until(pilot, PartitionScreen, lambda s: bool(s.rows))
            chosen = screen.selected()
            assert chosen is not None and chosen.label == box.label  # from udev
            table = screen.query_one("#partitions", DataTable)
            row = [str(c) for c in table.get_row_at(table.cursor_row)]
            assert row[0] == box.label and row[4] == "yes"  # holds the Docker data-root
            await pilot.press("n")

            screen = await until(pilot, DockerDaemonScreen, lambda s: s.status is not None)
            assert screen.status.problem is None, screen.status.problem
            assert screen.status.driver == "btrfs" and screen.status.docker_path == "docker"
            await pilot.press("n")

            screen = await until(pilot, ImagesScreen, lambda s: SAMPLE_IMAGE in s.resolved)
            assert screen.selected().ref == SAMPLE_IMAGE
            assert "boots from subvolume" in str(screen.query_one("#resolved", Static).render())
            await pilot.press("n")

            screen = await until(pilot, ToplayerScreen)
            screen.query_one("#tabs", TabbedContent).active = "users-tab"
            await pilot.pause()
            await type_into(pilot, "#hostname", HOSTNAME)
            await type_into(pilot, "#user-name", "alice")
            await type_into(pilot, "#user-pw", PASSWORD)
            await type_into(pilot, "#user-pw2", PASSWORD)
            await pilot.click("#add-user")
            await pilot.pause()
            assert "alice" in str(screen.query_one("#users", Static).render())
            assert screen.passwords == {"alice": PASSWORD}  # typed twice, masked
            screen.set_focus(None)
            await pilot.press("n")

            screen = await until(pilot, InitramfsScreen,
                                 lambda s: s.state.staged_initramfs is not None)
            assert not (box.machine.workdir / "mnt/boot_docker/gen").exists()
            await pilot.press("n")

            screen = await until(pilot, BootloaderScreen, lambda s: s.found is not None)
            await pilot.press("n")

            screen = await until(pilot, ReviewScreen, lambda s: s.plan is not None)
            review_text = " ".join(str(w.render()) for w in screen.query("#sections .title"))
            assert "etc/hostname" in review_text and "refind.conf" in review_text
            await pilot.press("a")

            await until(pilot, DoneScreen)
            assert app.step is Step.DONE and app.state.mode is Mode.FULL
            await pilot.press("enter")
            await pilot.pause()

        top = box.machine.workdir / "mnt"
        saved = config.load(top)
        assert saved is not None and saved.hostname == HOSTNAME and saved.users == ("alice",)
        assert PASSWORD not in (top / "boot_docker/dockerboot-wizard.toml").read_text()
        newest = generations.load(top / "boot_docker").newest
        assert newest is not None and newest.number == 1
        assert (top / "boot_docker" / newest.loader).stat().st_size > 0
        assert not list((top / "boot_docker").glob(".build-*"))  # the staged pair moved in
        conf = box.machine.refind_conf.read_bytes()
        assert conf.startswith(conf_before) and f"volume {box.label}".encode() in conf

        # Later, `sudo dockerboot-wizard` again: the saved config is found and
        # "Reconfigure top layer" writes the top layer (and the config) only.
        boot_files = {p: (p.stat().st_mtime_ns, p.read_bytes())
                      for p in (top / "boot_docker" / newest.loader,
                                top / "boot_docker" / newest.initrd_path)}
        app = make_app(RealServices())
        async with app.run_test(size=SIZE) as pilot:
            screen = await until(pilot, WelcomeScreen, lambda s: s.found is not None)
            index = [label for label, _ in screen.found].index(box.label)
            modes = screen.query_one("#modes", OptionList)
            ids = [modes.get_option_at_index(i).id for i in range(modes.option_count)]
            modes.highlighted = ids.index(f"{index}:{Mode.RECONFIGURE_TOPLAYER.value}")
            await pilot.press("enter")

            screen = await until(pilot, ToplayerScreen)
            screen.query_one("#tabs", TabbedContent).active = "users-tab"
            await pilot.pause()
            await pilot.click("#hostname")
            await pilot.press("end", "ctrl+u")
            await type_into(pilot, "#hostname", RECONFIGURED)
            screen.set_focus(None)
            await pilot.press("n")

            screen = await until(pilot, ReviewScreen, lambda s: s.plan is not None)
            assert screen.steps == ("toplayer", "config")
            await pilot.press("a")
            await until(pilot, DoneScreen)
            await pilot.press("enter")
            await pilot.pause()
        assert config.load(top).hostname == RECONFIGURED
        assert (top / "boot_docker/toplayer/etc/hostname").read_text() == RECONFIGURED + "\n"
        for path, (mtime, data) in boot_files.items():  # no rebuild, nothing reinstalled
            assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, data), path
        assert box.machine.refind_conf.read_bytes() == conf

        serial = box.boot()
    facts = qemu.facts(serial)
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["root_subvol"] == "/docker_rwlayer" and facts["root_rw"] == "rw"
    assert facts["hostname"] == RECONFIGURED
    assert facts["user"].startswith("alice:")
    assert re.match(r"^\$(y|6|gy|7)\$", facts["user_hash"]), facts["user_hash"]
    assert facts["image_marker"] == "sandbox sample image (initramfs-tools)"
    assert f"docker_image={SAMPLE_IMAGE}" in facts["cmdline"]
