"""The wizard app: one flow worker walks the route of ``wizard.flows.flow`` from outcomes alone.

Each step is a ``StepScreen`` (``screen_class`` maps a step to its class),
pushed with ``push_screen_wait``; its ``Next``/``Back``/``Quit`` outcome
carries the state and decides the next step.  A screen module is imported
when its step is first reached, so the first screen paints before the
heavier ones (and the core behind them) are loaded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding

from screens.common.base import StepScreen, css
from screens.common.problem import ProblemScreen
from wizard.common.errors import WizardError
from wizard.flows.flow import (
    Back,
    Mode,
    Next,
    Quit,
    Step,
    WizardState,
    after,
    before,
    first,
    rebuilt,
)

if TYPE_CHECKING:
    from wizard.flows.services import Services


SCREENSHOTS = Path(os.environ.get("DOCKERBOOT_WIZARD_SCREENSHOTS",
                                  "/var/tmp/dockerboot-wizard/screenshots"))
"""Where the command palette's Screenshot writes (Textual's default, ~/Downloads,
rarely exists for root); the notification names the file."""


def screen_class(step: Step, mode: Mode = Mode.FULL) -> type[StepScreen]:
    """The screen class of ``step`` on ``mode``'s route (a static, typed registry; imports on
    first use).  A new machine's Review installs: a screen of its own."""
    match step:
        case Step.WELCOME:
            from screens.flows.welcome import WelcomeScreen
            return WelcomeScreen
        case Step.DISK:
            from screens.disk.new_disk import NewDiskScreen
            return NewDiskScreen
        case Step.REVIEW if mode is Mode.NEW_MACHINE:
            from screens.flows.install_review import InstallReviewScreen
            return InstallReviewScreen
        case Step.PARTITION:
            from screens.disk.partition import PartitionScreen
            return PartitionScreen
        case Step.DOCKER:
            from screens.store.docker_daemon import DockerDaemonScreen
            return DockerDaemonScreen
        case Step.IMAGE:
            from screens.store.images import ImagesScreen
            return ImagesScreen
        case Step.TOPLAYER:
            from screens.toplayer.toplayer import ToplayerScreen
            return ToplayerScreen
        case Step.INITRAMFS:
            from screens.boot.initramfs import InitramfsScreen
            return InitramfsScreen
        case Step.BOOTLOADER:
            from screens.boot.bootloader import BootloaderScreen
            return BootloaderScreen
        case Step.REVIEW:
            from screens.flows.review import ReviewScreen
            return ReviewScreen
        case Step.UPDATE:
            from screens.flows.update import UpdateScreen
            return UpdateScreen
        case Step.DONE:
            from screens.flows.done import DoneScreen
            return DoneScreen


class DockerbootApp(App[None]):
    """``sudo dockerboot-wizard``: collect a configuration, then apply it."""

    TITLE = "dockerboot-wizard"
    CSS_PATH = css("app")
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, services: Services, *, start_at: Step | None = None,
                 state: WizardState | None = None,
                 screens: Mapping[Step, type[StepScreen]] | None = None) -> None:
        super().__init__()
        self.services = services
        self.state = state or WizardState()
        """The latest state: updated on every outcome."""
        self.start_at = start_at
        self.screens = dict(screens or {})
        """Step -> screen class overriding ``screen_class`` (tests)."""
        self.current: StepScreen | None = None
        """The step screen the flow is waiting on."""
        self.step: Step | None = None
        """The step shown last (kept after the wizard ends)."""

    def on_mount(self) -> None:
        self.run_flow()

    def screen_for(self, step: Step) -> StepScreen:
        """A new screen for ``step`` over the current state."""
        cls = self.screens.get(step) or screen_class(step, self.state.mode)
        return cls(self.state, self.services)

    async def discard_build(self, state: WizardState) -> None:
        """Remove ``state``'s staged initramfs build: it will never be installed."""
        if not state.staged_initramfs:
            return
        try:
            await asyncio.to_thread(self.services.discard_staged, state)
        except (WizardError, OSError) as e:  # leaving anyway; the next build cleans up
            self.notify(f"could not remove the unused build {state.staged_initramfs}: {e}",
                        severity="warning")

    async def check_environment(self) -> bool:
        """Show the problem screen until the environment is fine; False = give up."""
        while True:
            env = await asyncio.to_thread(self.services.environment)
            if env.problem is None:
                return True
            if not await self.push_screen_wait(ProblemScreen(env.problem)):
                return False

    @work(exclusive=True, group="flow")
    async def run_flow(self) -> None:
        if not await self.check_environment():
            self.exit()
            return
        step: Step | None = self.start_at or first()
        while step is not None:
            self.step, self.current = step, self.screen_for(step)
            outcome = await self.push_screen_wait(self.current)
            self.current = None
            match outcome:
                case Next(state=state):
                    self.state = state
                    step = after(step, state)
                case Back(state=state) | Quit(state=state) if rebuilt(self.state, state):
                    # A build made on this visit was never handed on: it goes now.
                    await self.discard_build(state)
                    self.state = replace(self.state, staged_initramfs=None)
                    step = None if isinstance(outcome, Quit) else before(step, self.state)
                case Back():
                    step = before(step, self.state)
                case Quit():
                    step = None
        # Done leaves nothing staged (Review installed it); a Quit may leave a build
        # that was never installed: it goes with the wizard.
        await self.discard_build(self.state)
        self.exit()

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """Save an SVG of the screen in ``SCREENSHOTS`` (or ``path``) and say where."""
        where = Path(path) if path else SCREENSHOTS
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.notify(f"cannot save a screenshot in {where}: {e.strerror} — set "
                        "DOCKERBOOT_WIZARD_SCREENSHOTS to a writable directory",
                        title="Screenshot", severity="error")
            return None
        return super().deliver_screenshot(filename, str(where), time_format)

    async def action_quit(self) -> None:
        """Ctrl+Q: the step on screen applies the quit rule (asks if input would be lost)."""
        if self.current is not None:
            self.current.action_quit_wizard()
        else:
            self.exit()


def make_app(services: Services, *, start_at: Step | None = None,
             state: WizardState | None = None,
             screens: Mapping[Step, type[StepScreen]] | None = None) -> DockerbootApp:
    """The wizard app over ``services`` (``RealServices`` or a test fake).

    Args:
        services: what the screens call.
        start_at: open this step first instead of Welcome (tests, snapshots).
        state: the starting state (e.g. settings for a step opened directly).
        screens: step -> screen class, replacing the real ones (tests).

    """
    return DockerbootApp(services, start_at=start_at, state=state, screens=screens)
