"""Shared fixtures of the Pilot tests: ``open_step`` opens one step on fakes.

What every step shares (the quit rule, the one error path) is checked by
``tests/ui/every_step.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import pytest
from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Static

from screens.common.base import TITLES, StepScreen
from screens.wizard_app import DockerbootApp
from tests.lab.tmux import pane  # noqa: F401 -- the tmux tests' fixture
from tests.ui.fakes import FakeServices
from wizard.flows.flow import Outcome, Step, WizardState
from wizard.flows.services import Services

SIZE = (100, 32)
LATE_STEPS = (Step.TOPLAYER, Step.INITRAMFS, Step.BOOTLOADER, Step.REVIEW, Step.UPDATE, Step.DONE)


@pytest.fixture
def fake() -> FakeServices:
    return FakeServices()


class StubScreen(StepScreen):
    """A step that only has Next/Back/Quit: stands in for a neighbour of the step tested."""

    def compose_body(self) -> ComposeResult:
        yield Static(f"(stub of the {TITLES[self.STEP]} step)", classes="placeholder")


def stub_for(step: Step) -> type[StepScreen]:
    """A ``StubScreen`` class for ``step``."""
    return type(f"Stub{step.name.title()}Screen", (StubScreen,), {"STEP": step})


def with_placeholders(app: DockerbootApp, steps=LATE_STEPS) -> DockerbootApp:
    """Swap the later steps' screens for Next/Back stubs (flow tests only)."""
    app.screens.update({step: stub_for(step) for step in steps})
    return app


class RecordingApp(DockerbootApp):
    """The wizard app, recording each step's outcome in ``outcomes``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: list[Outcome] = []

    async def push_screen_wait(self, screen: Screen | str):  # type: ignore[override]
        result = await super().push_screen_wait(screen)
        if isinstance(screen, StepScreen):
            self.outcomes.append(result)
        return result


@contextlib.asynccontextmanager
async def open_step(step: Step, state: WizardState | None = None,
                    services: Services | None = None, *,
                    screens: Mapping[Step, type[StepScreen]] | None = None,
                    size: tuple[int, int] = SIZE,
                    settled: bool = True) -> AsyncIterator[tuple[RecordingApp, Pilot]]:
    """The wizard app opened at ``step`` on fakes, its screen's first work done.

    ``screens`` replaces step screens as ``make_app`` does; by default every
    other step is a stub, so a screen's tests do not depend on its
    neighbours (``app.current`` shows where an outcome led).  ``app.outcomes``
    lists the outcomes the steps handed to the flow.  ``settled=False``
    yields as soon as the screen is mounted, its first work maybe running.
    """
    stubs = {s: stub_for(s) for s in Step if s is not step} if screens is None else screens
    app = RecordingApp(services or FakeServices(), start_at=step, state=state, screens=stubs)
    async with app.run_test(size=size) as pilot:
        # Mounted, not necessarily on top: its first work may have failed into a dialog.
        await until(pilot, lambda: isinstance(app.current, StepScreen)
                    and app.current.STEP is step and app.current.is_mounted,
                    f"the {step} step on screen")
        if settled:
            await settle(pilot)
        yield app, pilot


async def until(pilot, ready, what: str) -> None:
    """Pump the app until ``ready()`` (the flow worker never completes)."""
    for _ in range(2000):
        await pilot.pause()
        if ready():
            return
        if not pilot.app.is_running:  # e.g. the flow failed to open a step
            raise AssertionError(f"the app ended before: {what}")
    raise AssertionError(f"never happened: {what} (at {pilot.app.screen!r})")


async def settle(pilot) -> None:
    """Let screens' workers finish and their messages be handled.

    ``app.workers.wait_for_complete()`` alone never returns: the flow worker
    runs for the whole session, so it is left out.
    """
    app = pilot.app
    for _ in range(3):  # a finished worker's message may start another worker
        await pilot.pause()
        busy = [w for w in app.workers if w.group != "flow" and not w.is_finished]
        if busy:  # an empty list would mean "all workers", the flow worker included
            await app.workers.wait_for_complete(busy)
    await pilot.pause()


# --- reading a screen ---

def shown(widget: Static) -> str:
    """What ``widget`` shows, markup rendered (a ``Syntax``: its code)."""
    content = widget.content
    return content.code if isinstance(content, Syntax) else str(widget.render())


def text(screen: Screen, selector: str) -> str:
    """What the ``Static`` at ``selector`` shows (see ``shown``)."""
    return shown(screen.query_one(selector, Static))


def next_enabled(screen: Screen) -> bool:
    return not screen.query_one("#next", Button).disabled


async def press(pilot: Pilot, *keys: str) -> None:
    """Press ``keys``, then let the work they started finish."""
    await pilot.press(*keys)
    await settle(pilot)
