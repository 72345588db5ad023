"""Shared fixtures of the Pilot tests."""

from __future__ import annotations

import pytest
from textual.app import ComposeResult
from textual.widgets import Static

from screens.base import StepScreen
from screens.wizard_app import DockerbootApp
from tests.ui.fakes import FakeServices
from wizard.flow import Step

SIZE = (100, 32)
LATE_STEPS = (Step.TOPLAYER, Step.INITRAMFS, Step.BOOTLOADER, Step.REVIEW, Step.DONE)


@pytest.fixture
def fake() -> FakeServices:
    return FakeServices()


class PlaceholderScreen(StepScreen):
    """Stands in for a real step in flow tests: Next/Back/Quit only."""

    def compose_body(self) -> ComposeResult:
        yield Static(f"Placeholder for {self.STEP.value}. Press n to go on.")


def placeholder_for(step: Step) -> type[StepScreen]:
    """A placeholder screen class for ``step``."""
    return type(f"{step.name.title()}Placeholder", (PlaceholderScreen,), {"STEP": step})


def with_placeholders(app: DockerbootApp, steps=LATE_STEPS) -> DockerbootApp:
    """Swap the later steps' screens for Next/Back placeholders (flow tests only)."""
    for step in steps:
        app.screens[step] = placeholder_for(step)
    return app


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
