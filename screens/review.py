"""Review step: everything that will be written, then Apply with progress.

The preview is made in a worker (it runs throwaway containers, e.g. for
users) and shown section by section; nothing stays mounted or locked while
it is shown.  Apply runs ``services.apply``, which plans again from what is
on disk then and writes the steps of the chosen mode (reconfiguring the top
layer writes only the top layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Static
from textual.worker import get_current_worker

from screens.worklog import TAIL_LINES, Relayed, ShowsWork, WorkLog, relay
from wizard.changes import Preview
from wizard.errors import Cancelled
from wizard.faults import message as fault_line
from wizard.flow import Back, Next, Outcome, Quit, WizardState
from wizard.resources import asset
from wizard.services import Services


class ErrorModal(ModalScreen[None]):
    """A failure: the one-line problem + fix and the last lines of the log."""

    CSS_PATH = str(asset("tcss/review.tcss"))
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, problem: str, tail: list[str]) -> None:
        super().__init__()
        self.problem = problem
        self.tail = tail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.problem), id="problem")
            log = "\n".join(self.tail[-TAIL_LINES:]) or "(no log output)"
            yield Static(Text(log), id="tail")
            yield Button("Close (esc)", id="close", variant="primary")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#close")
    def _close(self) -> None:
        self.dismiss(None)


class ReviewScreen(ShowsWork, Screen[Outcome]):
    """Show the plan, then apply it."""

    CSS_PATH = str(asset("tcss/review.tcss"))
    BINDINGS = [
        Binding("a", "apply", "Apply"),
        Binding("escape", "cancel", "Cancel"),
        Binding("b", "back", "Back"),
        Binding("q", "quit_wizard", "Quit"),
    ]

    @dataclass
    class Planned(Message):
        """The preview is ready to show."""

        preview: Preview

    @dataclass
    class Applied(Message):
        """Everything was written."""

    @dataclass
    class Failed(Message):
        """Planning or applying failed or was cancelled."""

        problem: str
        tail: list[str]
        cancelled: bool = False
        applying: bool = False
        """The failure ended an Apply attempt (not the planning)."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        self.services = services
        self.steps = state.writes
        self.plan: Preview | None = None
        """The preview shown (None: not made yet, or used up by an Apply attempt)."""
        self.applying = False
        """An Apply attempt is running (Back and Quit wait for it or its cancel)."""
        self.retry_note = ""
        """Set after a failed or cancelled Apply: shown with the new plan."""
        self.busy = False
        self.work_log = WorkLog(id="work")
        self.work_log.display = False  # room for the plan until Apply starts

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Working out what will be written…", id="status")
        yield VerticalScroll(id="sections")
        yield self.work_log
        with Horizontal(id="buttons"):
            yield Button("Back", id="back")
            yield Button("Apply (a)", id="apply", variant="success", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Review"
        self.busy = True
        self.make_plan()

    # --- workers ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def make_plan(self) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            # The core validates the settings first, as for the CLI (e.g. a reserved
            # kernel option in a saved config), before anything is mounted.
            preview = self.services.preview(self.state, cancel=cancel)
        except Cancelled as e:
            self.post_message(self.Failed(str(e), [], cancelled=True))
            return
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e), getattr(e, "log_tail", [])))
            return
        self.post_message(self.Planned(preview))

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def run_apply(self) -> None:
        cancel = get_current_worker().cancelled_event
        seen = Relayed()
        try:
            relay(self.services.apply(self.state, cancel=cancel),
                  self, steps=len(self.steps), seen=seen)
        except Cancelled as e:
            self.post_message(self.Failed(str(e), list(seen.tail), cancelled=True,
                                          applying=True))
            return
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e),
                                          [*seen.tail, *getattr(e, "log_tail", [])],
                                          applying=True))
            return
        self.post_message(self.Applied())

    # --- handlers ---

    def on_review_screen_planned(self, message: Planned) -> None:
        self.busy = False
        self.plan = message.preview
        box = self.query_one("#sections", VerticalScroll)
        box.remove_children()  # a plan made again after a failed attempt replaces the old
        for section in message.preview.sections:
            box.mount(Static(Text(section.title, style="bold"), classes="title"))
            body = (Syntax(section.body, "diff", theme="ansi_dark", word_wrap=True)
                    if section.body.startswith(("---", "Binary")) else Text(section.body))
            box.mount(Static(body, classes="body"))
        what = ", ".join(self.steps)
        if self.retry_note:
            self._status(f"{self.retry_note} The plan was made again from what is on disk "
                         f"now: Apply (a) writes: {what}.")
        else:
            self._status(f"Nothing has been written yet. Apply (a) writes: {what}.")
        self.query_one("#apply", Button).disabled = False
        self.refresh_bindings()

    def show_progress(self, label: str) -> None:
        self._status(f"Applying… {label}")

    def on_review_screen_applied(self, message: Applied) -> None:
        self.busy = self.applying = False
        # Passwords served their purpose; the staged build is installed now.
        settings = self.state.settings
        self.dismiss(Next(self.state.with_changes(saved=settings, passwords={},
                                                  staged_initramfs=None)))

    def on_review_screen_failed(self, message: Failed) -> None:
        self.busy = False
        self.applying = self.applying and not message.applying
        if message.applying:
            # Part of the attempt may be written: the preview no longer shows what
            # Apply would do, so Apply again waits for a new one.
            self.plan = None
            self.retry_note = (f"Cancelled: {message.problem}." if message.cancelled
                               else f"Failed: {message.problem}.")
        self.query_one("#apply", Button).disabled = self.plan is None
        self.refresh_bindings()
        if message.cancelled:
            self._status(f"Cancelled: {message.problem}")
        else:
            self._status(f"Failed: {message.problem}")
            self.query_one("#status", Static).add_class("error")
            self.app.push_screen(ErrorModal(message.problem, message.tail))
        if message.applying:
            self.busy = True
            self.make_plan()

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(Text(text))

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return self.plan is not None and not self.busy
        if action == "cancel":
            return self.busy
        return True

    def action_apply(self) -> None:
        if self.plan is None or self.busy:
            return
        self.busy = self.applying = True
        self.query_one("#status", Static).remove_class("error")
        self.query_one("#apply", Button).disabled = True
        self.refresh_bindings()
        self._status("Applying…")
        self.work_log.display = True
        self.plan = None  # one preview, one attempt
        self.run_apply()

    def action_cancel(self) -> None:
        if self.busy:
            self._status("Cancelling…")
            self.workers.cancel_group(self, "review")

    def action_back(self) -> None:
        if self.applying:
            return  # applying: cancel (escape) first, leaving mid-write helps no one
        self.workers.cancel_group(self, "review")
        self.dismiss(Back())

    def action_quit_wizard(self) -> None:
        if self.applying:
            return  # applying: cancel (escape) first
        self.workers.cancel_group(self, "review")
        self.dismiss(Quit())

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.action_apply()
