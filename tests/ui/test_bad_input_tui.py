"""The bad-input corpus's hostnames, user names and kernel options through the TUI.

The rows of ``tests/integration/bad_input_cases.py`` that a TUI field (or the
saved config the TUI applies) can carry: each shows one error line, and
nothing goes further (no Next, no user added, no plan).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Button, Input, Static

from screens.flows.review import ReviewScreen
from tests.integration.bad_input_cases import CASES
from tests.ui.conftest import open_step
from tests.ui.fakes import SETTINGS, FakeServices
from wizard.common.errors import ConfigError
from wizard.flows.flow import Step, WizardState
from wizard.settings.kernel_options import check_kernel_options


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


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


def one_line(text: str, *words: str) -> None:
    assert "\n" not in text.strip(), text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize("hostname", HOSTNAMES)
async def test_tui_bad_hostname_one_line_and_next_blocked(hostname: str) -> None:
    async with open_step(Step.TOPLAYER, WizardState(settings=SETTINGS)) as (app, pilot):
        screen = app.screen
        await pilot.press("f2")
        screen.query_one("#hostname", Input).value = hostname
        await pilot.pause()
        screen.action_next()
        await pilot.pause()
        one_line(text_of(screen, "#hostname-error"), "hostname")
        assert screen.query_one("#next", Button).disabled
    assert app.outcomes == []


@pytest.mark.parametrize("name", [*USERS, "Bad User"])
async def test_tui_bad_user_name_one_line_and_not_added(name: str) -> None:
    async with open_step(Step.TOPLAYER, WizardState(settings=SETTINGS)) as (app, pilot):
        screen = app.screen
        await pilot.press("f2")
        screen.query_one("#user-name", Input).value = name
        screen.query_one("#user-pw", Input).value = "pw"
        screen.query_one("#user-pw2", Input).value = "pw"
        screen.query_one("#add-user", Button).press()
        await pilot.pause()
        one_line(text_of(screen, "#user-error"), f"invalid user name {name!r}")
        assert screen.passwords == {}


@pytest.mark.parametrize("options", KERNEL_OPTIONS)
async def test_tui_bad_kernel_option_in_the_saved_config_stops_review(options: str) -> None:
    services = FakeServices()
    bad = WizardState(settings=replace(SETTINGS, kernel_options=options))
    async with open_step(Step.REVIEW, bad, services) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, ReviewScreen)  # a known fault: the error line, no dialog
        with pytest.raises(ConfigError) as refused:  # what the CLI says for the same row
            check_kernel_options(options)
        problem = text_of(screen, "#error").splitlines()[0]
        one_line(problem, refused.value.problem)
        assert screen.query_one("#apply", Button).disabled
    assert not any(call[0] in ("preview", "apply") for call in services.calls)
