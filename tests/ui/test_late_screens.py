"""Pilot tests of the later screens, each pushed on a tiny host App with fake services."""

from __future__ import annotations

import json
from collections.abc import Callable

from rich.syntax import Syntax
from textual.app import App
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, OptionList, Static, TextArea, Tree

from screens.toplayer import WARNING, ToplayerScreen
from tests.ui.fakes_late import SETTINGS, FakeLateServices
from wizard.flow import WizardState

SIZE = (100, 32)


class Host(App[None]):
    """Pushes one screen and records what it dismisses with."""

    def __init__(self, make: Callable[[], Screen]) -> None:
        super().__init__()
        self.make = make
        self.outcomes: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(self.make(), self.outcomes.append)


def state(**changes) -> WizardState:
    return WizardState(settings=SETTINGS).with_changes(**changes)


def plain(widget: Static) -> str:
    content = widget.content
    return content.code if isinstance(content, Syntax) else str(content)


def text_of(screen: Screen, selector: str) -> str:
    return plain(screen.query_one(selector, Static))


# --- toplayer ---

async def _toplayer(pilot_app: Host):
    await pilot_app.workers.wait_for_complete()


async def test_toplayer_warning_tree_and_secret_file_hidden():
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert text_of(screen, "#warning") == WARNING
        tree = screen.query_one("#files", Tree)
        leaves = {n.data for n in tree.root.children[0].children}
        assert {"etc/hostname", "etc/shadow", "etc/fstab"} <= leaves
        shadow = next(n for n in tree.root.children[0].children if n.data == "etc/shadow")
        tree.select_node(shadow)
        await pilot.pause()
        editor = screen.query_one("#editor", TextArea)
        assert editor.disabled and "secret" not in editor.text
        assert "password hashes, not shown" in text_of(screen, "#path")


async def test_toplayer_keep_file_shows_diff_against_image_first():
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        tree = screen.query_one("#files", Tree)
        node = next(n for n in tree.root.children[0].children if n.data == "etc/hostname")
        tree.select_node(node)
        await pilot.pause()
        editor = screen.query_one("#editor", TextArea)
        assert editor.text == "old\n"
        editor.load_text("mybox\n")
        await pilot.press("ctrl+s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        diff = text_of(screen, "#diff")
        assert "-debian" in diff and "+mybox" in diff  # against the image's own file
        assert "etc/hostname" not in screen.edits  # not kept before the diff was seen
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.edits["etc/hostname"] == b"mybox\n"
        await pilot.press("escape", "n")
        await pilot.pause()
    assert app.outcomes[0].state.toplayer_edits == {"etc/hostname": b"mybox\n"}


async def test_toplayer_fstab_helper_merges_line_into_image_fstab():
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        options = screen.query_one("#fstab-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "LABEL=dbw-fake /var/lib/docker btrfs subvol=docker 0 0"
        assert "LABEL=dbw-fake /home btrfs subvol=home,nofail 0 0" in ids
        options.highlighted = 0
        options.action_select()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.edits["etc/fstab"] == IMAGE_FSTAB_PLUS
        assert "+LABEL=dbw-fake /var/lib/docker" in text_of(screen, "#fstab-diff")


IMAGE_FSTAB_PLUS = (b"# image fstab\nproc /proc proc defaults 0 0\n"
                    b"LABEL=dbw-fake /var/lib/docker btrfs subvol=docker 0 0\n")


async def test_toplayer_bad_hostname_blocks_next():
    app = Host(lambda: ToplayerScreen(state(), FakeLateServices()))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        screen.query_one("#hostname", Input).value = "bad_host!"
        await pilot.pause()
        assert "invalid hostname" in text_of(screen, "#hostname-error")
        screen.set_focus(None)
        await pilot.press("n")
        await pilot.pause()
        assert app.outcomes == []
        screen.query_one("#hostname", Input).value = "desk1"
        screen.set_focus(None)
        await pilot.press("n")
        await pilot.pause()
    assert app.outcomes[0].state.settings.hostname == "desk1"


async def test_toplayer_users_password_mismatch_then_added():
    app = Host(lambda: ToplayerScreen(state(), FakeLateServices()))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        screen.query_one("#user-name", Input).value = "alice"
        screen.query_one("#user-pw", Input).value = "s3cret-pw"
        screen.query_one("#user-pw2", Input).value = "s3cret-px"
        screen.query_one("#add-user", Button).press()
        await pilot.pause()
        assert "do not match" in text_of(screen, "#user-error")
        assert "alice" not in screen.passwords
        assert screen.query_one("#user-pw", Input).password  # masked
        screen.query_one("#user-pw", Input).value = "s3cret-pw"
        screen.query_one("#user-pw2", Input).value = "s3cret-pw"
        screen.query_one("#add-user", Button).press()
        await pilot.pause()
        assert text_of(screen, "#user-error") == ""
        users = text_of(screen, "#users")
        assert "alice" in users and "s3cret" not in users
        screen.set_focus(None)
        await pilot.press("n")
        await pilot.pause()
    assert app.outcomes[0].state.passwords == {"alice": "s3cret-pw"}


async def test_toplayer_opens_offered_file_from_image_with_highlighting_language():
    services = FakeLateServices()
    services.image_files["etc/docker/daemon.json"] = b'{"storage-driver": "btrfs"}\n'
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        tree = screen.query_one("#files", Tree)
        docker_dir = next(n for n in tree.root.children[0].children if n.data is None)
        node = next(n for n in docker_dir.children if n.data == "etc/docker/daemon.json")
        tree.select_node(node)
        await app.workers.wait_for_complete()
        await pilot.pause()
        editor = screen.query_one("#editor", TextArea)
        # What apply will write: the image's keys plus the btrfs store's (wizard.machine).
        assert json.loads(editor.text) == {"storage-driver": "btrfs",
                                           "features": {"containerd-snapshotter": False}}
        assert editor.language == "json"
        assert ("image_file", "etc/docker/daemon.json") in services.calls


async def test_toplayer_admin_checkbox_and_machine_switches_reach_the_settings():
    app = Host(lambda: ToplayerScreen(state(), FakeLateServices()))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        screen = app.screen
        for name, admin in (("alice", True), ("bob", False)):
            screen.query_one("#user-name", Input).value = name
            screen.query_one("#user-pw", Input).value = "pw-" + name
            screen.query_one("#user-pw2", Input).value = "pw-" + name
            screen.query_one("#user-admin", Checkbox).value = admin
            screen.query_one("#add-user", Button).press()
            await pilot.pause()
        assert not screen.query_one("#user-admin", Checkbox).value  # reset for the next user
        assert "alice (new password, administrator), bob (new password)" in \
            text_of(screen, "#users")
        boxes = {b.id: b for b in screen.query("#machine Checkbox").results(Checkbox)}
        assert sorted(boxes) == ["machine-docker-store", "machine-home", "machine-journal"]
        assert all(b.value for b in boxes.values())  # a real machine by default
        boxes["machine-journal"].value = False
        assert screen.has_pending_edits()
        screen.set_focus(None)
        await pilot.press("n")
        await pilot.pause()
    settings = app.outcomes[0].state.settings
    assert settings.admins == ("alice",)
    assert (settings.home, settings.journal, settings.docker_store) == (True, False, True)


async def test_toplayer_fstab_opened_shows_the_lines_apply_adds():
    app = Host(lambda: ToplayerScreen(state(), FakeLateServices()))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        screen.query_one("#machine-home", Checkbox).value = False
        tree = screen.query_one("#files", Tree)
        node = next(n for n in tree.root.children[0].children if n.data == "etc/fstab")
        tree.select_node(node)
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = screen.query_one("#editor", TextArea).text
        assert text.startswith("# image fstab\n")  # the image's own lines first
        assert "LABEL=dbw-fake /var/lib/docker btrfs subvol=docker 0 0" in text
        assert "/var/log/journal" in text and " /home " not in text


# The later steps inside the real app (routes, staged builds): tests/ui/test_wizard_app.py.
