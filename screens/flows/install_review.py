"""Review of a new machine: the disk's plan, what follows it, then Apply installs.

The plan is made again when the screen opens (the disk as it is now, so what
Apply writes is what is shown) and after a failed or cancelled attempt (a
rerun carries on from what the attempt made: a partition made before is not
formatted again).  A whole disk is lost only after its device name is typed
(``disks.typed_confirms``, ``install``'s own question).  Apply runs
``Services.install`` — the disk, the store, the image, then apply and the
firmware's entry — in the same work log as apply.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Static
from textual.worker import get_current_worker

from screens.common.applying import PlanThenApply
from screens.common.base import css
from screens.common.worklog import Relayed, WorkLog, relay
from wizard.disk.disks import Chosen, typed_confirms
from wizard.flows.flow import Next, Step, WizardState

if TYPE_CHECKING:
    from wizard.flows.services import Services

OWN_STEPS = ("disk", "image", "firmware")
"""Install's steps around apply's (``wizard.install.flow``): the progress bar counts them."""


def sections(state: WizardState, chosen: Chosen) -> list[tuple[str, str]]:
    """The review's sections: (title, body) for the disk, the image and the machine."""
    s = state.settings
    image = s.image if s else "the image"
    label = chosen.target.label
    machine = [f"hostname: {s.hostname}" if s and s.hostname else "hostname: the image's"]
    if s and s.users:
        machine.append(f"users: {', '.join(s.users)}"
                       + (f" (administrators: {', '.join(s.admins)})" if s.admins else ""))
    machine += [f"top layer file: {path}" for path in sorted(state.toplayer_edits)]
    return [
        ("The disk", chosen.describe()),
        ("Then", f"{image} into a docker store of its own on LABEL={label} (from this "
                 "machine's docker, else pulled); kernel, initramfs and the boot chain on "
                 "the ESP (the removable path EFI/BOOT where it is free); "
                 + (f"the firmware's boot entry \"dockerboot {label}\" (efibootmgr)"
                    if chosen.target.here else "no boot entry here (another machine)")
                 + ". This machine's docker is not changed."),
        ("The new machine", "\n".join(machine)),
    ]


class InstallReviewScreen(PlanThenApply):
    """Show the disk's plan; Apply (after the typed name, for a whole disk) installs."""

    STEP = Step.REVIEW
    CSS_PATH = css("install_review")
    AUTO_FOCUS = "#apply"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    @dataclass
    class Planned(Message):
        """The disk was surveyed and planned again."""

        chosen: Chosen

    @dataclass
    class Installed(Message):
        """Everything was written."""

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.retry_note = ""
        """Set after a failed or cancelled attempt: shown with the new plan."""
        self.work_log = WorkLog(id="work")
        self.work_log.display = False  # room for the plan until Apply starts

    def compose_body(self) -> ComposeResult:
        yield Static("Checking the disk again…", id="status")
        yield VerticalScroll(id="sections")
        yield Input(placeholder="type the disk's name to go ahead", id="confirm")
        yield self.work_log

    def compose_buttons(self) -> ComposeResult:
        yield Button("Apply (a)", id="apply", variant="success", disabled=True,
                     action="screen.apply")

    def on_mount(self) -> None:
        self.query_one("#confirm", Input).display = False
        self.start_plan()

    # --- what the base asks ---

    def can_apply(self) -> bool:
        chosen = self.plan
        return (super().can_apply() and isinstance(chosen, Chosen)
                and typed_confirms(chosen, self.query_one("#confirm", Input).value))

    def work_ended(self, job: str) -> None:
        if job == "apply":
            self.applying = False
            self.retry_note = "The last Apply did not finish."
            self.start_plan()

    # --- workers: only post messages ---

    def start_plan(self) -> None:
        self.busy = True
        self.plan = None
        self.run_plan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def run_plan(self) -> None:
        chosen = self.state.new_disk
        with self.reporting("plan"):
            if chosen is None:
                raise ValueError("no disk chosen: the Disk step comes first")
            disk, plan = self.services.plan_install(chosen.target)
            self.post_message(self.Planned(Chosen(chosen.target, disk, plan)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="review")
    def run_install(self) -> None:
        seen = Relayed()
        with self.reporting("apply", seen.tail):
            cancel = get_current_worker().cancelled_event
            relay(self.services.install(self.state, cancel=cancel), self,
                  steps=len(OWN_STEPS) + len(self.state.writes), seen=seen)
            self.post_message(self.Installed())

    # --- message handlers: the only code touching widgets ---

    @on(Planned)
    def show_plan(self, message: Planned) -> None:
        chosen = message.chosen
        self.busy = False
        self.state = replace(self.state, new_disk=chosen)
        box = self.query_one("#sections", VerticalScroll)
        box.remove_children()  # a plan made again after a failed attempt replaces the old
        for title, body in sections(self.state, chosen):
            box.mount(Static(Text(title, style="bold"), classes="title"))
            box.mount(Static(Text(body), classes="body"))
        confirm = self.query_one("#confirm", Input)
        confirm.value = ""  # each plan is confirmed on its own
        confirm.display = chosen.asks_for_name
        note = f"{self.retry_note} The plan was made again from the disk as it is now. " \
            if self.retry_note else "Nothing has been written yet. "
        if chosen.asks_for_name:
            device = chosen.target.device
            confirm.placeholder = f"type {device} to go ahead"
            self.set_status(f"{note}Everything on {device} is lost: type {device} below, "
                            "then Enter or Apply (a) installs.")
        else:
            self.set_status(f"{note}Apply (a) installs.")
        self.plan = chosen
        (confirm if chosen.asks_for_name else self.query_one("#apply", Button)).focus()

    @on(Input.Changed, "#confirm")
    def typed(self) -> None:
        self.update_nav()

    @on(Input.Submitted, "#confirm")
    def confirmed(self) -> None:
        self.action_apply()

    @on(Installed)
    def finish(self) -> None:
        self.busy = self.applying = False
        # Passwords and edits served their purpose; the partition holds the config now.
        self.leave(Next(replace(self.state, saved=self.state.settings, passwords={},
                                toplayer_edits={})))

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.busy or None
        return super().check_action(action, parameters)

    def action_apply(self) -> None:
        if self.start_applying():
            self.query_one("#confirm", Input).display = False
            self.run_install()

    def action_cancel(self) -> None:
        if self.busy:
            self.set_status("Cancelling…")
            self.workers.cancel_group(self, "review")
