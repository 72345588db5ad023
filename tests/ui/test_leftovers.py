"""Pilot tests (fake services): text typed but not yet kept in the top-layer editor counts
as unsaved.  (Staged builds discarded when the flow ends: tests/ui/test_wizard_app.py.)"""

from __future__ import annotations

from textual.widgets import TextArea, Tree

from screens.base import ConfirmScreen
from screens.toplayer import ToplayerScreen
from screens.wizard_app import make_app
from tests.ui.conftest import SIZE, until
from tests.ui.fakes import FakeServices
from tests.ui.fakes_late import SETTINGS
from wizard.flow import Mode, Step, WizardState

# Saved == settings: nothing in the state itself is unsaved.
CLEAN = WizardState(settings=SETTINGS, saved=SETTINGS)


async def _editor_on_hostname(pilot, app) -> TextArea:
    await until(pilot, lambda: isinstance(app.screen, ToplayerScreen) and app.screen.files,
                "top layer files")
    tree = app.screen.query_one("#files", Tree)
    node = next(n for n in tree.root.children[0].children if n.data == "etc/hostname")
    tree.select_node(node)
    editor = app.screen.query_one("#editor", TextArea)
    await until(pilot, lambda: editor.text == "old\n", "file in the editor")
    return editor


async def test_text_typed_in_the_editor_counts_as_unsaved_on_ctrl_q():
    services = FakeServices()
    st = CLEAN.with_changes(mode=Mode.RECONFIGURE_TOPLAYER)
    app = make_app(services, start_at=Step.TOPLAYER, state=st)
    async with app.run_test(size=SIZE) as pilot:
        editor = await _editor_on_hostname(pilot, app)
        screen = app.screen
        assert not app.unsaved()  # opening a file is not a change
        editor.focus()
        await pilot.press("end", "x", "y", "z")
        await pilot.pause()
        assert "xyz" in editor.text and screen.edits == {}  # typed, not kept
        assert app.unsaved()
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, "back on the editor")
        assert app.is_running and "xyz" in editor.text
        # q from the screen's own binding asks too (focus off the editor).
        screen.set_focus(None)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm dialog")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, "back on the editor")
        assert app.is_running and "xyz" in editor.text


async def test_untouched_top_layer_screen_quits_without_asking():
    services = FakeServices()
    st = CLEAN.with_changes(mode=Mode.RECONFIGURE_TOPLAYER)
    app = make_app(services, start_at=Step.TOPLAYER, state=st)
    async with app.run_test(size=SIZE) as pilot:
        await _editor_on_hostname(pilot, app)
        app.screen.set_focus(None)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, "exit")
