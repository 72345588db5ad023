"""What every step screen shares: layout, Next/Back/Quit, the quit rule, the error path.

A step screen is a ``StepScreen``: it gets the ``WizardState`` and the
``Services`` in ``__init__`` and hands back ``Next(state)``, ``Back(state)``
or ``Quit(state)`` with ``dismiss``; the app's flow worker decides from the
outcome alone what comes next.  The base owns the header, the step
indicator, the nav row, the footer bindings and the quit rule; a screen
adds its body (``compose_body``), extra buttons (``compose_buttons``) and
what it decides (``can_next``, ``next_state``, …).

Core work runs in thread workers wrapped in ``reporting``: whatever it
raises becomes one ``StepScreen.Failed`` message, shown by one handler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Label, Static
from textual.worker import Worker, WorkerState

from wizard.common.errors import Cancelled, WizardError
from wizard.common.faults import describe, is_unexpected
from wizard.common.resources import asset
from wizard.flows.flow import (
    ROUTES,
    Back,
    Next,
    Outcome,
    Quit,
    Step,
    WizardState,
    has_unsaved_changes,
    position,
)

if TYPE_CHECKING:
    from wizard.flows.services import Services

TAIL_LINES = 30
"""Log lines kept for an error dialog."""


def css(name: str) -> str:
    """Path of a stylesheet in ``assets/tcss`` (for ``CSS_PATH``)."""
    return str(asset(f"tcss/{name}.tcss"))


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; dismisses with True for yes."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No"),
                Binding("escape", "answer(False)", "No", show=False)]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Horizontal(id="dialog"):
            yield Label(self.question, id="question")
            yield Button("Yes", id="yes", variant="error", action="screen.answer(True)")
            yield Button("No", id="no", variant="primary", action="screen.answer(False)")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


QUIT_QUESTION = "Quit without applying? What you entered is lost."


class ErrorView(ModalScreen[bool]):
    """A failure: problem, fix, the last log lines; dismisses True for "go back".

    ``way_back`` (a worker died unexpectedly: the step cannot go on) offers
    Back to the previous step next to Stay.
    """

    CSS_PATH = css("app")
    BINDINGS = [Binding("escape", "close", "Close"),
                Binding("b", "back", "Back to the previous step", show=False)]

    def __init__(self, error: WizardError, tail: Iterable[str] = (), *,
                 way_back: bool = False) -> None:
        super().__init__()
        self.error = error
        self.tail = list(tail)[-TAIL_LINES:]
        self.way_back = way_back

    def compose(self) -> ComposeResult:
        with Vertical(id="error-dialog"):
            yield Static(Text(self.error.problem), id="error-problem")
            if self.error.fix:
                yield Static(Text(f"How to fix: {self.error.fix}"), id="error-fix")
            with VerticalScroll(id="error-tail"):
                yield Static(Text("\n".join(self.tail) or "(no log output)"))
            with Horizontal(id="error-buttons"):
                if self.way_back:
                    yield Button("Back to the previous step (b)", id="error-back",
                                 variant="primary", action="screen.back")
                yield Button("Close (esc)", id="error-close", action="screen.close")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#error-back" if self.way_back else "#error-close", Button).focus()

    def action_close(self) -> None:
        self.dismiss(False)

    def action_back(self) -> None:
        if self.way_back:
            self.dismiss(True)


class StepIndicator(Static):
    """``4/9`` and the route's steps, the current one highlighted."""

    def __init__(self, step: Step, state: WizardState) -> None:
        super().__init__(id="steps")
        n, total = position(step, state)
        # Nine steps must fit 100 columns: the title is in the header already.
        text = Text(f"{n}/{total}  ", style="bold")
        for i, s in enumerate(ROUTES[state.mode].steps, start=1):
            text.append(" › " if i > 1 else "", style="dim")
            text.append(TITLES[s], style="reverse bold" if i == n else "dim")
        self.update(text)


TITLES: dict[Step, str] = {
    Step.WELCOME: "Welcome", Step.DISK: "Disk", Step.PARTITION: "Partition", Step.DOCKER: "Docker",
    Step.IMAGE: "Image", Step.TOPLAYER: "Top layer", Step.INITRAMFS: "Initramfs",
    Step.BOOTLOADER: "Boot entry", Step.REVIEW: "Review", Step.UPDATE: "Update",
    Step.DONE: "Done",
}
"""What the step indicator and the sub-title call each step."""


class StepScreen(Screen[Outcome]):
    """Base of every step screen: header, step indicator, body, nav row, footer."""

    STEP: ClassVar[Step]
    """Which step this screen is."""
    NEXT_LABEL: ClassVar[str] = "Next"
    """The Next button's text (Done says Finish)."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "next", "Next"),
        Binding("b", "back", "Back"),
        Binding("q", "quit_wizard", "Quit"),
    ]
    AUTO_FOCUS = "#next"

    busy: reactive[bool] = reactive(False, init=False)
    """Core work runs for this screen: Next waits, the nav row follows."""

    @dataclass
    class Failed(Message):
        """Core work of this screen failed, was cancelled or died unexpectedly."""

        job: str
        """Which work (the screen's own name for it, e.g. ``"build"``)."""
        error: WizardError
        """What to show: problem and fix (``Cancelled`` when cancelled)."""
        tail: list[str]
        """The last log lines before the failure."""
        unexpected: bool = False
        """Not a fault the core knows (a bug): shown with a way back."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        """The state as this screen has it (its Next/Back/Quit carry it)."""
        self.services = services

    # --- layout ---

    def compose(self) -> ComposeResult:
        yield Header()
        yield StepIndicator(self.STEP, self.state)
        with Vertical(id="body"):  # padded; header and footer stay full width
            yield from self.compose_body()
        yield Static("", id="error", classes="error")
        with Horizontal(classes="nav"):
            yield Button("Back", id="back", action="screen.back")
            yield from self.compose_buttons()
            yield Button(self.NEXT_LABEL, id="next", variant="primary", action="screen.next")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The step's own widgets."""
        yield from ()

    def compose_buttons(self) -> ComposeResult:
        """Buttons of the step between Back and Next (e.g. Build)."""
        yield from ()

    def on_mount(self) -> None:
        # Textual calls this after a subclass's own on_mount (handlers run up the MRO).
        self.sub_title = TITLES[self.STEP]
        self.query_one("#error", Static).display = False
        self.update_nav()

    # --- what subclasses decide ---

    def can_next(self) -> bool:
        """Whether Next is allowed now (the base adds: nothing is running)."""
        return True

    def can_leave(self) -> bool:
        """Whether Back and Quit are allowed now (e.g. not while applying)."""
        return True

    def next_state(self) -> WizardState:
        """The state handed to the next step."""
        return self.state

    def has_pending_edits(self) -> bool:
        """Whether the screen holds input not in ``state`` yet (asked before quitting)."""
        return False

    def work_ended(self, job: str) -> None:
        """Work ``job`` ended by failing or being cancelled: reset what it set."""

    # --- nav row ---

    def watch_busy(self) -> None:
        self.update_nav()

    def update_nav(self) -> None:
        """Enable or disable Next and Back (buttons and footer keys) after a change."""
        if not self.query("#next"):
            return  # not composed yet (a reactive set in __init__)
        self.query_one("#next", Button).disabled = not self._next_allowed()
        self.query_one("#back", Button).disabled = not self.can_leave()
        self.refresh_bindings()

    def _next_allowed(self) -> bool:
        return not self.busy and self.can_next()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next" and not self._next_allowed():
            return None  # shown dimmed in the footer, not hidden
        if action in ("back", "quit_wizard") and not self.can_leave():
            return None
        return True

    def action_next(self) -> None:
        if self._next_allowed():
            self.leave(Next(self.next_state()))

    def action_back(self) -> None:
        if self.can_leave():
            self.leave(Back(self.state))

    def action_quit_wizard(self) -> None:
        """Quit, asking first when input would be lost (the one quit rule)."""
        if not self.can_leave():
            return
        if not has_unsaved_changes(self.state) and not self.has_pending_edits():
            self.leave(Quit(self.state))
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.leave(Quit(self.state))

        self.app.push_screen(ConfirmScreen(QUIT_QUESTION), answered)

    def leave(self, outcome: Outcome) -> None:
        """Stop this screen's work and hand ``outcome`` to the flow."""
        self.workers.cancel_node(self)
        self.dismiss(outcome)

    # --- the one error path ---

    @contextlib.contextmanager
    def reporting(self, job: str, tail: Iterable[str] = ()) -> Iterator[None]:
        """Run core work in a worker thread; whatever it raises is posted as ``Failed``.

        ``tail`` (e.g. a ``Relayed.tail`` filled while the work runs) is read
        when it fails, with the error's own ``log_tail`` after it.
        """
        try:
            yield
        except Exception as e:  # noqa: BLE001 — every fault is shown, never a stuck screen
            lines = list(tail)
            # A build's own tail usually repeats what was relayed already.
            lines += [line for line in getattr(e, "log_tail", []) if line not in set(lines)]
            self.post_message(self.Failed(job, describe(e), lines, unexpected=is_unexpected(e)))

    @on(Failed)
    def show_failure(self, message: Failed) -> None:
        self.busy = False
        self.work_ended(message.job)
        self.show_error(message.error, message.tail, unexpected=message.unexpected)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Work that escaped ``reporting`` (a bug in the screen itself) still ends visibly.
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.busy = False
            self.work_ended(event.worker.group)
            self.show_error(describe(event.worker.error), unexpected=True)

    def show_error(self, error: WizardError, tail: Iterable[str] = (), *,
                   unexpected: bool = False) -> None:
        """Show ``error`` on the error line; a log tail or a bug also in a dialog."""
        line = self.query_one("#error", Static)
        cancelled = isinstance(error, Cancelled)
        line.set_class(not cancelled, "error")
        fix = f"\nHow to fix: {error.fix}" if error.fix and not cancelled else ""
        line.update(Text(f"{'Cancelled' if cancelled else 'Problem'}: {error.problem}{fix}"))
        line.display = True
        tail = list(tail)
        if unexpected or (tail and not cancelled):
            def answered(back: bool | None) -> None:
                if back:
                    self.dismiss(Back(self.state))  # the worker is gone already

            self.app.push_screen(ErrorView(error, tail, way_back=unexpected), answered)

    def clear_error(self) -> None:
        """Hide the error line (new work starts)."""
        line = self.query_one("#error", Static)
        line.update("")
        line.display = False


