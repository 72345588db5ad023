"""The bad-input corpus's hostnames, user names and kernel options through the TUI.

The rows of ``tests/integration/bad_input_cases.py`` that a TUI field (or the
saved config the TUI applies) can carry: each shows one error line, and
nothing goes further (no Next, no user added, no plan).
"""

from __future__ import annotations

import pytest
from textual.widgets import Button, Input

from screens.toplayer import ToplayerScreen
from tests.integration.bad_input_cases import CASES
from tests.ui.conftest import SIZE, open_step, text
from tests.ui.fakes_late import SETTINGS, FakeLateServices
from tests.ui.test_late_screens import Host, state, text_of
from wizard.errors import ConfigError
from wizard.flow import Step, WizardState
from wizard.kernel_options import check_kernel_options


def _values(flag: str, prefix: str) -> list[str]:
    """What the corpus rows named ``prefix…`` give ``flag`` (``--flag V`` or ``--flag=V``)."""
    out = []
    for case in (c for c in CASES if c.id.startswith(prefix)):
        for i, arg in enumerate(case.args):
            if arg == flag and i + 1 < len(case.args):
                out.append(case.args[i + 1])
            elif arg.startswith(flag + "="):
                out.append(arg.split("=", 1)[1])
    return out


# An empty hostname is no mistake in the form: it keeps the image's.
HOSTNAMES = [h for h in _values("--hostname", "hostname") if h]
USERS = _values("--user", "user name")
KERNEL_OPTIONS = _values("--kernel-options", "kernel option")


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


@pytest.mark.parametrize("hostname", HOSTNAMES)
async def test_tui_bad_hostname_one_line_and_next_blocked(hostname: str) -> None:
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _users_tab(app, pilot)
        screen.query_one("#hostname", Input).value = hostname
        await pilot.pause()
        screen.action_next()
        await pilot.pause()
        one_line(text_of(screen, "#hostname-error"), "hostname")
    assert app.outcomes == []


@pytest.mark.parametrize("name", [*USERS, "Bad User"])
async def test_tui_bad_user_name_one_line_and_not_added(name: str) -> None:
    services = FakeLateServices()
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        screen = await _users_tab(app, pilot)
        screen.query_one("#user-name", Input).value = name
        screen.query_one("#user-pw", Input).value = "pw"
        screen.query_one("#user-pw2", Input).value = "pw"
        screen.query_one("#add-user", Button).press()
        await pilot.pause()
        one_line(text_of(screen, "#user-error"), f"invalid user name {name!r}")
        assert screen.passwords == {}


@pytest.mark.parametrize("options", KERNEL_OPTIONS)
async def test_tui_bad_kernel_option_in_the_saved_config_stops_review(options: str) -> None:
    services = FakeLateServices()
    bad = WizardState(settings=SETTINGS.with_changes(kernel_options=options))
    async with open_step(Step.REVIEW, bad, services) as (app, _pilot):
        with pytest.raises(ConfigError) as refused:  # what the CLI says for the same row
            check_kernel_options(options)
        problem, fix = text(app.screen, "#error").split("\n")
        assert problem == f"Problem: {refused.value.problem}"
        assert fix == f"How to fix: {refused.value.fix}"
        assert app.screen.query_one("#apply", Button).disabled
    assert not any(call[0] in ("preview", "apply") for call in services.calls)
