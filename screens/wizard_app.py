"""The wizard app: one flow worker walks the steps of ``wizard.flow``.

Each step is a screen in ``screens/<step>.py`` (``<Step>Screen``), pushed with
``push_screen_wait``; its ``Next``/``Back``/``Quit`` outcome decides the next
step.  A step whose module does not exist yet gets a placeholder screen, so
the app always runs end to end.
"""

from __future__ import annotations

import asyncio
import importlib

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from screens.base import QUIT_QUESTION, ConfirmScreen, StepScreen, css
from screens.problem import ProblemScreen
from wizard.errors import WizardError
from wizard.flow import (
    Back,
    Next,
    Quit,
    Step,
    WizardState,
    after,
    before,
    first,
    has_unsaved_changes,
    rebuilt_before_back,
)
from wizard.services import Services

_CLASS_NAMES = {
    Step.WELCOME: "WelcomeScreen", Step.PARTITION: "PartitionScreen",
    Step.DOCKER: "DockerDaemonScreen", Step.IMAGE: "ImagesScreen",
    Step.TOPLAYER: "ToplayerScreen", Step.INITRAMFS: "InitramfsScreen",
    Step.BOOTLOADER: "BootloaderScreen", Step.REVIEW: "ReviewScreen", Step.DONE: "DoneScreen",
}


class PlaceholderScreen(StepScreen):
    """Stands in for a step whose screen is not built yet: Next/Back only."""

    STEP: Step = Step.WELCOME

    def compose_body(self) -> ComposeResult:
        yield Static(f"Step “{self.STEP.value}” has no screen yet. Press n to go on.",
                     classes="placeholder")


def placeholder_for(step: Step) -> type[StepScreen]:
    """A placeholder screen class for ``step``."""
    name = f"{_CLASS_NAMES[step].removesuffix('Screen')}PlaceholderScreen"
    title = step.value.replace("_", " ").capitalize()
    return type(name, (PlaceholderScreen,), {"STEP": step, "TITLE_TEXT": title})


def _load(step: Step) -> type[Screen]:
    module_name = f"screens.{step.value}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise  # a broken import inside an existing screen must show, not hide
        return placeholder_for(step)
    return getattr(module, _CLASS_NAMES[step], None) or placeholder_for(step)


SCREENS: dict[Step, type[Screen]] = {step: _load(step) for step in Step}
"""Step -> screen class taking ``(state, services)``."""


class DockerbootApp(App[None]):
    """``sudo dockerboot-wizard``: collect a configuration, then apply it."""

    TITLE = "dockerboot-wizard"
    CSS_PATH = css("app")
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, services: Services, *, start_at: Step | None = None,
                 state: WizardState | None = None) -> None:
        super().__init__()
        self.services = services
        self.state = state or WizardState()
        """The latest state: updated on every ``Next``."""
        self.step: Step | None = None
        """The step on screen."""
        self.start_at = start_at
        self.screen_classes: dict[Step, type[Screen]] = dict(SCREENS)
        """Step -> screen class; tests may swap entries before ``run_test``."""
        self.quit_confirmed = False

    def on_mount(self) -> None:
        self.run_flow()

    def unsaved(self) -> bool:
        """Whether quitting now loses input (never after the Done step is reached).

        Besides the state, the step on screen is asked: text typed into it but
        not handed on yet (e.g. the top-layer editor) counts too.
        """
        if self.step == Step.DONE:
            return False
        step_screen = self._step_screen()
        pending = getattr(step_screen, "has_pending_edits", None)
        return has_unsaved_changes(self.state) or bool(pending is not None and pending())

    def _step_screen(self) -> Screen | None:
        # The topmost step screen, also when a dialog is open above it.
        return next((s for s in reversed(self.screen_stack)
                     if isinstance(getattr(s, "state", None), WizardState)), None)

    async def discard_staged(self, *states: WizardState) -> None:
        """Remove staged initramfs builds of ``states`` that will never be installed."""
        done: set[str] = set()
        for state in states:
            staged = state.staged_initramfs
            if not staged or staged in done:
                continue
            done.add(staged)
            try:
                await asyncio.to_thread(self.services.discard_staged, state)
            except (WizardError, OSError) as e:  # leaving anyway; the next build cleans up
                self.notify(f"could not remove the unused build {staged}: {e}",
                            severity="warning")

    async def leave(self) -> None:
        """Exit; a staged build not installed yet (here or on the step screen) goes first."""
        step_screen = self._step_screen()
        states = [self.state, *([step_screen.state] if step_screen is not None else [])]
        # A plan made at Review holds the partition's lock: release it before the
        # staged build is removed (that takes the lock too).
        await asyncio.to_thread(self.services.release_plan)
        await self.discard_staged(*states)  # type: ignore[arg-type]
        self.exit()

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
            self.step = step
            screen = self.screen_classes[step](self.state, self.services)
            outcome = await self.push_screen_wait(screen)
            match outcome:
                case Next(state=new_state):
                    self.state = new_state
                    step = after(step, new_state)
                case Back():
                    here = getattr(screen, "state", self.state)
                    if rebuilt_before_back(step, self.state, here):
                        await self.discard_staged(here)
                        self.state = self.state.with_changes(staged_initramfs=None)
                    step = before(step, self.state)
                case Quit():
                    if self.quit_confirmed or not self.unsaved() or await self.push_screen_wait(
                            ConfirmScreen(QUIT_QUESTION)):
                        await self.discard_staged(self.state, getattr(screen, "state", self.state))
                        self.exit()
                        return
                    self.quit_confirmed = False  # stay on the same step
        self.exit()

    async def action_quit(self) -> None:
        if not self.unsaved():
            await self.leave()
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self.leave()

        self.push_screen(ConfirmScreen(QUIT_QUESTION), answered)


def make_app(services: Services, *, start_at: Step | None = None,
             state: WizardState | None = None) -> DockerbootApp:
    """The wizard app over ``services`` (``RealServices`` or a test fake).

    Args:
        services: what the screens call.
        start_at: open this step first instead of Welcome (tests, snapshots).
        state: the starting state (e.g. settings for a step opened directly).

    """
    return DockerbootApp(services, start_at=start_at, state=state)
