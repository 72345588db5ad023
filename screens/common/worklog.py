"""The live view of a long core job (initramfs build, apply): a progress bar over a log.

Screens run the core's event generator in a thread worker and hand it to
``relay``, which posts one message per event to the screen
(``post_message`` is thread-safe).  The screen's own queue keeps them in
order with its other messages (a failure posted after the last progress is
shown after it); a ``ShowsWork`` screen handles them by updating its
``WorkLog``.  One place translates core events to the UI.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TypeVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widgets import Log, ProgressBar

from screens.common.base import TAIL_LINES
from wizard.common.events import Event, LogLine, Progress, StepDone, StepStarted, drive
from wizard.flows.flow import Outcome

_T = TypeVar("_T")


class WorkLog(Vertical):
    """Progress bar + log of a job; fed by ``relay`` from a worker thread."""

    DEFAULT_CSS = """
    WorkLog { height: 1fr; }
    WorkLog > ProgressBar { padding: 0 1; height: 1; }
    WorkLog > Log { height: 1fr; border: round $primary; }
    """

    @dataclass
    class Line(Message):
        """One line for the log."""

        text: str

    @dataclass
    class Advanced(Message):
        """The job advanced: ``fraction`` of all of it, ``label`` says what runs now."""

        fraction: float
        label: str

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=1.0, show_eta=False, id="progress")
        yield Log(max_lines=5000, id="log")

    def write_line(self, text: str) -> None:
        """Append a line to the log."""
        self.query_one(Log).write_line(text)

    def advance(self, fraction: float) -> None:
        """Move the bar to ``fraction`` (0..1) of the job."""
        self.query_one(ProgressBar).update(progress=min(fraction, 1.0))

    def reset(self) -> None:
        """Empty log, empty bar: a new run starts."""
        self.query_one(Log).clear()
        self.query_one(ProgressBar).update(progress=0)

    def finish(self) -> None:
        """Full bar: the job is complete."""
        self.query_one(ProgressBar).update(progress=1.0)

    @property
    def lines(self) -> list[str]:
        """What the log shows."""
        return list(self.query_one(Log).lines)


class ShowsWork(Screen[Outcome]):
    """Base of a screen with a ``work_log``: shows what ``relay`` posted to it.

    A ``Screen``, not a plain mixin: Textual registers ``@on`` handlers only
    on its own classes.  Put it *after* the step base, ``class
    BuildScreen(StepScreen, ShowsWork)``: CSS type selectors follow only the
    first base, and ``StepScreen`` rules (``assets/tcss/app.tcss``) must apply.
    """

    work_log: WorkLog

    @on(WorkLog.Line)
    def write_log_line(self, message: WorkLog.Line) -> None:
        self.work_log.write_line(message.text)

    @on(WorkLog.Advanced)
    def advance_work(self, message: WorkLog.Advanced) -> None:
        self.work_log.advance(message.fraction)
        self.show_progress(message.label)

    def show_progress(self, label: str) -> None:
        """Show what runs now (the screen's status line)."""


@dataclass
class Relayed:
    """What a relayed job left behind, also when it failed: for the screen's last message."""

    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    """The last log lines (for an error dialog)."""
    last_done: str = ""
    """Detail of the last ``StepDone`` (e.g. where the build went)."""


def relay(events: Generator[Event, None, _T], screen: MessagePump, *,
          steps: int = 1, seen: Relayed) -> _T:
    """Run ``events`` to the end in the calling worker thread, posting each to ``screen``.

    Progress is ``(steps done + fraction of the current step) / steps``; each
    ``StepDone`` completes one step.  Exceptions (``Cancelled``, core errors)
    propagate to the worker, which reports them with what ``seen`` collected;
    the generator is closed either way.

    Returns:
        The generator's return value (e.g. the staged build's directory).

    """
    done = 0

    def post(event: Event) -> None:
        nonlocal done
        match event:
            case LogLine(text=text):
                seen.tail.append(text)
                screen.post_message(WorkLog.Line(text))
            case StepStarted(label=label):
                screen.post_message(WorkLog.Line(f"== {label}"))
            case StepDone(step=step, detail=detail):
                done += 1
                seen.last_done = detail
                screen.post_message(WorkLog.Line(f"   done: {detail}"))
                screen.post_message(WorkLog.Advanced(min(done, steps) / steps, step))
            case Progress(current=current, total=total, label=label) if total:
                screen.post_message(WorkLog.Advanced((done + current / total) / steps, label))

    try:
        return drive(events, post)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
