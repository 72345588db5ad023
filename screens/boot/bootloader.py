"""Bootloader step: what each bootloader found, the entries, and the diff before writing.

Nothing is written here; Review writes the files (with backups).  The path
can be overridden: a directory is taken as the ESP, a file as refind.conf.
``g`` switches between rEFInd, GRUB (the image's signed one: Secure Boot) and systemd-boot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from rich.syntax import Syntax
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Static
from textual.worker import get_current_worker

from screens.common.base import StepScreen, css
from wizard.flows.flow import Step
from wizard.flows.review import RefindPreview
from wizard.settings.config import BOOTLOADERS, Settings


class BootloaderScreen(StepScreen):
    """Show where the rEFInd entry goes and what changes in refind.conf."""

    STEP = Step.BOOTLOADER
    CSS_PATH = css("bootloader")
    BINDINGS = [
        Binding("o", "focus_override", "Other path"),
        Binding("g", "switch_bootloader", "Other bootloader"),
        Binding("escape", "blur", "Leave field", show=False),
    ]

    found: reactive[Path | None] = reactive(None, init=False)
    """The file the entries go into, found for the current settings (Next needs it)."""
    shown: str = ""
    """The bootloader of the entries shown ("refind", "grub", "systemd-boot"; "" before one)."""

    @dataclass
    class Found(Message):
        """refind.conf was found and the edit previewed."""

        settings: Settings
        """The settings it was looked up for (a newer lookup makes it stale)."""
        preview: RefindPreview
        """The entries apply writes (its plan's block) and the diff."""

    def compose_body(self) -> ComposeResult:
        yield Static("Looking for the ESP and refind.conf…", id="where")
        with Horizontal(id="override-row"):
            yield Static("ESP dir or refind.conf:", id="override-label")
            yield Input(value=self.override(),
                        placeholder="found automatically; type a path and press enter",
                        id="override")
        with VerticalScroll(id="preview"):
            yield Static("", id="entry")
            yield Static("", id="diff")

    def on_mount(self) -> None:
        self.look_up()

    def override(self) -> str:
        """The path given instead of searching, as the state has it ("" = search)."""
        s = self.state.settings
        return (s.refind_conf or s.esp or "") if s else ""

    # --- what the base asks ---

    def can_next(self) -> bool:
        return self.found is not None

    def has_pending_edits(self) -> bool:
        # A path typed but not submitted yet.
        return self.query_one("#override", Input).value.strip() != self.override()

    def work_ended(self, job: str) -> None:
        self.query_one("#where", Static).update(
            "Not found: type the ESP directory or refind.conf path below.")
        self.set_focus(None)  # keys go to the bindings: o types another path

    # --- the lookup ---

    def look_up(self) -> None:
        """Find refind.conf for the state's settings and preview the edit."""
        self.found = None
        self.busy = True
        self.clear_error()
        self.query_one("#entry", Static).update("")
        self.query_one("#diff", Static).update("")
        assert self.state.settings is not None
        self.run_lookup(self.state.settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lookup")
    def run_lookup(self, settings: Settings) -> None:
        with self.reporting("lookup"):
            cancel = get_current_worker().cancelled_event
            preview = self.services.boot_entries(replace(self.state, settings=settings),
                                                 cancel=cancel)
            self.post_message(self.Found(settings, preview))

    @on(Found)
    def show_preview(self, message: Found) -> None:
        if message.settings != self.state.settings:
            return  # a lookup for a path given since then is running
        esp = message.settings.esp
        self.shown = message.preview.bootloader
        self.query_one("#where", Static).update(
            "\n".join(message.preview.survey) + "\n"
            f"ESP: {esp or 'found automatically'}    "
            f"{message.preview.conf.name}: {message.preview.conf}\n"
            "Written at Review (old files are backed up; the rest is kept as is). "
            "g: the next bootloader.")
        # word_wrap: the options line is longer than the screen and must stay readable
        self.query_one("#entry", Static).update(Syntax(message.preview.entry, "ini",
                                                       theme="ansi_dark", word_wrap=True))
        self.query_one("#diff", Static).update(
            Syntax(message.preview.diff, "diff", theme="ansi_dark", word_wrap=True)
            if message.preview.diff
            else "refind.conf already has this entry: nothing to change.")
        self.found = message.preview.conf
        self.busy = False
        self.query_one("#next", Button).focus()

    @on(Input.Submitted, "#override")
    def look_at_path(self, event: Input.Submitted) -> None:
        """Take the typed path: a file is refind.conf itself, anything else an ESP."""
        settings = self.state.settings
        assert settings is not None
        path = event.value.strip()
        if not path:
            settings = replace(settings, esp=None, refind_conf=None)
        elif path.endswith(".conf") or Path(path).is_file():
            settings = replace(settings, refind_conf=path, esp=None)
        else:
            settings = replace(settings, esp=path, refind_conf=None)
        self.state = replace(self.state, settings=settings)
        self.query_one("#where", Static).update("Looking again…")
        self.look_up()

    def watch_found(self) -> None:
        self.update_nav()

    # --- actions ---

    def action_focus_override(self) -> None:
        self.query_one("#override", Input).focus()

    def action_switch_bootloader(self) -> None:
        """Plan the entries for the next bootloader (rEFInd -> GRUB -> systemd-boot -> …)."""
        settings = self.state.settings
        assert settings is not None
        current = settings.bootloader or self.shown or "refind"
        other = BOOTLOADERS[(BOOTLOADERS.index(current) + 1) % len(BOOTLOADERS)]
        self.state = replace(self.state, settings=replace(settings, bootloader=other))
        self.query_one("#where", Static).update(f"Looking at {other}…")
        self.look_up()

    def action_blur(self) -> None:
        self.set_focus(None)
