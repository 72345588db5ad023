"""The Top layer step's file pane: the open file's path line, its editor, and a diff view.

Widgets only: what a file holds and what keeping it means are decided by
the screen and ``wizard/`` (``wizard.toplayer.machine.generated_file``,
``wizard.common.diffs.unified_diff``).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static, TextArea

_LANGUAGES = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
              ".sh": "bash", ".xml": "xml", ".css": "css", ".py": "python"}


def language_for(path: str, available: set[str]) -> str | None:
    """TextArea language for a file name, when Textual can highlight it."""
    lang = _LANGUAGES.get(PurePosixPath(path).suffix)
    return lang if lang in available else None


class DiffView(VerticalScroll):
    """A scrollable unified diff (or a sentence when there is none)."""

    def __init__(self, *, id: str, text_id: str) -> None:  # noqa: A002 — Textual's name
        super().__init__(id=id)
        self.text_id = text_id

    def compose(self) -> ComposeResult:
        yield Static("", id=self.text_id)

    def show(self, diff: str) -> None:
        """Show ``diff`` highlighted, or ``diff`` as plain text when it is not a diff.

        Scrolled to its first change: in a short box (a 24-line terminal) the
        headers and leading context would hide what changed.
        """
        is_diff = diff.startswith("---")
        self.query_one(Static).update(Syntax(diff, "diff", theme="ansi_dark") if is_diff
                                      else Text(diff))
        first = next((i for i, line in enumerate(diff.splitlines())
                      if line[:1] in "+-" and line[:3] not in ("+++", "---")), 0)
        self.scroll_home(animate=False)
        self.call_after_refresh(self.reveal, first)

    def reveal(self, line: int) -> None:
        """Scroll ``line`` into view with two lines above it, if it is below the box."""
        if line >= self.scrollable_content_region.height:
            self.scroll_to(y=line - 2, animate=False)


class FileEditor(Vertical):
    """The file picked in the tree: a path line, a TextArea, its diff against the image."""

    def __init__(self) -> None:
        super().__init__(id="editor-pane")
        self.loaded: str | None = None
        """The text last loaded into the editor (None: no file is editable)."""

    def compose(self) -> ComposeResult:
        yield Static("Pick a file on the left (enter opens it).", id="path")
        yield TextArea(id="editor", show_line_numbers=True, disabled=True)
        yield DiffView(id="diff-box", text_id="diff")

    @property
    def area(self) -> TextArea:
        return self.query_one("#editor", TextArea)

    def say(self, text: str) -> None:
        """Put ``text`` on the path line."""
        self.query_one("#path", Static).update(Text(text))

    def show_diff(self, diff: str) -> None:
        self.query_one(DiffView).show(diff)

    def show_file(self, rel: str, data: bytes) -> None:
        """Load ``data`` as ``rel`` into the editor, highlighted when Textual knows the type."""
        area = self.area
        area.disabled = False
        area.language = language_for(rel, set(area.available_languages))
        self.loaded = data.decode("utf-8", "replace")
        area.load_text(self.loaded)
        self.say(f"{rel}   (ctrl+s keeps it, ctrl+o shows the diff against the image)")

    def show_nothing(self, why: str) -> None:
        """Empty and disable the editor (a secret file, or one that cannot be read)."""
        self.loaded = None
        self.area.load_text("")
        self.area.disabled = True
        self.say(why)

    def text_bytes(self) -> bytes:
        """The editor's text as it would be written."""
        return self.area.text.encode()

    def is_dirty(self) -> bool:
        """Whether text was typed since the file was loaded."""
        return self.loaded is not None and self.area.text != self.loaded
