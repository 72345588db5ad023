"""Partition: the btrfs filesystems udev knows, refreshed live on hotplug."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from screens.common.base import StepScreen, css
from wizard.common.errors import WizardError
from wizard.common.faults import message as fault_line
from wizard.common.names import check_label
from wizard.disk.partitions import BlockEvent, Partition
from wizard.flows.flow import Step, WizardState
from wizard.settings.config import Settings

if TYPE_CHECKING:
    from wizard.flows.services import Services

COLUMNS = ("Label", "UUID", "Size", "Device", "Docker data-root", "Mountpoint")
"""Mountpoint last: it is the long one, and 100 columns must show the rest."""


def human_size(size: int) -> str:
    """``4294967296`` -> ``4.0G``."""
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def label_problem(label: str) -> str | None:
    """Why the boot entry cannot carry ``label`` (one line), or None."""
    try:
        check_label(label)
    except WizardError as e:
        return str(e)
    return None


def mount_summary(part: Partition) -> str:
    """The top level's mountpoint if mounted (else the first mount), and how many more."""
    if not part.mountpoints:
        return "-"
    main = next((m for m in part.mountpoints if m.root == "/"), part.mountpoints[0])
    text = main.mountpoint if main.root == "/" else f"{main.mountpoint} [{main.root}]"
    more = len(part.mountpoints) - 1
    return f"{text} (+{more})" if more else text


class PartitionScreen(StepScreen):
    """A table of btrfs partitions; Enter or n picks the highlighted one."""

    CSS_PATH = css("partition")
    STEP = Step.PARTITION
    AUTO_FOCUS = "#partitions"
    BINDINGS = [Binding("r", "refresh", "Refresh")]

    @dataclass
    class Listed(Message):
        """The partitions were (re)read."""

        rows: list[tuple[Partition, bool]]
        """Each partition and whether it holds a Docker data-root."""
        problem: str | None = None
        """Partitions that could not be read, one line each (the others are listed)."""

    @dataclass
    class Hotplugged(Message):
        """udev reported a block device change (posted from the observer thread)."""

        event: BlockEvent

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.rows: list[tuple[Partition, bool]] = []
        self._stop_watch: Callable[[], None] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("Pick the btrfs partition that holds (or will hold) Docker's data-root. "
                     "The list follows disks being plugged in or removed.", id="intro")
        table: DataTable[Text] = DataTable(id="partitions", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="status", markup=False)

    def on_mount(self) -> None:
        # post_message is thread-safe: the udev callback runs in the observer thread.
        self._stop_watch = self.services.watch_partitions(self._hotplugged)
        self.run_list()

    def _hotplugged(self, event: BlockEvent) -> None:
        self.post_message(self.Hotplugged(event))

    def on_unmount(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch()
            self._stop_watch = None

    @work(thread=True, exclusive=True, exit_on_error=False, group="list")
    def run_list(self) -> None:
        with self.reporting("list"):
            found = self.services.partitions()
            self.post_message(self.Listed(*self._probe(found)))

    def _probe(self, found: list[Partition]) -> tuple[list[tuple[Partition, bool]], str | None]:
        rows, problems = [], []
        for part in found:
            try:
                rows.append((part, self.services.has_data_root(part)))
            except Exception as e:  # noqa: BLE001 — one bad partition must not hide the rest
                # One unreadable partition costs its own "Docker data-root" cell only.
                rows.append((part, False))
                problems.append(f"{part.label or part.device}: {fault_line(e)}")
        return rows, "; ".join(problems) or None

    def action_refresh(self) -> None:
        self.clear_error()
        self.run_list()

    @on(Hotplugged)
    def hotplugged(self, message: Hotplugged) -> None:
        what = message.event.label or message.event.device
        self.query_one("#status", Static).update(f"udev: {message.event.action} {what}")
        self.run_list()

    @on(Listed)
    def listed(self, message: Listed) -> None:
        self.clear_error()
        table = self.query_one("#partitions", DataTable)
        current = self.selected()
        wanted = current.uuid if current else None
        if wanted is None and self.state.settings is not None:
            wanted = next((p.uuid for p, _ in message.rows
                           if p.label == self.state.settings.label), None)
        self.rows = message.rows
        table.clear()
        for part, has_root in message.rows:
            mounts = mount_summary(part)
            # Text, not str: a subvolume like "[/docker]" must not be read as markup.
            cells = (part.label or "(no label)", part.uuid, human_size(part.size),
                     part.device,
                     f"unreadable: {part.error}" if part.error else "yes" if has_root else "no",
                     mounts)
            table.add_row(*map(Text, cells), key=part.uuid)
        uuids = [p.uuid for p, _ in message.rows]
        if wanted in uuids:
            table.move_cursor(row=uuids.index(wanted))
        if message.problem:
            self.query_one("#status", Static).update(
                Text(f"{message.problem} (r retries)", style="bold red"))
        elif not message.rows:
            self.query_one("#status", Static).update(
                "No btrfs partition: create one with `mkfs.btrfs -L NAME /dev/…` or plug in "
                "the disk; the list refreshes by itself.")
        self.update_nav()

    def selected(self) -> Partition | None:
        table = self.query_one("#partitions", DataTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row][0]

    @on(DataTable.RowHighlighted)
    def highlighted(self) -> None:
        part = self.selected()
        if part is not None and not part.label:
            self.query_one("#status", Static).update(
                f"{part.device} has no label, and the boot entry finds the partition by "
                f"label — give it one: `btrfs filesystem label {part.device} NAME`")
        elif part is not None and label_problem(part.label):
            self.query_one("#status", Static).update(Text(label_problem(part.label) or ""))
        self.update_nav()

    @on(DataTable.RowSelected)
    def row_selected(self) -> None:
        self.action_next()

    def can_next(self) -> bool:
        if not self.is_mounted:
            return False
        part = self.selected()
        # Refused here, not at Review after the initramfs build.
        return part is not None and bool(part.label) and label_problem(part.label) is None

    def next_state(self) -> WizardState:
        part = self.selected()
        assert part is not None  # can_next() checked it
        old = self.state.settings
        settings = (replace(old, label=part.label) if old is not None
                    else Settings(label=part.label, image=""))
        return replace(self.state, settings=settings)
