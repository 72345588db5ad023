"""Image: local images and tags, a filter, pull by name, and proof each choice can boot.

For a new machine the images are this machine's docker's, whatever its
storage driver: install copies the chosen one into the new store (nothing
is resolved here; ``flow.images_from_host``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, ProgressBar, Static
from textual.worker import get_current_worker

from screens.common.base import StepScreen, css
from screens.disk.partition import human_size
from wizard.common.errors import Cancelled
from wizard.common.events import Event, LogLine, Progress
from wizard.common.faults import message as fault_line
from wizard.flows.flow import Step, WizardState, images_from_host
from wizard.store.docker_daemon import ImageSummary

if TYPE_CHECKING:
    from wizard.flows.services import Services

COLUMNS = ("Image", "Size", "Created", "ID")


class ImagesScreen(StepScreen):
    """Pick the image to boot; it is resolved to its btrfs subvolume before Next."""

    CSS_PATH = css("images")
    STEP = Step.IMAGE
    AUTO_FOCUS = "#images"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("p", "focus_pull", "Pull"),
        Binding("r", "reload", "Reload"),
        Binding("escape", "cancel", "Cancel pull"),
    ]

    pulling: reactive[bool] = reactive(False, init=False)
    """A pull runs (Next waits for it)."""

    @dataclass
    class Listed(Message):
        """Local images were read (or reading failed)."""

        images: list[ImageSummary]

    @dataclass
    class Resolved(Message):
        """An image was resolved: its subvolume, or why it cannot boot."""

        ref: str
        path: Path | None
        error: str | None = None

    @dataclass
    class PullProgressed(Message):
        """One event of a running pull."""

        event: Event

    @dataclass
    class PullEnded(Message):
        """The pull finished, failed or was cancelled."""

        ref: str

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.all_images: list[ImageSummary] = []
        self.shown: list[ImageSummary] = []
        self.resolved: dict[str, Path] = {}
        self._want = state.settings.image if state.settings and state.settings.image else None

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter images (/)", id="filter")
        table: DataTable[Text] = DataTable(id="images", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static("", id="resolved")
        with Horizontal(id="pullbar"):
            yield Input(placeholder="pull NAME:TAG (p), Enter starts, Escape cancels",
                        id="pull")
            # total=1: an empty bar while idle (None would animate as if busy)
            yield ProgressBar(id="progress", show_eta=False, total=1)
        yield Static("", id="pullstatus")

    def on_mount(self) -> None:
        self.query_one("#images", DataTable).focus()
        self.run_list()

    # --- listing and filtering ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="list")
    def run_list(self) -> None:
        with self.reporting("list"):
            self.post_message(self.Listed(self.services.images()))

    def action_reload(self) -> None:
        self.clear_error()
        self.run_list()

    @on(Listed)
    def listed(self, message: Listed) -> None:
        self.all_images = message.images
        self.clear_error()
        self.fill_table()

    @on(Input.Changed, "#filter")
    def filter_changed(self) -> None:
        self.fill_table()

    def fill_table(self) -> None:
        table = self.query_one("#images", DataTable)
        want = self._want  # follows the cursor; set to a freshly pulled image
        words = self.query_one("#filter", Input).value.lower().split()
        self.shown = [i for i in self.all_images
                      if all(w in f"{i.ref} {i.short_id}".lower() for w in words)]
        table.clear()
        for image in self.shown:
            cells = (image.ref, human_size(image.size), image.created[:19].replace("T", " "),
                     image.short_id.removeprefix("sha256:"))
            table.add_row(*map(Text, cells), key=image.ref)  # Text: never parsed as markup
        refs = [i.ref for i in self.shown]
        if want in refs:
            table.move_cursor(row=refs.index(want))
        self.update_nav()

    def selected(self) -> ImageSummary | None:
        table = self.query_one("#images", DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one("#images", DataTable).focus()

    # --- resolving the choice ---

    @on(DataTable.RowHighlighted, "#images")
    def highlighted(self) -> None:
        image = self.selected()
        if image is None:
            self.update_nav()
            return
        self._want = image.ref
        if images_from_host(self.state):
            self.query_one("#resolved", Static).update(
                f"{escape(image.ref)}: install copies it from this machine's docker into the "
                "new machine's own store, and proves it boots there")
        elif image.ref in self.resolved:
            self.show_resolved(image.ref, self.resolved[image.ref], None)
        else:
            self.query_one("#resolved", Static).update(f"Resolving {escape(image.ref)}…")
            self.run_resolve(image.ref)
        self.update_nav()

    @work(thread=True, exclusive=True, exit_on_error=False, group="resolve")
    def run_resolve(self, ref: str) -> None:
        try:
            self.post_message(self.Resolved(ref, self.services.resolve(ref)))
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Resolved(ref, None, fault_line(e)))

    @on(Resolved)
    def resolved_message(self, message: Resolved) -> None:
        if message.path is not None:
            self.resolved[message.ref] = message.path
        current = self.selected()
        if current is not None and current.ref == message.ref:  # stale answers are ignored
            self.show_resolved(message.ref, message.path, message.error)
        self.update_nav()

    def show_resolved(self, ref: str, path: Path | None, error: str | None) -> None:
        widget = self.query_one("#resolved", Static)
        if path is not None:
            widget.update(f"[green]✔[/] {escape(ref)} boots from subvolume {escape(str(path))}")
            widget.remove_class("error")
        else:
            widget.update(f"[red]✘ {escape(ref)} cannot boot:[/] {escape(error or '')}")
            widget.add_class("error")

    @on(DataTable.RowSelected, "#images")
    def row_selected(self) -> None:
        self.action_next()

    def can_next(self) -> bool:
        if not self.is_mounted:
            return False
        image = self.selected()
        return (image is not None and not self.pulling
                and (image.ref in self.resolved or images_from_host(self.state)))

    def next_state(self) -> WizardState:
        image = self.selected()
        assert image is not None and self.state.settings is not None
        # A kernel/initramfs staged for another image must not be installed for this one.
        staged = (self.state.staged_initramfs if image.ref == self.state.settings.image
                  else None)
        return replace(self.state, settings=replace(self.state.settings, image=image.ref),
                       staged_initramfs=staged)

    # --- pulling ---

    def action_focus_pull(self) -> None:
        self.query_one("#pull", Input).focus()

    @on(Input.Submitted, "#pull")
    def pull_submitted(self, event: Input.Submitted) -> None:
        ref = event.value.strip()
        if not ref or self.pulling:
            return
        self.pulling = True
        self.clear_error()
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#pullstatus", Static).update(f"Pulling {escape(ref)}… (Escape cancels)")
        self.run_pull(ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="pull")
    def run_pull(self, ref: str) -> None:
        worker = get_current_worker()
        with self.reporting("pull"):
            for event in self.services.pull(ref, cancel=worker.cancelled_event):
                self.post_message(self.PullProgressed(event))
            if worker.is_cancelled:
                raise Cancelled("pull cancelled", "nothing was changed")
            self.post_message(self.PullEnded(ref))

    @on(PullProgressed)
    def pull_progressed(self, message: PullProgressed) -> None:
        event = message.event
        if isinstance(event, Progress):
            self.query_one("#progress", ProgressBar).update(total=event.total,
                                                            progress=event.current)
        elif isinstance(event, LogLine):
            self.query_one("#pullstatus", Static).update(escape(event.text))

    @on(PullEnded)
    def pull_ended(self, message: PullEnded) -> None:
        self.pulling = False
        self.query_one("#pullstatus", Static).update(f"Pulled {escape(message.ref)}.")
        self._want = message.ref
        self.query_one("#images", DataTable).focus()
        self.run_list()

    def work_ended(self, job: str) -> None:
        if job == "pull":
            self.pulling = False
            self.query_one("#pullstatus", Static).update("")
            self.query_one("#progress", ProgressBar).update(total=1, progress=0)

    def watch_pulling(self) -> None:
        self.update_nav()

    def action_cancel(self) -> None:
        if self.pulling:
            self.workers.cancel_group(self, "pull")
            self.query_one("#pullstatus", Static).update("Cancelling the pull…")
