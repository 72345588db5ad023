"""Update step: a new generation for what the tag is now, or the previous one again.

The plan (``wizard.flows.update``: build or copy, the refind.conf diff) is made in
a worker and shown; Apply (a) plans again under the partition's lock and
carries it out, with the work log.  Nothing is written before Apply, and
nothing stays mounted or locked between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, Static
from textual.worker import get_current_worker

from screens.common.applying import PlanThenApply
from screens.common.base import css
from screens.common.worklog import Relayed, WorkLog, relay
from wizard.flows.flow import Mode, Next, Step, WizardState

if TYPE_CHECKING:
    from wizard.flows.services import Services
    from wizard.flows.update import UpdatePlan


class UpdateScreen(PlanThenApply):
    """Show what ``update`` (or ``rollback``) will do, then do it."""

    STEP = Step.UPDATE
    CSS_PATH = css("update")
    AUTO_FOCUS = "#apply"

    @dataclass
    class Planned(Message):
        """The plan is ready to show."""

        plan: UpdatePlan

    @dataclass
    class Updated(Message):
        """Everything was written."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.rollback = state.mode is Mode.ROLLBACK
        self.work_log = WorkLog(id="work")
        self.work_log.display = False

    def compose_body(self) -> ComposeResult:
        yield Static("Working out what changes…", id="status")
        with VerticalScroll(id="plan"):
            yield Static("", id="plan-text", markup=False)
        yield self.work_log

    def compose_buttons(self) -> ComposeResult:
        yield Button("Apply (a)", id="apply", variant="success", disabled=True,
                     action="screen.apply")

    def on_mount(self) -> None:
        self.busy = True
        self.run_plan()

    def work_ended(self, job: str) -> None:
        self.applying = False

    @work(thread=True, exclusive=True, exit_on_error=False, group="update")
    def run_plan(self) -> None:
        assert self.state.settings is not None
        with self.reporting("plan"):
            self.post_message(self.Planned(self.services.preview_update(
                self.state.settings, rollback=self.rollback)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="update")
    def run_apply(self) -> None:
        assert self.state.settings is not None
        seen = Relayed()
        with self.reporting("apply", seen.tail):
            cancel = get_current_worker().cancelled_event
            relay(self.services.run_update(self.state.settings, rollback=self.rollback,
                                           cancel=cancel), self, steps=2, seen=seen)
            self.post_message(self.Updated())

    @on(Planned)
    def show_plan(self, message: Planned) -> None:
        self.busy = False
        self.plan = message.plan
        self.query_one("#plan-text", Static).update(Text(message.plan.text))
        nothing = message.plan.new is None and not message.plan.writes_entries
        self.set_status("Up to date: nothing to do." if nothing else
                     "Nothing has been written yet. Apply (a) makes it the default for the "
                     "next boot.")

    @on(Updated)
    def finish(self) -> None:
        self.busy = self.applying = False
        self.leave(Next(replace(self.state, saved=self.state.settings)))

    def can_apply(self) -> bool:
        p = self.plan
        return super().can_apply() and (p.new is not None or p.writes_entries)

    def action_apply(self) -> None:
        if self.start_applying():
            self.run_apply()
