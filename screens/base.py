"""What every step screen shares: the state, the services, Next/Back/Quit.

A step screen is a ``Screen[Outcome]``: it gets the ``WizardState`` and the
``Services`` in ``__init__`` and hands back ``Next(state)``, ``Back()`` or
``Quit()`` with ``dismiss``; the app's flow worker decides what comes next.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Label

from wizard.flow import Back, Next, Outcome, Quit, WizardState, has_unsaved_changes
from wizard.resources import asset
from wizard.services import Services


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
            yield Button("Yes", id="yes", variant="error")
            yield Button("No", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


QUIT_QUESTION = "Quit without applying? What you entered is lost."


def quit_asking(screen: Screen[Outcome], state: WizardState, pending: bool) -> None:
    """Dismiss ``screen`` with ``Quit``, asking first when input would be lost."""
    if not has_unsaved_changes(state) and not pending:
        screen.dismiss(Quit())
        return

    def answered(yes: bool | None) -> None:
        if yes:
            screen.app.quit_confirmed = True  # type: ignore[attr-defined]
            screen.dismiss(Quit())

    screen.app.push_screen(ConfirmScreen(QUIT_QUESTION), answered)


class StepScreen(Screen[Outcome]):
    """Base of the step screens: header, body, Back/Next buttons, footer."""

    BINDINGS = [
        Binding("n", "next", "Next"),
        Binding("b", "back", "Back"),
        Binding("q", "quit_wizard", "Quit"),
    ]
    AUTO_FOCUS = "#next"
    TITLE_TEXT = ""
    """Shown as the screen's sub-title."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        self.services = services

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="body"):  # padded; header and footer stay full width
            yield from self.compose_body()
        with Horizontal(classes="nav"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary")
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The step's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        self.sub_title = self.TITLE_TEXT
        self.update_nav()

    # --- what subclasses decide ---

    def can_next(self) -> bool:
        """Whether Next is allowed now (e.g. no unresolved problem)."""
        return True

    def next_state(self) -> WizardState:
        """The state handed to the next step."""
        return self.state

    def has_pending_edits(self) -> bool:
        """Whether the screen holds input not in ``state`` yet (asked before quitting)."""
        return False

    # --- navigation ---

    def update_nav(self) -> None:
        """Enable or disable Next (button and footer key) after a change."""
        self.query_one("#next", Button).disabled = not self.can_next()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next" and not self.can_next():
            return None  # shown dimmed in the footer, not hidden
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            event.stop()
            self.action_next()
        elif event.button.id == "back":
            event.stop()
            self.action_back()

    def action_next(self) -> None:
        if self.can_next():
            self.dismiss(Next(self.next_state()))

    def action_back(self) -> None:
        self.dismiss(Back())

    def action_quit_wizard(self) -> None:
        quit_asking(self, self.state, self.has_pending_edits())
