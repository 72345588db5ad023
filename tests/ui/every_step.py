"""What every step screen shares, checked for one step: Back, the quit rule, the error path.

Each screen's test module calls these with its own step, states and worker
methods, and states only what is its own.  A worker's fault takes one of two
ways (``screens.common.base.StepScreen.reporting``): a fault the core knows is shown
on the step's error line (``known_fault``); a bug opens the error view, whose
b leads back to the previous step (``way_back``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import AsyncIterator, Callable

import docker.errors
import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from screens.common.base import ConfirmScreen, ErrorView, StepScreen
from tests.ui.conftest import RecordingApp, next_enabled, open_step, press, text, until
from tests.ui.fakes import FakeServices
from wizard.common.errors import WizardError
from wizard.common.faults import describe
from wizard.flows.flow import Back, Quit, Step, WizardState, before

BOOM = RuntimeError("boom")
"""A fault no layer knows: a bug."""


async def back_and_quit(step: Step, state: WizardState, clean: WizardState, *,
                        services: Callable[[], FakeServices] = FakeServices) -> None:
    """Back hands ``state`` to the previous step.  Quit follows the quit rule: from
    ``clean`` (nothing to lose) it quits at once; from ``state`` (unsaved input) it
    asks first, "n" stays on the step and "y" quits with the state."""
    async with open_step(step, state, services()) as (app, pilot):
        await press(pilot, "b")
        assert app.step is before(step, state)
    assert app.outcomes == [Back(state)]
    async with open_step(step, clean, services()) as (app, pilot):
        await press(pilot, "q")
        assert not app.is_running
    assert app.outcomes == [Quit(clean)]
    async with open_step(step, state, services()) as (app, pilot):
        screen = app.screen
        for answer in ("n", "y"):
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            await press(pilot, answer)
            if answer == "n":
                assert app.screen is screen and app.outcomes == [] and app.is_running
    assert app.outcomes == [Quit(state)]


def failing(method: str, exc: BaseException = BOOM,
            services: FakeServices | None = None) -> FakeServices:
    """``services`` (new fakes by default) whose ``method`` raises ``exc``."""
    services = services or FakeServices()

    def broken(*args: object, **kwargs: object) -> object:
        raise exc

    setattr(services, method, broken)
    return services


def known_faults(own: WizardError) -> list:
    """Parameters: ``own`` (the step's error type) and the faults any worker may meet."""
    return [pytest.param(own, id=type(own).__name__),
            pytest.param(OSError(errno.EIO, os.strerror(errno.EIO)), id="EIO"),
            pytest.param(docker.errors.APIError("500 Server Error: boom"), id="APIError")]


@contextlib.asynccontextmanager
async def known_fault(step: Step, state: WizardState, method: str, exc: Exception, *,
                      keys: tuple[str, ...] = (),
                      retry: str = "") -> AsyncIterator[tuple[RecordingApp, Pilot]]:
    """``step`` whose ``method`` (called on opening or after ``keys``) raised ``exc``, a
    fault the core knows: the error line says the problem and how to fix it, no dialog
    hides the step, nothing runs any more.  After the caller's own checks, ``retry``
    (a key) calls ``method`` again, now working: the error line goes, Next is back."""
    error = describe(exc)
    services = failing(method, exc)
    async with open_step(step, state, services) as (app, pilot):
        await press(pilot, *keys)
        screen = app.screen
        assert isinstance(screen, StepScreen) and screen.STEP is step  # no dialog
        assert text(screen, "#error") == f"Problem: {error.problem}\nHow to fix: {error.fix}"
        assert screen.query_one("#error").display and not screen.busy
        yield app, pilot
        if retry:
            delattr(services, method)  # the class's answer again
            await press(pilot, retry)
            assert not screen.query_one("#error").display and next_enabled(screen)


async def way_back(step: Step, state: WizardState, services: FakeServices, *,
                   keys: tuple[str, ...] = ()) -> None:
    """``step`` whose work (on opening or after ``keys``) hit a bug (``BOOM``): the
    error view names it and offers the way back; b hands ``state`` back to the flow."""
    async with open_step(step, state, services) as (app, pilot):
        await pilot.press(*keys)
        await until(pilot, lambda: isinstance(app.screen, ErrorView), "the error view")
        view = app.screen
        assert text(view, "#error-problem") == "unexpected RuntimeError: boom"
        assert "Back to the previous step" in str(view.query_one("#error-back", Button).label)
        await press(pilot, "b")
    assert app.outcomes[-1] == Back(state)
