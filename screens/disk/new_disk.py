"""Disk: where a new machine goes — a whole disk, its free space or an empty partition.

The disks come from one ``lsblk`` (``Services.disks``); every change of the
choice (disk, where, which partition, label) plans again in a thread worker
(``Services.plan_install``, install's own plan), and Next waits until the
plan of exactly what is on screen is shown.  A refusal (the running root's
disk, a mounted filesystem, too small, MBR, no UEFI, a bad label) is one
line there instead, and Next stays off.  Nothing is written here: the
Review installs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Checkbox,
    DataTable,
    Input,
    OptionList,
    RadioButton,
    RadioSet,
    Static,
)
from textual.widgets.option_list import Option

from screens.common.base import StepScreen, css
from screens.disk.partition import label_problem
from wizard.common.errors import WizardError
from wizard.common.faults import message as fault_line
from wizard.disk.disks import MODES, Chosen, Target
from wizard.disk.layout import Disk, human
from wizard.flows.flow import Step, WizardState
from wizard.settings.config import Settings

if TYPE_CHECKING:
    from wizard.flows.services import Services

COLUMNS = ("Device", "Model", "Size", "Table", "Partitions", "Mounted")
WHERE = {"disk": "The whole disk: a new GPT, everything on it is lost",
         "free": "Its free space: a new partition, the rest is kept",
         "partition": "An empty partition, formatted"}
"""``disks.MODES`` -> its radio button's text, in that order."""


def mounted_summary(disk: Disk) -> str:
    """The disk's mountpoints in one cell (``-`` when none)."""
    return ", ".join(disk.mounted) or "-"


class NewDiskScreen(StepScreen):
    """Pick a disk and where on it; the plan (or the refusal) is shown before Next."""

    CSS_PATH = css("new_disk")
    STEP = Step.DISK
    AUTO_FOCUS = "#disks"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "leave_field", "Leave field"),
    ]

    @dataclass
    class Listed(Message):
        """The disks were (re)read."""

        disks: list[Disk]

    @dataclass
    class Planned(Message):
        """Install's plan for ``target`` (``chosen``), or its one-line refusal."""

        target: Target
        chosen: Chosen | None
        refusal: str | None = None

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.disks: list[Disk] = []
        self.chosen: Chosen | None = None
        """The plan shown, for exactly the target on screen (None: none shown)."""
        before = state.new_disk.target if state.new_disk else None
        self._want = before
        """The target to show again (coming back to this step), until the disks are read."""

    # --- layout ---

    def compose_body(self) -> ComposeResult:
        # Scrolls on a small terminal: the plan below the fields stays reachable.
        with VerticalScroll(id="disk-body"):
            yield Static("Pick the disk of the new machine and where on it. Nothing is "
                         "written before Review's Apply.", id="intro")
            table: DataTable[Text] = DataTable(id="disks", cursor_type="row",
                                               zebra_stripes=True)
            table.add_columns(*COLUMNS)
            yield table
            with Horizontal(id="choice"):
                with RadioSet(id="where"):
                    mode = self._want.mode if self._want else "disk"
                    for m in MODES:
                        yield RadioButton(WHERE[m], value=m == mode, id=f"where-{m}")
                yield OptionList(id="parts")
            label = self._want.label if self._want else ""
            yield Input(label, placeholder="label of the new btrfs partition, e.g. dockerboot",
                        id="label")
            yield Checkbox("For another UEFI machine (a disk to move, a VM image): this "
                           "machine's UEFI is not checked, no boot entry is written here",
                           self._want is not None and not self._want.here, id="elsewhere")
            yield Static("", id="plan")

    def on_mount(self) -> None:
        self.query_one("#parts", OptionList).display = False
        self.run_list()

    # --- workers: only post messages ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="list")
    def run_list(self) -> None:
        with self.reporting("list"):
            self.post_message(self.Listed(self.services.disks()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan")
    def run_plan(self, target: Target) -> None:
        with self.reporting("plan"):
            try:
                disk, plan = self.services.plan_install(target)
            except WizardError as e:  # install's refusal: one line, this step stays
                self.post_message(self.Planned(target, None, fault_line(e)))
                return
            self.post_message(self.Planned(target, Chosen(target, disk, plan)))

    # --- what is on screen ---

    def selected_disk(self) -> Disk | None:
        table = self.query_one("#disks", DataTable)
        if not self.disks or not 0 <= table.cursor_row < len(self.disks):
            return None
        return self.disks[table.cursor_row]

    def mode(self) -> str:
        index = self.query_one("#where", RadioSet).pressed_index
        return MODES[index] if 0 <= index < len(MODES) else "disk"

    def target(self) -> Target | str:
        """The target on screen, or why there is none yet (one line)."""
        disk = self.selected_disk()
        if disk is None:
            return "No disk found: plug one in, then r refreshes the list."
        label = self.query_one("#label", Input).value.strip()
        if not label:
            return "Type the new btrfs partition's label (the boot entry finds it by label)."
        problem = label_problem(label)
        if problem:
            return problem
        mode = self.mode()
        here = not self.query_one("#elsewhere", Checkbox).value
        if mode != "partition":
            return Target(mode, disk.path, label, here=here)
        parts = self.query_one("#parts", OptionList)
        if not disk.parts:
            return f"{disk.path} has no partition: choose the whole disk or its free space."
        if parts.highlighted is None:
            return "Choose the partition."
        return Target(mode, disk.parts[parts.highlighted].path, label, here=here)

    def replan(self) -> None:
        """The choice changed: the plan shown goes, a new one is made for what is on screen."""
        self.chosen = None
        target = self.target()
        if isinstance(target, str):
            self.show_plan(Text(target))
        else:
            self.show_plan(Text(f"Planning for {target.device}…"))
            self.run_plan(target)
        self.update_nav()

    def show_plan(self, text: Text, *, refused: bool = False) -> None:
        plan = self.query_one("#plan", Static)
        plan.update(text)
        plan.set_class(refused, "error")

    def fill_parts(self) -> None:
        disk = self.selected_disk()
        parts = self.query_one("#parts", OptionList)
        parts.display = self.mode() == "partition"
        parts.clear_options()
        if disk is None:
            return
        parts.add_options([Option(Text(p.describe())) for p in disk.parts])
        paths = [p.path for p in disk.parts]
        want = self._want.device if self._want and self._want.mode == "partition" else None
        if paths:
            parts.highlighted = paths.index(want) if want in paths else 0

    # --- message handlers ---

    @on(Listed)
    def listed(self, message: Listed) -> None:
        self.clear_error()
        table = self.query_one("#disks", DataTable)
        current = self.selected_disk()
        want = current.path if current else None
        if want is None and self._want is not None:
            want = next((d.path for d in message.disks if self._want.device == d.path
                         or any(p.path == self._want.device for p in d.parts)), None)
        self.disks = message.disks
        table.clear()
        for disk in message.disks:
            table_kind = {"gpt": "GPT", "dos": "MBR"}.get(disk.pttype or "", "none")
            cells = (disk.path, disk.model or "-", human(disk.size), table_kind,
                     str(len(disk.parts)), mounted_summary(disk))
            table.add_row(*map(Text, cells), key=disk.path)  # Text: never read as markup
        paths = [d.path for d in message.disks]
        if want in paths:
            table.move_cursor(row=paths.index(want))
        self.fill_parts()
        self._want = None if want in paths else self._want
        self.replan()

    @on(DataTable.RowHighlighted, "#disks")
    def disk_highlighted(self) -> None:
        self.fill_parts()
        self.replan()

    @on(RadioSet.Changed, "#where")
    def where_changed(self) -> None:
        self.fill_parts()
        self.replan()

    @on(OptionList.OptionHighlighted, "#parts")
    def part_highlighted(self) -> None:
        self.replan()

    @on(Input.Changed, "#label")
    def label_changed(self) -> None:
        self.replan()

    @on(Checkbox.Changed, "#elsewhere")
    def elsewhere_changed(self) -> None:
        self.replan()

    @on(Input.Submitted, "#label")
    def label_submitted(self) -> None:
        self.action_next()

    @on(Planned)
    def planned(self, message: Planned) -> None:
        if message.target != self.target():
            return  # an answer for a choice no longer on screen
        self.chosen = message.chosen
        if message.chosen is not None:
            self.show_plan(Text(message.chosen.describe()))
        else:
            self.show_plan(Text(f"Refused: {message.refusal}"), refused=True)
        self.update_nav()

    # --- actions and what the base asks ---

    def action_refresh(self) -> None:
        self.clear_error()
        self.run_list()

    def action_leave_field(self) -> None:
        self.query_one("#disks", DataTable).focus()

    def work_ended(self, job: str) -> None:
        if job == "plan":
            self.show_plan(Text("No plan (see the problem below); r refreshes and plans again."))

    def can_next(self) -> bool:
        return self.is_mounted and self.chosen is not None

    def has_pending_edits(self) -> bool:
        return bool(self.query_one("#label", Input).value.strip())

    def next_state(self) -> WizardState:
        chosen = self.chosen
        assert chosen is not None  # can_next() checked it
        old = self.state.settings
        label = chosen.target.label
        settings = replace(old, label=label) if old is not None else Settings(label=label, image="")
        return replace(self.state, settings=settings, new_disk=chosen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":
            return isinstance(self.focused, Input | OptionList | RadioSet | Checkbox) or None
        return super().check_action(action, parameters)

