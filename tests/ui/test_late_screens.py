"""Pilot tests of the later screens, each pushed on a tiny host App with fake services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rich.syntax import Syntax
from textual.app import App
from textual.screen import Screen
from textual.widgets import Input, Static

from screens.bootloader import BootloaderScreen
from screens.done import DoneScreen
from screens.initramfs import InitramfsScreen
from screens.review import ReviewScreen
from screens.toplayer import ToplayerScreen
from tests.ui.fakes_late import SETTINGS
from wizard.flow import Mode, WizardState

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
    return replace(WizardState(settings=SETTINGS), **changes)


def plain(widget: Static) -> str:
    content = widget.content
    return content.code if isinstance(content, Syntax) else str(content)


def text_of(screen: Screen, selector: str) -> str:
    return plain(screen.query_one(selector, Static))


# (the Top layer step's own tests: tests/ui/test_toplayer_screen.py)


# --- the later steps inside the real app, with the shared FakeServices ---

async def _until(pilot, app, screen_type, ready=lambda screen: True) -> None:
    """Pump the app until a ``screen_type`` is on top and ``ready`` (the app's flow
    worker never completes, so ``workers.wait_for_complete`` would not return)."""
    for _ in range(2000):
        await pilot.pause()
        if isinstance(app.screen, screen_type) and ready(app.screen):
            return
    raise AssertionError(f"{screen_type.__name__} never got ready (at {app.screen!r})")


async def test_app_full_route_from_toplayer_to_done():
    from screens.wizard_app import make_app
    from tests.ui.fakes import FakeServices
    from wizard.flow import Step

    services = FakeServices()
    app = make_app(services, start_at=Step.TOPLAYER, state=state())
    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, app, ToplayerScreen, lambda s: bool(s.files))
        app.screen.query_one("#hostname", Input).value = "desk1"
        app.screen.set_focus(None)
        await pilot.press("n")
        await _until(pilot, app, InitramfsScreen, lambda s: s.state.staged_initramfs is not None)
        await pilot.press("n")
        await _until(pilot, app, BootloaderScreen, lambda s: s.found is not None)
        await pilot.press("n")
        await _until(pilot, app, ReviewScreen, lambda s: s.plan is not None)
        await pilot.press("a")
        await _until(pilot, app, DoneScreen)
    assert ("apply", ("initramfs", "toplayer", "bootloader", "config")) in services.calls
    planned = next(s for name, s in services.calls if name == "preview")
    assert planned.settings.hostname == "desk1"
    assert planned.staged_initramfs == "boot_docker/.build-fake"


async def test_app_reconfigure_route_skips_build_and_boot_entry():
    from screens.wizard_app import make_app
    from tests.ui.fakes import FakeServices
    from wizard.flow import Step

    services = FakeServices()
    st = state(mode=Mode.RECONFIGURE_TOPLAYER, saved=SETTINGS)
    app = make_app(services, start_at=Step.TOPLAYER, state=st)
    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, app, ToplayerScreen, lambda s: bool(s.files))
        app.screen.query_one("#hostname", Input).value = "desk2"
        app.screen.set_focus(None)
        await pilot.press("n")
        await _until(pilot, app, ReviewScreen, lambda s: s.plan is not None)
        await pilot.press("a")
        await _until(pilot, app, DoneScreen)
        from textual.widgets import Markdown
        assert "top layer was updated" in app.screen.query_one(Markdown).source
    assert ("apply", ("toplayer", "config")) in services.calls
    assert not any(name == "build_initramfs" for name, _ in services.calls)
