"""A subset of the bad-input corpus through the TUI: each shows one error line."""

from __future__ import annotations

from textual.widgets import Button, Input

from screens.review import ErrorModal, ReviewScreen
from screens.toplayer import ToplayerScreen
from tests.ui.conftest import SIZE
from tests.ui.fakes_late import SETTINGS, FakeLateServices
from tests.ui.test_late_screens import Host, state, text_of


def one_line(text: str, *words: str) -> None:
    assert "\n" not in text.strip(), text
    for word in words:
        assert word in text, text


async def _users_tab(app: Host, pilot) -> ToplayerScreen:
    await app.workers.wait_for_complete()
    await pilot.pause()
    screen = app.screen
    screen.query_one("#tabs").active = "users-tab"
    await pilot.pause()
    return screen


async def test_tui_bad_hostname_one_line_and_next_blocked() -> None:
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _users_tab(app, pilot)
        screen.query_one("#hostname", Input).value = "bad_host!"
        await pilot.pause()
        screen.action_next()
        await pilot.pause()
        one_line(text_of(screen, "#hostname-error"), "invalid hostname 'bad_host!'")
    assert app.outcomes == []


async def test_tui_bad_user_name_one_line_and_not_added() -> None:
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _users_tab(app, pilot)
        screen.query_one("#user-name", Input).value = "Bad User"
        screen.query_one("#user-pw", Input).value = "pw"
        screen.query_one("#user-pw2", Input).value = "pw"
        screen.query_one("#add-user", Button).press()
        await pilot.pause()
        one_line(text_of(screen, "#user-error"), "invalid user name 'Bad User'")
        assert screen.passwords == {}


async def test_tui_reserved_kernel_option_in_the_saved_config_stops_review() -> None:
    services = FakeLateServices()
    bad = SETTINGS.with_changes(kernel_options="quiet rootflags=subvol=docker")
    app = Host(lambda: ReviewScreen(state(settings=bad), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ErrorModal)
        one_line(text_of(app.screen, "#problem"), "rootflags=subvol= is set by the wizard")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.query_one("#apply", Button).disabled
    assert not any(call[0] in ("plan", "execute") for call in services.calls)
