"""Pilot tests of the Top layer step, opened in the wizard app on fakes (``open_step``).

Every way off the screen (Next with what was entered, Back and Quit with the
state it got, Quit asking when input would be lost), its keys (f1–f4, Tab
order, letters typed into fields), and each worker's failure on the one
error path (error line; an unexpected fault also the error view with a way back).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from rich.syntax import Syntax
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    OptionList,
    Static,
    TabbedContent,
    TextArea,
    Tree,
)

from screens.common.base import ConfirmScreen, ErrorView, StepScreen
from screens.toplayer.toplayer import WARNING, ToplayerScreen
from tests.ui.conftest import open_step, settle, until
from tests.ui.fakes import SETTINGS, FakeServices
from wizard.common.errors import DockerError
from wizard.flows.flow import Back, Next, Quit, Step, WizardState

IMAGE_FSTAB_PLUS = (b"# image fstab\nproc /proc proc defaults 0 0\n"
                    b"LABEL=dbw-fake /var/lib/docker btrfs subvol=docker 0 0\n")
DOCKER_LINE = "LABEL=dbw-fake /var/lib/docker btrfs subvol=docker 0 0"


def state(**changes) -> WizardState:
    return replace(WizardState(settings=SETTINGS), **changes)


# Saved == settings: nothing in the state itself is unsaved.
CLEAN = state(saved=SETTINGS)


def text_of(screen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return content.code if isinstance(content, Syntax) else str(content)


def leaf(screen, rel: str):
    """The tree node of ``rel`` (searched through the expanded directories)."""
    todo = [screen.query_one("#files", Tree).root]
    while todo:
        node = todo.pop()
        if node.data == rel:
            return node
        todo.extend(node.children)
    raise AssertionError(f"{rel} is not in the tree")


async def open_in_editor(pilot, screen: ToplayerScreen, rel: str) -> TextArea:
    screen.query_one("#files", Tree).select_node(leaf(screen, rel))
    await settle(pilot)
    return screen.query_one("#editor", TextArea)


def focused_id(app) -> str | None:
    return app.focused.id if app.focused is not None else None


# --- the screen and its tabs ---


async def handed_on(app, pilot) -> WizardState:
    """The state the step's Next carried (waits for it)."""
    await until(pilot, lambda: app.outcomes, "Next")
    outcome = app.outcomes[0]
    assert isinstance(outcome, Next)
    return outcome.state

async def test_warning_tree_and_secret_file_hidden():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        screen = app.screen
        assert text_of(screen, "#warning") == WARNING
        etc = {n.data for n in screen.query_one("#files", Tree).root.children[0].children}
        assert {"etc/hostname", "etc/shadow", "etc/fstab"} <= etc
        editor = await open_in_editor(pilot, screen, "etc/shadow")
        assert editor.disabled and "secret" not in editor.text
        assert "password hashes, not shown" in text_of(screen, "#path")
        assert "ctrl+s" not in screen.active_bindings  # nothing to keep


@pytest.mark.parametrize(("key", "tab", "first"), [
    ("f1", "files-tab", "files"), ("f2", "users-tab", "hostname"),
    ("f3", "machine-tab", "machine-home"), ("f4", "fstab-tab", "fstab-options")])
async def test_tab_key_switches_the_tab_and_focuses_its_first_field(key, tab, first):
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        await pilot.press("f3" if key != "f3" else "f2")  # start elsewhere
        await pilot.press(key)
        await pilot.pause()
        assert app.screen.query_one(TabbedContent).active == tab
        assert focused_id(app) == first


async def test_tab_action_focuses_at_once_so_keys_typed_next_land_in_the_field():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        app.screen.action_show_tab("users-tab")
        assert focused_id(app) == "hostname"  # no pause: a real terminal may not wait


async def test_tab_keys_are_in_the_footer_and_work_from_a_text_field():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        await pilot.press("f2")
        assert focused_id(app) == "hostname"
        shown = {key: b.binding for key, b in app.screen.active_bindings.items()
                 if b.binding.show and b.enabled}
        assert [shown[f"f{i}"].description for i in range(1, 5)] == [
            "Files", "Hostname & users", "Machine", "fstab helper"]
        assert {shown[f"f{i}"].group.description for i in range(1, 5)} == {"Switch tab"}
        assert "Leave field" in {b.description for b in shown.values()}
        labels = [str(t.label) for t in app.screen.query("Tab")]
        assert labels == ["Files (f1)", "Hostname & users (f2)", "Machine (f3)",
                          "fstab helper (f4)"]
        await pilot.press("f3")  # a function key is no text: it leaves the field
        assert focused_id(app) == "machine-home"
        assert app.screen.query_one("#hostname", Input).value == ""


@pytest.mark.parametrize(("key", "order"), [
    ("f1", ["files", "diff-box", "back", "next"]),
    ("f2", ["hostname", "user-name", "user-pw", "user-pw2", "user-admin", "add-user",
            "back", "next"]),
    ("f3", ["machine-home", "machine-journal", "machine-docker-store", "machine-auto-update",
            "back", "next"]),
    ("f4", ["fstab-options", "fstab-diff-box", "back", "next"]),
])
async def test_tab_order_follows_the_layout(key, order):
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        await pilot.press(key)
        seen = [focused_id(app)]
        for _ in order[1:]:
            await pilot.press("tab")
            seen.append(focused_id(app))
        assert seen == order


async def test_tab_order_takes_in_the_editor_once_a_file_is_open():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        assert focused_id(app) == "files"  # the Files tab's first field
        await open_in_editor(pilot, app.screen, "etc/hostname")
        await pilot.press("tab")
        assert focused_id(app) == "editor"
        await pilot.press("tab")  # the editor does not swallow Tab
        assert focused_id(app) == "diff-box"


async def test_letters_typed_in_a_field_are_text_and_escape_gives_them_back():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        await pilot.press("f2", "n", "b", "q")
        await pilot.pause()
        assert app.screen.query_one("#hostname", Input).value == "nbq"
        assert app.outcomes == [] and isinstance(app.screen, ToplayerScreen)
        await pilot.press("escape")
        assert app.focused is None
        await pilot.press("n")
        assert (await handed_on(app, pilot)).settings.hostname == "nbq"


# --- outcomes ---

async def test_next_by_keys_carries_fstab_line_hostname_users_and_passwords():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        screen = app.screen
        # fstab helper: the first suggestion is highlighted, enter adds it.
        await pilot.press("f4", "enter")
        await settle(pilot)
        assert "+" + DOCKER_LINE in text_of(screen, "#fstab-diff")
        # Hostname, then a user: name, the password twice, admin, Add user.
        await pilot.press("f2", *"desk1", "tab", *"carol", "tab", *"pw1two", "tab",
                          *"pw1two", "tab", "space", "tab", "enter")
        await pilot.pause()
        assert "carol (new password, administrator)" in text_of(screen, "#users")
        assert focused_id(app) == "user-name"  # ready for the next user
        await pilot.press("escape", "n")
        await until(pilot, lambda: app.outcomes, "Next")
    outcome = app.outcomes[0]
    assert isinstance(outcome, Next)
    assert outcome.state.toplayer_edits == {"etc/fstab": IMAGE_FSTAB_PLUS}
    assert outcome.state.settings.hostname == "desk1"
    assert outcome.state.settings.admins == ("carol",)
    assert outcome.state.passwords == {"carol": "pw1two"}
    assert app.current.STEP is Step.INITRAMFS and app.current.state == outcome.state


async def test_keep_file_shows_the_diff_against_the_image_first():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        screen = app.screen
        editor = await open_in_editor(pilot, screen, "etc/hostname")
        assert editor.text == "old\n"
        editor.focus()
        await pilot.press("ctrl+a", "ctrl+k", *"mybox")
        assert editor.text == "mybox\n"
        await pilot.press("ctrl+s")
        await settle(pilot)
        diff = text_of(screen, "#diff")
        assert "-debian" in diff and "+mybox" in diff  # against the image's own file
        assert "etc/hostname" not in screen.edits  # not kept before the diff was seen
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.edits["etc/hostname"] == b"mybox\n"
        assert "kept" in text_of(screen, "#path")
        await pilot.press("escape", "n")
        await until(pilot, lambda: app.outcomes, "Next")
    assert app.outcomes[0].state.toplayer_edits == {"etc/hostname": b"mybox\n"}


async def test_fstab_helper_merges_the_line_into_the_image_fstab():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        screen = app.screen
        options = screen.query_one("#fstab-options", OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == DOCKER_LINE
        assert "LABEL=dbw-fake /home btrfs subvol=home,nofail 0 0" in ids
        await pilot.press("f4", "enter")
        await settle(pilot)
        assert screen.edits["etc/fstab"] == IMAGE_FSTAB_PLUS
        assert "fstab *" in str(leaf(screen, "etc/fstab").label)  # marked as edited
        await pilot.press("f1")
        editor = await open_in_editor(pilot, screen, "etc/fstab")
        assert DOCKER_LINE in editor.text


async def test_fstab_diff_scrolls_to_the_added_line_in_a_small_terminal():
    async with open_step(Step.TOPLAYER, state(), size=(80, 24)) as (app, pilot):
        await pilot.press("f4", "enter")
        await settle(pilot)
        box = app.screen.query_one("#fstab-diff-box")
        added = text_of(app.screen, "#fstab-diff").splitlines().index("+" + DOCKER_LINE)
        assert box.scroll_y <= added < box.scroll_y + box.scrollable_content_region.height


async def test_bad_hostname_disables_next_until_fixed():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        screen = app.screen
        await pilot.press("f2", *"bad_host")
        await pilot.pause()
        assert "invalid hostname" in text_of(screen, "#hostname-error")
        assert screen.query_one("#next", Button).disabled
        await pilot.press("escape", "n")
        await pilot.pause()
        assert app.outcomes == []
        screen.query_one("#hostname", Input).value = "desk1"
        await pilot.pause()
        assert text_of(screen, "#hostname-error") == ""
        assert not screen.query_one("#next", Button).disabled
        await pilot.click("#next")
        assert (await handed_on(app, pilot)).settings.hostname == "desk1"


async def test_users_password_mismatch_then_added():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        screen = app.screen
        await pilot.press("f2", "tab", *"alice", "tab", *"secret1", "tab", *"secret2", "enter")
        await pilot.pause()
        assert "do not match" in text_of(screen, "#user-error")
        assert "alice" not in screen.passwords
        assert screen.query_one("#user-pw", Input).password  # masked
        assert focused_id(app) == "user-pw"  # to type them again
        await pilot.press(*"secret1", "tab", *"secret1", "enter")
        await pilot.pause()
        assert text_of(screen, "#user-error") == ""
        users = text_of(screen, "#users")
        assert "alice" in users and "secret" not in users
        await pilot.press("escape", "n")
        await until(pilot, lambda: app.outcomes, "Next")
    assert app.outcomes[0].state.passwords == {"alice": "secret1"}


async def test_admin_checkbox_and_machine_switches_reach_the_settings():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
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
        assert sorted(boxes) == ["machine-auto-update", "machine-docker-store", "machine-home",
                                 "machine-journal"]
        assert all(b.value for b in boxes.values())  # a real machine by default
        await pilot.press("f3", "tab", "space")  # the journal's box
        assert not boxes["machine-journal"].value
        await pilot.press("tab", "tab", "space")  # the automatic update's
        assert not boxes["machine-auto-update"].value
        assert screen.has_pending_edits()
        await pilot.press("n")  # a checkbox takes no letters
        await until(pilot, lambda: app.outcomes, "Next")
    settings = app.outcomes[0].state.settings
    assert settings.admins == ("alice",)
    assert (settings.home, settings.journal, settings.docker_store) == (True, False, True)
    assert settings.auto_update is False


async def test_opens_an_offered_file_from_the_image_with_its_language():
    services = FakeServices()
    services.image_files["etc/docker/daemon.json"] = b'{"storage-driver": "btrfs"}\n'
    async with open_step(Step.TOPLAYER, state(), services) as (app, pilot):
        editor = await open_in_editor(pilot, app.screen, "etc/docker/daemon.json")
        # What apply will write: the image's keys plus the btrfs store's (wizard.toplayer.machine).
        assert json.loads(editor.text) == {"storage-driver": "btrfs",
                                           "features": {"containerd-snapshotter": False}}
        assert editor.language == "json"
        assert ("image_file", "etc/docker/daemon.json") in services.calls


async def test_opened_fstab_shows_the_lines_apply_adds():
    async with open_step(Step.TOPLAYER, state()) as (app, pilot):
        app.screen.query_one("#machine-home", Checkbox).value = False
        text = (await open_in_editor(pilot, app.screen, "etc/fstab")).text
        assert text.startswith("# image fstab\n")  # the image's own lines first
        assert DOCKER_LINE in text
        assert "/var/log/journal" in text and " /home " not in text


async def test_back_carries_the_state_the_screen_got():
    st = state(toplayer_edits={"etc/motd": b"hi\n"}, passwords={"ann": "pw-ann"})
    async with open_step(Step.TOPLAYER, st) as (app, pilot):
        await pilot.press("f2", *"desk9", "escape", "b")
        await until(pilot, lambda: app.outcomes, "Back")
        assert app.current.STEP is Step.IMAGE
    assert app.outcomes == [Back(st)]
    assert app.outcomes[0].state.passwords == {"ann": "pw-ann"}  # not compared by ==


async def test_untouched_screen_quits_without_asking():
    async with open_step(Step.TOPLAYER, CLEAN) as (app, pilot):
        await open_in_editor(pilot, app.screen, "etc/hostname")  # opening is no change
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "exit")
    assert app.outcomes == [Quit(CLEAN)]


@pytest.mark.parametrize("how", ["editor", "hostname", "fstab line"])
async def test_quit_with_pending_edits_asks_first(how: str):
    async with open_step(Step.TOPLAYER, CLEAN) as (app, pilot):
        screen = app.screen
        if how == "editor":  # typed, not kept: still counts
            editor = await open_in_editor(pilot, screen, "etc/hostname")
            editor.focus()
            await pilot.press("end", *"xyz")
            assert screen.edits == {}
        elif how == "hostname":
            await pilot.press("f2", *"desk9")
        else:
            await pilot.press("f4", "enter")
            await settle(pilot)
        await pilot.press("ctrl+q")  # q would be text in a field; ctrl+q never is
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, "back on the screen")
        assert app.is_running and app.outcomes == []
        await pilot.press("escape", "q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, "exit")
    assert app.outcomes == [Quit(CLEAN)]


# --- the error path of each worker ---

def raising(exc: BaseException):
    def method(*args: object, **kwargs: object):
        raise exc
    return method


WORKERS = ["toplayer_files", "image_file", "partitions"]
"""The Services calls this screen's workers make."""


async def start_work(pilot, screen: ToplayerScreen, method: str) -> None:
    """Run the worker that calls ``method`` (the first two run at mount)."""
    if method == "image_file":
        screen.query_one("#files", Tree).select_node(leaf(screen, "etc/fstab"))
    await settle(pilot)


@pytest.mark.parametrize("method", WORKERS)
async def test_known_fault_of_a_worker_is_shown_on_the_error_line(method: str):
    services = FakeServices()
    setattr(services, method, raising(DockerError("the Docker daemon failed: gone",
                                                  "start dockerd")))
    async with open_step(Step.TOPLAYER, state(), services) as (app, pilot):
        screen = app.screen
        await start_work(pilot, screen, method)
        assert isinstance(app.screen, ToplayerScreen)  # no dialog: the line says it all
        error = screen.query_one("#error", Static)
        assert error.display
        assert str(error.content) == ("Problem: the Docker daemon failed: gone\n"
                                      "How to fix: start dockerd")
        assert "loading" not in text_of(screen, "#path")  # nothing waits forever
        etc = {n.data for n in screen.query_one("#files", Tree).root.children[0].children}
        assert "etc/fstab" in etc  # the offered files stay editable
        assert not screen.query_one("#next", Button).disabled


@pytest.mark.parametrize("method", WORKERS)
async def test_bug_in_a_worker_opens_the_error_view_whose_back_leads_back(method: str):
    services = FakeServices()
    setattr(services, method, raising(RuntimeError("something odd")))
    async with open_step(Step.TOPLAYER, state(), services) as (app, pilot):
        await start_work(pilot, app.screen, method)
        await until(pilot, lambda: isinstance(app.screen, ErrorView), "the error view")
        view = app.screen
        assert "unexpected RuntimeError: something odd" in text_of(view, "#error-problem")
        assert "please report it" in text_of(view, "#error-fix")
        back = view.query_one("#error-back", Button)
        assert str(back.label) == "Back to the previous step (b)"
        assert view.focused is back
        await pilot.press("enter")
        await until(pilot, lambda: app.outcomes, "Back")
        assert isinstance(app.screen, StepScreen) and app.current.STEP is Step.IMAGE
    assert app.outcomes == [Back(state())]
