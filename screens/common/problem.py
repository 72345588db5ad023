"""Shown before the first step when the wizard cannot run: what is wrong, how to fix it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from screens.common.base import css
from wizard.common.errors import WizardError


class ProblemScreen(Screen[bool]):
    """Not root, no Docker, no btrfs partition: dismisses True to check again."""

    CSS_PATH = css("problem")
    BINDINGS = [Binding("r", "recheck", "Check again"), Binding("q", "give_up", "Quit")]

    def __init__(self, problem: WizardError) -> None:
        super().__init__()
        self.problem, self.fix = problem.problem, problem.fix

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="box"):
            yield Static("The wizard cannot start", id="title")
            yield Static(self.problem, id="problem", markup=False)
            if self.fix:
                yield Static(f"How to fix: {self.fix}", id="fix", markup=False)
            yield Static("Fix it, then press r to check again, or q to quit.", id="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Problem"

    def action_recheck(self) -> None:
        self.dismiss(True)

    def action_give_up(self) -> None:
        self.dismiss(False)
