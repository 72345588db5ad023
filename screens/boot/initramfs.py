"""Initramfs step: build kernel + initramfs inside a container of the image, staged.

Nothing is installed here: the build lands in a staged directory on the
partition and Review installs it, so Cancel (or leaving the wizard) keeps
the previous kernel/initramfs in place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Static
from textual.worker import get_current_worker

from screens.common.base import StepScreen, css
from screens.common.worklog import Relayed, ShowsWork, WorkLog, relay
from wizard.boot.initramfs import BuildTarget
from wizard.common.errors import Cancelled
from wizard.flows.flow import Step, WizardState

if TYPE_CHECKING:
    from wizard.flows.services import Services

CANCELLED = "the build stopped; the previous kernel and initramfs are untouched"
"""What a cancelled build says (nothing was installed, nothing is staged)."""


class InitramfsScreen(StepScreen, ShowsWork):
    """Detect the generator, run the staged build with a live log, Next on success.

    ``busy`` covers detection and the build (Next and Build wait);
    ``building`` only the build (Cancel stops it).  A build started here
    removes the build the state referred to, so from then on the screen's
    state (carried by Back and Quit) has no staged build until it finishes.
    """

    STEP = Step.INITRAMFS
    CSS_PATH = css("initramfs")
    BINDINGS = [
        Binding("r", "build", "Build"),
        Binding("escape", "cancel", "Cancel build"),
    ]

    building: reactive[bool] = reactive(False, init=False)
    """A build runs: Cancel is offered."""

    @dataclass
    class Detected(Message):
        """The generator and kernel were found in the image."""

        target: BuildTarget

    @dataclass
    class Built(Message):
        """The staged build finished."""

        staged: str
        """The staged directory (for ``WizardState.staged_initramfs``)."""
        detail: str
        """Where it went and what was built, for the status line."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.work_log = WorkLog(id="work")

    def compose_body(self) -> ComposeResult:
        yield Static("Looking for the initramfs generator and kernel in the image…",
                     id="target")
        yield Static("", id="status")
        yield self.work_log

    def compose_buttons(self) -> ComposeResult:
        yield Button("Build (r)", id="build", action="screen.build")
        yield Button("Cancel (esc)", id="cancel", variant="warning", disabled=True,
                     action="screen.cancel")

    def on_mount(self) -> None:
        if self.state.staged_initramfs is not None:
            self.show_progress("Already built in this session (r rebuilds).")
        assert self.state.settings is not None
        self.busy = True
        self.run_detect(self.state.settings.image)

    # --- what the base asks ---

    def can_next(self) -> bool:
        return self.state.staged_initramfs is not None

    def work_ended(self, job: str) -> None:
        if self.building:  # the build failed or was cancelled (detection never overlaps it)
            self.building = False
            self.show_progress("Nothing built (r builds again).")

    # --- workers: only post messages ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="initramfs")
    def run_detect(self, image: str) -> None:
        with self.reporting("detect"):
            self.post_message(self.Detected(self.services.detect_initramfs(image)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="initramfs")
    def run_build(self, state: WizardState) -> None:
        seen = Relayed()
        with self.reporting("build", seen.tail):
            try:
                staged = relay(self.services.build_initramfs(
                    state, cancel=get_current_worker().cancelled_event), self, seen=seen)
            except Cancelled:
                raise Cancelled(CANCELLED) from None
            self.post_message(self.Built(str(staged), seen.last_done))

    # --- message handlers and watchers: the only code touching widgets ---

    @on(Detected)
    def show_target(self, message: Detected) -> None:
        t = message.target
        self.query_one("#target", Static).update(
            f"Generator: {t.generator}    kernel: {t.kver} ({t.kernel_path})")
        self.busy = False
        if self.state.staged_initramfs is None:
            self.action_build()

    @on(Built)
    def keep_build(self, message: Built) -> None:
        self.state = replace(self.state, staged_initramfs=message.staged)
        self.work_log.finish()
        self.show_progress(f"Built (installed at Review): {message.detail}")
        self.building = self.busy = False
        self.query_one("#next", Button).focus()

    def show_progress(self, label: str) -> None:
        self.query_one("#status", Static).update(label)

    def watch_building(self) -> None:
        self.update_nav()

    def update_nav(self) -> None:
        super().update_nav()
        if self.query("#build"):
            self.query_one("#build", Button).disabled = self.busy
            self.query_one("#cancel", Button).disabled = not self.building

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "build":
            return not self.busy or None
        if action == "cancel":
            return self.building or None
        return super().check_action(action, parameters)

    def action_build(self) -> None:
        if self.busy:
            return
        self.clear_error()
        self.work_log.reset()
        # The build removes any earlier staged one: from now on there is none.
        self.state = replace(self.state, staged_initramfs=None)
        self.show_progress("Building…")
        self.building = self.busy = True
        self.run_build(self.state)

    def action_cancel(self) -> None:
        if self.building:
            self.show_progress("Cancelling…")
            self.workers.cancel_group(self, "initramfs")
