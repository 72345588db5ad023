"""Bootloader step: the ESP and refind.conf found, the entry, and the diff before writing.

Nothing is written here; Review writes the file (with a backup).  The path
can be overridden: a directory is taken as the ESP, a file as refind.conf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Static

from wizard.faults import message as fault_line
from wizard.flow import Back, Next, Outcome, Quit, WizardState
from wizard.resources import asset
from wizard.review import RefindPreview, refind_preview
from wizard.services import Services


class BootloaderScreen(Screen[Outcome]):
    """Show where the rEFInd entry goes and what changes in refind.conf."""

    CSS_PATH = str(asset("tcss/bootloader.tcss"))
    BINDINGS = [
        Binding("n", "next", "Next"),
        Binding("b", "back", "Back"),
        Binding("o", "focus_override", "Other path"),
        Binding("escape", "blur", "Leave field", show=False),
        Binding("q", "quit_wizard", "Quit"),
    ]

    @dataclass
    class Found(Message):
        """refind.conf was found and the edit previewed."""

        conf: Path
        preview: RefindPreview

    @dataclass
    class Failed(Message):
        """No ESP/refind.conf, or the entry cannot be rendered."""

        problem: str

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        self.services = services
        self.found: Path | None = None

    def compose(self) -> ComposeResult:
        s = self.state.settings
        yield Header()
        yield Static("Looking for the ESP and refind.conf…", id="where")
        with Horizontal(id="override-row"):
            yield Static("ESP dir or refind.conf:", id="override-label")
            yield Input(value=(s.refind_conf or s.esp or "") if s else "",
                        placeholder="found automatically; type a path and press enter",
                        id="override")
        with VerticalScroll(id="preview"):
            yield Static("", id="entry")
            yield Static("", id="diff")
        with Horizontal(id="buttons"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Boot entry (rEFInd)"
        self.lookup()

    @work(thread=True, exclusive=True, exit_on_error=False, group="bootloader")
    def lookup(self) -> None:
        settings = self.state.settings
        assert settings is not None
        try:
            conf, old = self.services.find_refind(settings)
            preview = refind_preview(settings, str(conf), old)
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e)))
            return
        self.post_message(self.Found(conf, preview))

    def on_bootloader_screen_found(self, message: Found) -> None:
        self.found = message.conf
        where = self.query_one("#where", Static)
        where.remove_class("error")
        esp = self.state.settings.esp if self.state.settings else None
        where.update(f"ESP: {esp or 'found automatically'}    refind.conf: {message.conf}\n"
                     "Written at Review (the old file is backed up; the rest is kept as is).")
        # word_wrap: the options line is longer than the screen and must stay readable
        self.query_one("#entry", Static).update(Syntax(message.preview.entry, "ini",
                                                       theme="ansi_dark", word_wrap=True))
        self.query_one("#diff", Static).update(
            Syntax(message.preview.diff, "diff", theme="ansi_dark", word_wrap=True)
            if message.preview.diff
            else "refind.conf already has this entry: nothing to change.")
        self.query_one("#next", Button).disabled = False
        self.query_one("#next", Button).focus()
        self.refresh_bindings()

    def on_bootloader_screen_failed(self, message: Failed) -> None:
        self.found = None
        where = self.query_one("#where", Static)
        where.add_class("error")
        where.update(Text(f"{message.problem}\nType the ESP directory or refind.conf path below."))
        self.query_one("#entry", Static).update("")
        self.query_one("#diff", Static).update("")
        self.query_one("#next", Button).disabled = True
        self.set_focus(None)  # keys go to the bindings: o types another path
        self.refresh_bindings()

    @on(Input.Submitted, "#override")
    def _override(self, event: Input.Submitted) -> None:
        settings = self.state.settings
        assert settings is not None
        path = event.value.strip()
        # A file is refind.conf itself, anything else an ESP directory to search.
        if not path:
            settings = settings.with_changes(esp=None, refind_conf=None)
        elif path.endswith(".conf") or Path(path).is_file():
            settings = settings.with_changes(refind_conf=path, esp=None)
        else:
            settings = settings.with_changes(esp=path, refind_conf=None)
        self.state = self.state.with_changes(settings=settings)
        self.query_one("#where", Static).update("Looking again…")
        self.lookup()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return self.found is not None
        return True

    def action_focus_override(self) -> None:
        self.query_one("#override", Input).focus()

    def action_blur(self) -> None:
        self.set_focus(None)

    def action_next(self) -> None:
        if self.found is not None:
            self.dismiss(Next(self.state))

    def action_back(self) -> None:
        self.dismiss(Back())

    def action_quit_wizard(self) -> None:
        self.dismiss(Quit())

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.action_next()
