"""Typed events yielded by the core's long-running generators.

A long operation (pull, initramfs build, apply) is a generator of these
events that takes a ``cancel`` token (a ``threading.Event``).  The CLI prints
them; the TUI posts them as messages from a thread worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class StepStarted:
    """A named step began (one of ``apply.EXECUTE_STEPS``, each named after its core module)."""

    step: str
    """Step name, e.g. ``"initramfs"``."""
    label: str
    """Human-readable description of what is being done."""


@dataclass(frozen=True)
class LogLine:
    """One line of output from a tool the core runs (generator log, pull status)."""

    text: str
    """The line, without trailing newline; never contains secrets."""


@dataclass(frozen=True)
class Progress:
    """Progress of the current step."""

    current: float
    """Work done so far."""
    total: float | None
    """Total work, or None when unknown."""
    label: str = ""
    """What is progressing."""


@dataclass(frozen=True)
class StepDone:
    """A step finished successfully."""

    step: str
    """Step name."""
    detail: str = ""
    """Short summary of the result."""


Event = StepStarted | LogLine | Progress | StepDone


def check_cancel(cancel: threading.Event | None) -> None:
    """Raise ``Cancelled`` if the token is set; call between units of work."""
    if cancel is not None and cancel.is_set():
        from wizard.common.errors import Cancelled

        raise Cancelled("cancelled", "nothing after the last finished step was changed")


def drive(events: Generator[Event, None, T], on_event: Callable[[Event], None] | None = None
          ) -> T:
    """Run ``events`` to the end, handing each event to ``on_event``; return its result.

    The generator's return value (e.g. where a build went) is what a ``for``
    loop would drop; exceptions propagate.
    """
    while True:
        try:
            event = next(events)
        except StopIteration as stop:
            result: T = stop.value  # typeshed types StopIteration.value as Any
            return result
        if on_event is not None:
            on_event(event)
