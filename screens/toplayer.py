"""Top-layer step: files laid over the fresh root at every boot, hostname, fstab, users.

Edits stay in memory (``WizardState.toplayer_edits``, ``settings.hostname``,
``passwords``) until Review applies them; keeping an edited file first shows
its diff against the image's own copy.  Passwords never leave the form
except into ``WizardState.passwords``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Header,
    Input,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
    Tree,
)
from textual.widgets.option_list import Option

from screens.base import quit_asking
from screens.machine_form import MachineForm, UsersForm
from screens.toplayer_tree import ToplayerTree
from wizard import fstab, machine
from wizard.config import Settings
from wizard.diffs import unified_diff
from wizard.errors import ToplayerError, WizardError
from wizard.faults import message as fault_line
from wizard.flow import Back, Next, Outcome, WizardState
from wizard.resources import asset
from wizard.services import Services
from wizard.toplayer import SECRET_FILES, validate_hostname
from wizard.users import validate_user

WARNING = ("Everything outside the top layer and the persistent mounts in its fstab is "
           "RESET AT EVERY BOOT.")
OFFERED = ("etc/fstab", "etc/docker/daemon.json")
"""Files offered in the tree even before the top layer has them."""
_LANGUAGES = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
              ".sh": "bash", ".xml": "xml", ".css": "css", ".py": "python"}


def language_for(path: str, available: set[str]) -> str | None:
    """TextArea language for a file name, when Textual can highlight it."""
    lang = _LANGUAGES.get(PurePosixPath(path).suffix)
    return lang if lang in available else None


class ToplayerScreen(Screen[Outcome]):
    """Edit the top layer: files, hostname, fstab lines, users."""

    CSS_PATH = str(asset("tcss/toplayer.tcss"))
    BINDINGS = [
        Binding("ctrl+s", "keep", "Keep file"),
        Binding("ctrl+d", "diff", "Diff vs image"),
        Binding("escape", "blur", "Leave field"),
        Binding("n", "next", "Next"),
        Binding("b", "back", "Back"),
        Binding("q", "quit_wizard", "Quit"),
    ]

    @dataclass
    class FilesLoaded(Message):
        """The top layer's current files arrived."""

        files: dict[str, bytes]

    @dataclass
    class ImageFileLoaded(Message):
        """The image's own copy of a file arrived (None: the image has none)."""

        relpath: str
        data: bytes | None
        purpose: str

    @dataclass
    class Failed(Message):
        """A lookup failed."""

        problem: str

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        self.services = services
        self.files: dict[str, bytes] = {}
        self.edits: dict[str, bytes] = dict(state.toplayer_edits)
        self.passwords: dict[str, str] = dict(state.passwords)
        self.admins: list[str] = list(state.settings.admins) if state.settings else []
        self.image_files: dict[str, bytes | None] = {}
        self.current: str | None = None
        self.pending: tuple[str, bytes] | None = None
        self.pending_fstab: str | None = None
        self.loaded: str | None = None  # last text loaded into the editor (None: no file)

    # --- layout ---

    def compose(self) -> ComposeResult:
        s = self.state.settings
        yield Header()
        yield Static(WARNING, id="warning")
        with TabbedContent(id="tabs"):
            with TabPane("Files", id="files-tab"):
                with Horizontal():
                    yield ToplayerTree("top layer", id="files")
                    with Vertical(id="editor-pane"):
                        yield Static("Pick a file on the left.", id="path")
                        yield TextArea(id="editor", show_line_numbers=True, disabled=True)
                        with VerticalScroll(id="diff-box"):
                            yield Static("", id="diff")
            with TabPane("Hostname & users", id="users-tab"):
                yield UsersForm(s.hostname if s else None, self._users_text())
            with TabPane("Machine", id="machine-tab"):
                yield MachineForm(s, id="machine")
            with TabPane("fstab helper", id="fstab-tab"):
                yield Static("Lines for the discovered partitions; enter adds the line to "
                             "the top layer's etc/fstab (same mountpoint: replaced).")
                yield OptionList(id="fstab-options")
                with VerticalScroll(id="fstab-diff-box"):
                    yield Static("", id="fstab-diff")
        with Horizontal(id="buttons"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Top layer"
        s = self.state.settings
        options = self.query_one("#fstab-options", OptionList)
        try:
            offers = fstab.suggestions(self.services.partitions(), s.label if s else None,
                                       s.docker_path if s else "docker")
        except Exception as e:  # noqa: BLE001 — the helper is optional, the screen is not
            offers = []
            self.query_one("#fstab-diff", Static).update(Text(fault_line(e)))
        for offer in offers:
            options.add_option(Option(f"{offer.line}\n  # {offer.why}", id=offer.line))
        self.load_files()

    # --- workers ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="toplayer-files")
    def load_files(self) -> None:
        try:
            files = self.services.toplayer_files(self.state)
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e)))
            files = {}
        self.post_message(self.FilesLoaded(files))

    @work(thread=True, exit_on_error=False, group="image-file")
    def fetch_image_file(self, relpath: str, purpose: str) -> None:
        assert self.state.settings is not None
        try:
            data = self.services.image_file(self.state.settings.image, relpath)
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e)))
            data = None
        self.post_message(self.ImageFileLoaded(relpath, data, purpose))

    def _with_image_file(self, relpath: str, purpose: str) -> None:
        """Run ``purpose`` once the image's copy of ``relpath`` is known (cached)."""
        if relpath in self.image_files:
            self._image_file_ready(relpath, self.image_files[relpath], purpose)
        else:
            self.fetch_image_file(relpath, purpose)

    # --- handlers ---

    def on_toplayer_screen_files_loaded(self, message: FilesLoaded) -> None:
        self.files = message.files
        self._fill_tree()

    def on_toplayer_screen_failed(self, message: Failed) -> None:
        self.notify(message.problem, severity="error", timeout=8)

    def on_toplayer_screen_image_file_loaded(self, message: ImageFileLoaded) -> None:
        self.image_files[message.relpath] = message.data
        self._image_file_ready(message.relpath, message.data, message.purpose)

    def _image_file_ready(self, rel: str, image: bytes | None, purpose: str) -> None:
        if purpose == "open" and rel == self.current:
            self._show_in_editor(rel, self._generated(rel, image))
        elif purpose in ("diff", "keep") and rel == self.current:
            new = self._editor_bytes()
            diff = unified_diff(image, new, f"{rel} (against the image's own file)")
            self._show_diff("#diff", diff or "Same as the image's own file.")
            if purpose == "keep":
                self.pending = (rel, new)
                self.query_one("#path", Static).update(
                    Text(f"{rel}: check the diff below, ctrl+s again keeps it"))
        elif purpose == "fstab" and self.pending_fstab is not None:
            base = self._content("etc/fstab")
            old = base if base is not None else (image or b"")
            new = fstab.merge_line(old.decode("utf-8", "replace"),
                                   self.pending_fstab).encode()
            self.pending_fstab = None
            self.edits["etc/fstab"] = new
            self._show_diff("#fstab-diff", unified_diff(old, new, "etc/fstab") or
                            "etc/fstab already has this line.")
            self._fill_tree()
            if self.current == "etc/fstab":
                self._show_in_editor("etc/fstab", new)

    @on(Tree.NodeSelected, "#files")
    def _open(self, event: Tree.NodeSelected) -> None:
        rel = event.node.data
        if not isinstance(rel, str):
            return
        self.current, self.pending = rel, None
        self._show_diff("#diff", "")
        editor = self.query_one("#editor", TextArea)
        if rel in SECRET_FILES:
            self.loaded = None
            editor.load_text("")
            editor.disabled = True
            self.query_one("#path", Static).update(
                Text(f"{rel}: holds password hashes, not shown; use the users form"))
            return
        content = self._content(rel)
        if content is None:
            self.query_one("#path", Static).update(Text(f"{rel}: loading the image's copy…"))
            self._with_image_file(rel, "open")
        else:
            self._show_in_editor(rel, content)

    @on(OptionList.OptionSelected, "#fstab-options")
    def _fstab_line(self, event: OptionList.OptionSelected) -> None:
        self.pending_fstab = event.option.id
        if self._content("etc/fstab") is not None:
            self._image_file_ready("etc/fstab", None, "fstab")
        else:
            self._with_image_file("etc/fstab", "fstab")

    @on(Input.Changed, "#hostname")
    def _hostname_changed(self, event: Input.Changed) -> None:
        self._hostname_error(event.value.strip())

    @on(Button.Pressed, "#add-user")
    @on(Input.Submitted, "#user-pw2")
    def _add_user(self) -> None:
        name = self.query_one("#user-name", Input).value.strip()
        pw = self.query_one("#user-pw", Input)
        pw2 = self.query_one("#user-pw2", Input)
        error = self.query_one("#user-error", Static)
        if pw.value != pw2.value:
            error.update("The passwords do not match: type them again.")
            pw.value = pw2.value = ""
            pw.focus()
            return
        try:
            validate_user(name, pw.value)
        except ToplayerError as e:
            error.update(Text(str(e)))
            return
        self.passwords[name] = pw.value
        admin = self.query_one("#user-admin", Checkbox)
        if admin.value and name not in self.admins:
            self.admins.append(name)
        admin.value = False
        pw.value = pw2.value = ""
        self.query_one("#user-name", Input).value = ""
        error.update("")
        self.query_one("#users", Static).update(self._users_text())

    # --- helpers (widgets only; the logic lives in wizard/) ---

    def _generated(self, rel: str, image: bytes | None) -> bytes:
        settings = self._settings()
        try:
            return machine.generated_file(rel, image, settings) if settings else image or b""
        except WizardError as e:
            self.notify(str(e), severity="error", timeout=8)
            return image or b""

    def _settings(self) -> Settings | None:
        s = self.state.settings
        if s is None:
            return None
        hostname = self.query_one("#hostname", Input).value.strip() or None
        return s.with_changes(hostname=hostname, admins=tuple(self.admins),
                              **self.query_one(MachineForm).values())

    def _content(self, rel: str) -> bytes | None:
        return self.edits.get(rel, self.files.get(rel))

    def _editor_bytes(self) -> bytes:
        return self.query_one("#editor", TextArea).text.encode()

    def _fill_tree(self) -> None:
        self.query_one(ToplayerTree).show(self.files, self.edits, OFFERED)

    def _show_in_editor(self, rel: str, data: bytes) -> None:
        editor = self.query_one("#editor", TextArea)
        editor.disabled = False
        editor.language = language_for(rel, set(editor.available_languages))
        self.loaded = data.decode("utf-8", "replace")
        editor.load_text(self.loaded)
        self.query_one("#path", Static).update(
            Text(f"{rel}   (ctrl+s keep, ctrl+d diff against the image)"))

    def _show_diff(self, selector: str, diff: str) -> None:
        widget = self.query_one(selector, Static)
        widget.update(Syntax(diff, "diff", theme="ansi_dark") if diff.startswith("---")
                      else Text(diff))

    def _users_text(self) -> Text:
        saved = self.state.settings.users if self.state.settings else ()
        names = list(dict.fromkeys([*saved, *self.passwords]))
        def about(name: str) -> str:
            notes = [x for x, on in (("new password", name in self.passwords),
                                     ("administrator", name in self.admins)) if on]
            return f"{name} ({', '.join(notes)})" if notes else name

        return Text("Users: " + (", ".join(about(n) for n in names) or "none"))

    def _hostname_error(self, hostname: str) -> bool:
        try:
            if hostname:
                validate_hostname(hostname)
        except ToplayerError as e:
            self.query_one("#hostname-error", Static).update(Text(str(e)))
            return True
        self.query_one("#hostname-error", Static).update("")
        return False

    # --- actions ---

    def action_diff(self) -> None:
        if self.current is not None and self.current not in SECRET_FILES:
            self._with_image_file(self.current, "diff")

    def action_keep(self) -> None:
        if self.current is None or self.current in SECRET_FILES:
            return
        new = self._editor_bytes()
        if self.pending == (self.current, new):
            self.edits[self.current] = new
            self.pending = None
            self.query_one("#path", Static).update(
                Text(f"{self.current}: kept (written at Review)"))
            self._fill_tree()
        else:
            self._with_image_file(self.current, "keep")

    def action_blur(self) -> None:
        self.set_focus(None)

    def action_next(self) -> None:
        hostname = self.query_one("#hostname", Input).value.strip()
        if self._hostname_error(hostname):
            self.query_one(TabbedContent).active = "users-tab"
            self.query_one("#hostname", Input).focus()
            return
        self.dismiss(Next(self.state.with_changes(settings=self._settings(),
                                                  toplayer_edits=dict(self.edits),
                                                  passwords=dict(self.passwords))))
    def action_back(self) -> None:
        self.dismiss(Back())

    def has_pending_edits(self) -> bool:
        """Typed here but not in ``state`` yet: editor text, kept files, hostname, users."""
        if self.loaded is not None and self.query_one("#editor", TextArea).text != self.loaded:
            return True
        return (self.edits != self.state.toplayer_edits or self.passwords != self.state.passwords
                or self._settings() != self.state.settings)

    def action_quit_wizard(self) -> None:
        quit_asking(self, self.state, self.has_pending_edits())

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.action_back()

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.action_next()
