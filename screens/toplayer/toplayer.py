"""Top-layer step: files laid over the fresh root at every boot, hostname, fstab, users.

Edits stay in memory (``WizardState.toplayer_edits``, ``settings.hostname``,
``passwords``) until Review applies them; keeping an edited file first shows
its diff against the image's own copy.  Passwords never leave the form
except into ``WizardState.passwords``.

Keyboard: f1–f4 switch the tabs and focus the tab's first field; Tab walks
the fields in the order they are shown, then Back and Next; Escape leaves a
field, so that n/b/q (which a focused field takes as text) work again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static, TabbedContent, TabPane, Tree
from textual.widgets.option_list import Option

from screens.common.base import StepScreen, css
from screens.toplayer.editor import DiffView, FileEditor
from screens.toplayer.machine_form import MachineForm, UsersForm
from screens.toplayer.tree import ToplayerTree
from wizard.common.diffs import unified_diff
from wizard.common.errors import ToplayerError, WizardError
from wizard.flows.flow import Step, WizardState
from wizard.settings.config import Settings
from wizard.toplayer import fstab, machine
from wizard.toplayer.files import SECRET_FILES, validate_hostname

if TYPE_CHECKING:
    from wizard.flows.services import Services

WARNING = ("Everything outside the top layer and the persistent mounts in its fstab is "
           "RESET AT EVERY BOOT.")
OFFERED = ("etc/fstab", "etc/docker/daemon.json")
"""Files offered in the tree even before the top layer has them."""
TABS = {"files-tab": "Files", "users-tab": "Hostname & users", "machine-tab": "Machine",
        "fstab-tab": "fstab helper"}
"""Tab id -> its label; f1..f4 in this order."""
TAB_KEYS = Binding.Group("Switch tab")
FIRST_FIELD = {"files-tab": "#files", "users-tab": "#hostname",
               "machine-tab": "#machine-home", "fstab-tab": "#fstab-options"}
"""Tab id -> the field its key focuses (the first one shown)."""

Purpose = Literal["open", "diff", "keep", "fstab"]
"""What the image's copy of a file is fetched for."""


class ToplayerScreen(StepScreen):
    """Edit the top layer: files, hostname, fstab lines, users."""

    STEP = Step.TOPLAYER
    CSS_PATH = css("toplayer")
    AUTO_FOCUS = "#files"
    BINDINGS: ClassVar[list[BindingType]] = [
        # Function keys: no field takes them as text, tmux passes them, Textual's pilot sends
        # them.  One footer entry for the four (each tab's label names its key).
        *(Binding(f"f{i}", f"show_tab('{tab}')", label, group=TAB_KEYS)
          for i, (tab, label) in enumerate(TABS.items(), start=1)),
        Binding("ctrl+s", "keep", "Keep file"),
        # Not ctrl+d: the editor's own ctrl+d deletes a character and would win.
        Binding("ctrl+o", "diff", "Diff vs image"),
        Binding("escape", "leave_field", "Leave field"),
    ]

    hostname_problem: reactive[str] = reactive("", init=False)
    """Why the hostname field is not valid ("" when it is): blocks Next."""
    editing: reactive[str | None] = reactive(None, init=False)
    """The file in the editor that ctrl+s may keep (None: none, or a secret one)."""

    @dataclass
    class FilesLoaded(Message):
        """The top layer's current files arrived."""

        files: dict[str, bytes]

    @dataclass
    class OffersLoaded(Message):
        """The fstab helper's lines for the discovered partitions arrived."""

        offers: list[fstab.Suggestion]

    @dataclass
    class ImageFileLoaded(Message):
        """The image's own copy of a file arrived (None: the image has none)."""

        relpath: str
        data: bytes | None
        purpose: Purpose

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.files: dict[str, bytes] = {}
        self.edits: dict[str, bytes] = dict(state.toplayer_edits)
        self.passwords: dict[str, str] = dict(state.passwords)
        self.admins: list[str] = list(state.settings.admins) if state.settings else []
        self.image_files: dict[str, bytes | None] = {}
        self.current: str | None = None
        """The file picked in the tree."""
        self.pending: tuple[str, bytes] | None = None
        """A file whose diff was shown by ctrl+s: a second ctrl+s keeps this content."""
        self.pending_fstab: str | None = None

    # --- layout ---

    def compose_body(self) -> ComposeResult:
        s = self.state.settings
        yield Static(WARNING, id="warning")
        with TabbedContent(id="tabs"):
            with TabPane(tab_label("files-tab"), id="files-tab"), Horizontal():
                yield ToplayerTree("top layer", id="files")
                yield FileEditor()
            with TabPane(tab_label("users-tab"), id="users-tab"):
                yield UsersForm(s.hostname if s else None, self.users_text())
            with TabPane(tab_label("machine-tab"), id="machine-tab"):
                yield MachineForm(s, id="machine")
            with TabPane(tab_label("fstab-tab"), id="fstab-tab"):
                yield Static("Lines for the discovered partitions; enter adds the line to "
                             "the top layer's etc/fstab (same mountpoint: replaced).")
                yield OptionList(id="fstab-options")
                yield DiffView(id="fstab-diff-box", text_id="fstab-diff")

    def on_mount(self) -> None:
        # The base's on_mount runs too (Textual calls each class's handler).
        self.hostname_problem = problem_with(self.query_one(UsersForm).hostname_value())
        self.run_load_files()
        self.run_load_offers()

    # --- workers (core calls in threads; faults go to the base's one error path) ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="files")
    def run_load_files(self) -> None:
        with self.reporting("files"):
            self.post_message(self.FilesLoaded(self.services.toplayer_files(self.state)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="fstab-offers")
    def run_load_offers(self) -> None:
        s = self.state.settings
        with self.reporting("fstab-offers"):
            offers = fstab.suggestions(self.services.partitions(), s.label if s else None,
                                       s.docker_path if s else "docker")
            self.post_message(self.OffersLoaded(offers))

    @work(thread=True, exit_on_error=False, group="image-file")
    def run_fetch_image_file(self, relpath: str, purpose: Purpose) -> None:
        assert self.state.settings is not None
        with self.reporting("image-file"):
            data = self.services.image_file(self.state.settings.image, relpath)
            self.post_message(self.ImageFileLoaded(relpath, data, purpose))

    def with_image_file(self, relpath: str, purpose: Purpose) -> None:
        """Go on with ``purpose`` once the image's copy of ``relpath`` is known (cached)."""
        if relpath in self.image_files:
            self.image_file_ready(relpath, self.image_files[relpath], purpose)
        else:
            self.run_fetch_image_file(relpath, purpose)

    def work_ended(self, job: str) -> None:
        if job == "files":  # the offered files can still be edited
            self.files = {}
            self.fill_tree()
        elif job == "image-file":
            self.pending_fstab = None
            if self.current is not None and self.editing != self.current:
                self.query_one(FileEditor).show_nothing(
                    f"{self.current}: the image's copy could not be read")
        elif job == "fstab-offers":
            self.query_one("#fstab-diff-box", DiffView).show(
                "No lines to suggest: the partitions could not be listed.")

    # --- results ---

    @on(FilesLoaded)
    def show_files(self, message: FilesLoaded) -> None:
        self.files = message.files
        self.fill_tree()

    @on(OffersLoaded)
    def show_offers(self, message: OffersLoaded) -> None:
        options = self.query_one("#fstab-options", OptionList)
        options.clear_options()
        options.add_options(Option(f"{o.line}\n  # {o.why}", id=o.line) for o in message.offers)
        if message.offers:
            options.highlighted = 0  # enter adds the first line right away

    @on(ImageFileLoaded)
    def use_image_file(self, message: ImageFileLoaded) -> None:
        self.image_files[message.relpath] = message.data
        self.image_file_ready(message.relpath, message.data, message.purpose)

    def image_file_ready(self, rel: str, image: bytes | None, purpose: Purpose) -> None:
        editor = self.query_one(FileEditor)
        if purpose == "open" and rel == self.current:
            self.show_in_editor(rel, self.generated(rel, image))
        elif purpose in ("diff", "keep") and rel == self.current:
            new = editor.text_bytes()
            diff = unified_diff(image, new, f"{rel} (against the image's own file)")
            editor.show_diff(diff or "Same as the image's own file.")
            if purpose == "keep":
                self.pending = (rel, new)
                editor.say(f"{rel}: check the diff below, ctrl+s again keeps it")
        elif purpose == "fstab" and self.pending_fstab is not None:
            self.merge_fstab_line(self.pending_fstab, image)

    def merge_fstab_line(self, line: str, image: bytes | None) -> None:
        """Add ``line`` to the top layer's etc/fstab (or to the image's, if it has none)."""
        base = self.content("etc/fstab")
        old = base if base is not None else (image or b"")
        new = fstab.merge_line(old.decode("utf-8", "replace"), line).encode()
        self.pending_fstab = None
        self.edits["etc/fstab"] = new
        self.query_one("#fstab-diff-box", DiffView).show(
            unified_diff(old, new, "etc/fstab") or "etc/fstab already has this line.")
        self.fill_tree()
        if self.current == "etc/fstab":
            self.show_in_editor("etc/fstab", new)

    # --- the user's input ---

    @on(Tree.NodeSelected, "#files")
    def open_file(self, event: Tree.NodeSelected[str | None]) -> None:
        rel = event.node.data
        if not isinstance(rel, str):
            return
        self.current, self.pending, self.editing = rel, None, None
        editor = self.query_one(FileEditor)
        editor.show_diff("")
        if rel in SECRET_FILES:
            editor.show_nothing(f"{rel}: holds password hashes, not shown; use the users form")
            return
        content = self.content(rel)
        if content is None:
            editor.say(f"{rel}: loading the image's copy…")
            self.with_image_file(rel, "open")
        else:
            self.show_in_editor(rel, content)

    @on(OptionList.OptionSelected, "#fstab-options")
    def add_fstab_line(self, event: OptionList.OptionSelected) -> None:
        self.pending_fstab = event.option.id
        if self.content("etc/fstab") is not None:
            self.image_file_ready("etc/fstab", None, "fstab")
        else:
            self.with_image_file("etc/fstab", "fstab")

    @on(Input.Changed, "#hostname")
    def check_hostname(self, event: Input.Changed) -> None:
        self.hostname_problem = problem_with(event.value.strip())

    @on(Input.Submitted, "#hostname, #user-name, #user-pw")
    def go_to_next_field(self) -> None:
        self.focus_next()

    @on(Input.Submitted, "#user-pw2")
    def add_user_on_enter(self) -> None:
        self.action_add_user()

    def watch_hostname_problem(self, problem: str) -> None:
        self.query_one("#hostname-error", Static).update(Text(problem))
        self.update_nav()

    def watch_editing(self) -> None:
        self.refresh_bindings()  # ctrl+s and ctrl+o show only with a file to keep

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        self.refresh_bindings()  # ctrl+s and ctrl+o belong to the Files tab

    @property
    def tab(self) -> str:
        """The id of the tab shown."""
        return self.query_one(TabbedContent).active

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("keep", "diff"):
            return self.editing is not None and self.tab == "files-tab"
        if action == "leave_field":  # only a field that takes typed keys needs leaving
            return self.focused is not None and self.focused.check_consume_key("n", "n")
        return super().check_action(action, parameters)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        # At once, not with focus() (deferred): keys typed right after f2 go to the field.
        self.set_focus(self.query_one(FIRST_FIELD[tab], Widget))

    def action_leave_field(self) -> None:
        self.set_focus(None)

    def action_add_user(self) -> None:
        form = self.query_one(UsersForm)
        user = form.take_user()
        if user is None:
            return
        name, password, admin = user
        self.passwords[name] = password
        if admin and name not in self.admins:
            self.admins.append(name)
        form.show_users(self.users_text())

    def action_diff(self) -> None:
        if self.editing is not None:
            self.with_image_file(self.editing, "diff")

    def action_keep(self) -> None:
        rel = self.editing
        if rel is None:
            return
        new = self.query_one(FileEditor).text_bytes()
        if self.pending == (rel, new):
            self.edits[rel] = new
            self.pending = None
            self.query_one(FileEditor).say(f"{rel}: kept (written at Review)")
            self.fill_tree()
        else:
            self.with_image_file(rel, "keep")

    # --- what the base asks ---

    def can_next(self) -> bool:
        return not self.hostname_problem

    def next_state(self) -> WizardState:
        return replace(self.state, settings=self.settings_now(), passwords=dict(self.passwords),
                       toplayer_edits=dict(self.edits))

    def has_pending_edits(self) -> bool:
        """Typed here but not in ``state`` yet: editor text, kept files, hostname, users."""
        return (self.query_one(FileEditor).is_dirty() or self.edits != self.state.toplayer_edits
                or self.passwords != self.state.passwords
                or self.settings_now() != self.state.settings)

    # --- helpers (widgets only; the logic lives in wizard/) ---

    def generated(self, rel: str, image: bytes | None) -> bytes:
        """What apply would write for ``rel`` from the image's copy (fstab, daemon.json)."""
        settings = self.settings_now()
        try:
            return machine.generated_file(rel, image, settings) if settings else image or b""
        except WizardError as e:
            self.show_error(e)
            return image or b""

    def settings_now(self) -> Settings | None:
        """The state's settings with this screen's hostname, admins and machine switches."""
        s = self.state.settings
        if s is None:
            return None
        hostname = self.query_one(UsersForm).hostname_value() or None
        return self.query_one(MachineForm).applied(
            replace(s, hostname=hostname, admins=tuple(self.admins)))

    def content(self, rel: str) -> bytes | None:
        """``rel`` as the top layer will have it (kept edit, else current), None: not there."""
        return self.edits.get(rel, self.files.get(rel))

    def fill_tree(self) -> None:
        self.query_one(ToplayerTree).show(self.files, self.edits, OFFERED)

    def show_in_editor(self, rel: str, data: bytes) -> None:
        self.query_one(FileEditor).show_file(rel, data)
        self.editing = rel

    def users_text(self) -> Text:
        saved = self.state.settings.users if self.state.settings else ()
        names = list(dict.fromkeys([*saved, *self.passwords]))

        def about(name: str) -> str:
            notes = [x for x, on in (("new password", name in self.passwords),
                                     ("administrator", name in self.admins)) if on]
            return f"{name} ({', '.join(notes)})" if notes else name

        return Text("Users: " + (", ".join(about(n) for n in names) or "none"))


def tab_label(tab: str) -> str:
    """A tab's label with the key that opens it: ``Files (f1)``."""
    return f"{TABS[tab]} (f{list(TABS).index(tab) + 1})"


def problem_with(hostname: str) -> str:
    """Why ``hostname`` cannot be used ("" when it can; empty keeps the image's)."""
    try:
        if hostname:
            validate_hostname(hostname)
    except ToplayerError as e:
        return str(e)
    return ""
