"""The shared shape of Review and Update: a plan is shown, then Apply (a) writes it.

Apply is enabled only while a plan is shown and nothing runs; an attempt uses
the plan up (a failed one leaves the screen to make a new one) and shows the
work log.  Back and Quit wait while Apply runs.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Button, Static

from screens.common.base import StepScreen
from screens.common.worklog import ShowsWork


class PlanThenApply(StepScreen, ShowsWork):
    """Base of a step whose body is a plan (``#status``, ``#apply``, ``work_log``)."""

    BINDINGS = [Binding("a", "apply", "Apply")]
    """Each subclass has its ``action_apply``; shown while ``can_apply``."""

    plan: reactive[Any] = reactive(None, init=False)
    """The plan shown (None: not made yet, or used up by an Apply attempt)."""
    applying: reactive[bool] = reactive(False, init=False)
    """An Apply attempt runs."""

    def can_next(self) -> bool:
        return False  # Apply is the way on; Next comes with its success

    def can_leave(self) -> bool:
        return not self.applying

    def watch_plan(self) -> None:
        self.update_nav()

    def watch_applying(self) -> None:
        self.update_nav()

    def update_nav(self) -> None:
        super().update_nav()
        if self.query("#apply"):
            self.query_one("#apply", Button).disabled = not self.can_apply()

    def can_apply(self) -> bool:
        """Whether Apply may start now."""
        return self.plan is not None and not self.busy

    def set_status(self, text: str) -> None:
        """Show ``text`` on the status line above the plan."""
        self.query_one("#status", Static).update(Text(text))

    def show_progress(self, label: str) -> None:
        self.set_status(f"Applying… {label}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "apply":
            return self.can_apply() or None
        return super().check_action(action, parameters)

    def start_applying(self) -> bool:
        """Begin an attempt (status, work log, the plan used up); False when not allowed."""
        if not self.can_apply():
            return False
        self.clear_error()
        self.busy = self.applying = True
        self.set_status("Applying…")
        self.work_log.display = True
        self.work_log.reset()
        self.plan = None  # one plan, one attempt
        return True
