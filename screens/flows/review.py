"""Review step: everything that will be written, then Apply with progress.

The preview is made in a worker (it runs throwaway containers, e.g. for
users) and shown section by section; Apply runs the same core ``apply`` as
the CLI for the steps of the chosen mode (reconfiguring the top layer writes
only the top layer).  Neither keeps anything mounted or locked between them:
Apply plans again from what is on disk then.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, Static
from textual.worker import get_current_worker

from screens.common.applying import PlanThenApply
from screens.common.base import css
from screens.common.worklog import Relayed, WorkLog, relay
from wizard.flows.flow import Next, Step, WizardState

if TYPE_CHECKING:
    from wizard.flows.changes import Preview
    from wizard.flows.services import Services


class ReviewScreen(PlanThenApply):
    """Show the preview, then apply it; a failed or cancelled Apply previews again.

    ``busy`` covers the preview and Apply; ``applying`` only Apply (Back and
    Quit wait for it or its cancel: leaving mid-write helps no one).
    """

    STEP = Step.REVIEW
    CSS_PATH = css("review")
    AUTO_FOCUS = "#apply"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("y", "default_entry('yes')", "Wizard's default entry"),
        Binding("n", "default_entry('no')", "Keep my default_selection"),
    ]

    @dataclass
    class Previewed(Message):
        """The preview is ready to show."""

        preview: Preview

    @dataclass
    class Applied(Message):
        """Everything was written."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.steps = state.writes
        self.retry_note = ""
        """Set after a failed or cancelled Apply: shown with the new preview."""
        self.work_log = WorkLog(id="work")
        self.work_log.display = False  # room for the preview until Apply starts

    def compose_body(self) -> ComposeResult:
        yield Static("Working out what will be written…", id="status")
        yield VerticalScroll(id="sections")
        yield self.work_log

    def compose_buttons(self) -> ComposeResult:
        yield Button("Apply (a)", id="apply", variant="success", disabled=True,
                     action="screen.apply")

    def on_mount(self) -> None:
        self.start_preview()

    # --- what the base asks ---

    def work_ended(self, job: str) -> None:
        if job == "apply":
            self.applying = False
            # Part of the attempt may be written: the old preview no longer shows
            # what Apply would do, so Apply again waits for a new one.
            self.retry_note = "The last Apply did not finish."
            self.start_preview()

    # --- workers: only post messages ---

    def start_preview(self) -> None:
        self.busy = True
        self.plan = None
        self.run_preview()

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def run_preview(self) -> None:
        with self.reporting("preview"):
            cancel = get_current_worker().cancelled_event
            self.post_message(self.Previewed(self.services.preview(self.state, cancel=cancel)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def run_apply(self) -> None:
        seen = Relayed()
        with self.reporting("apply", seen.tail):
            cancel = get_current_worker().cancelled_event
            relay(self.services.apply(self.state, cancel=cancel), self,
                  steps=len(self.steps), seen=seen)
            self.post_message(self.Applied())

    # --- message handlers and watchers: the only code touching widgets ---

    @on(Previewed)
    def show_preview(self, message: Previewed) -> None:
        self.busy = False
        self.plan = message.preview
        box = self.query_one("#sections", VerticalScroll)
        box.remove_children()  # a preview made again after a failed attempt replaces the old
        for section in message.preview.sections:
            box.mount(Static(Text(section.title, style="bold"), classes="title"))
            body = (Syntax(section.body, "diff", theme="ansi_dark", word_wrap=True)
                    if section.body.startswith(("---", "Binary")) else Text(section.body))
            box.mount(Static(body, classes="body"))
        what = ", ".join(self.steps)
        self.refresh_bindings()
        if message.preview.default_question:
            loader = "GRUB" if message.preview.plan.chain is not None else "rEFInd"
            self.set_status(f"{loader} has its own default entry (see Default entry): y "
                            f"makes the wizard's default entry {loader}'s default, n keeps "
                            "yours.")
        elif self.retry_note:
            self.set_status(f"{self.retry_note} The plan was made again from what is on disk "
                         f"now: Apply (a) writes: {what}.")
        else:
            self.set_status(f"Nothing has been written yet. Apply (a) writes: {what}.")

    @on(Applied)
    def finish(self) -> None:
        self.busy = self.applying = False
        # Passwords and edits served their purpose; the staged build is installed now.
        self.leave(Next(replace(self.state, saved=self.state.settings, passwords={},
                                toplayer_edits={}, staged_initramfs=None)))

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.busy or None
        if action == "default_entry":
            # Shown only while refind.conf has the user's own default_selection unanswered.
            return bool(not self.busy and self.plan is not None and self.plan.default_question)
        return super().check_action(action, parameters)

    def action_default_entry(self, choice: str) -> None:
        # The answer is a setting (saved with the config); the preview is made again with it.
        settings = self.state.settings
        if settings is not None:
            self.state = replace(self.state, settings=replace(settings, default_entry=choice))
            self.start_preview()

    def action_apply(self) -> None:
        if self.start_applying():
            self.run_apply()

    def action_cancel(self) -> None:
        if self.busy:
            self.set_status("Cancelling…")
            self.workers.cancel_group(self, "review")

