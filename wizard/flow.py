"""The wizard's steps and their order: pure, shared by the TUI and its tests.

Step names match the core modules and the screens (DESIGN §5).  The TUI
walks these steps with typed outcomes; the same ``Settings`` it collects are
what headless ``apply`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from wizard.config import Settings


class Step(StrEnum):
    """One screen of the wizard."""

    WELCOME = "welcome"
    PARTITION = "partition"
    DOCKER = "docker_daemon"
    IMAGE = "images"
    TOPLAYER = "toplayer"
    INITRAMFS = "initramfs"
    BOOTLOADER = "bootloader"
    REVIEW = "review"
    DONE = "done"


class Mode(StrEnum):
    """What the user chose on the welcome screen."""

    FULL = "full"
    RECONFIGURE_TOPLAYER = "toplayer"
    SWITCH_IMAGE = "image"
    REBUILD_INITRAMFS = "initramfs"
    REWRITE_BOOT_ENTRY = "bootloader"


ROUTES: dict[Mode, tuple[Step, ...]] = {
    Mode.FULL: (Step.WELCOME, Step.PARTITION, Step.DOCKER, Step.IMAGE, Step.TOPLAYER,
                Step.INITRAMFS, Step.BOOTLOADER, Step.REVIEW, Step.DONE),
    Mode.RECONFIGURE_TOPLAYER: (Step.WELCOME, Step.TOPLAYER, Step.REVIEW, Step.DONE),
    Mode.SWITCH_IMAGE: (Step.WELCOME, Step.DOCKER, Step.IMAGE, Step.INITRAMFS, Step.BOOTLOADER,
                        Step.REVIEW, Step.DONE),
    Mode.REBUILD_INITRAMFS: (Step.WELCOME, Step.INITRAMFS, Step.REVIEW, Step.DONE),
    Mode.REWRITE_BOOT_ENTRY: (Step.WELCOME, Step.BOOTLOADER, Step.REVIEW, Step.DONE),
}
"""Which steps each mode visits, in order."""


@dataclass(frozen=True)
class WizardState:
    """Everything collected so far; immutable, changed with ``replace``."""

    settings: Settings | None = None
    """Settings being built (None until a partition and image are known)."""
    mode: Mode = Mode.FULL
    """The route through the steps."""
    saved: Settings | None = None
    """The config found on the partition at start, if any (reconfigure modes)."""
    passwords: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    """New users' passwords: kept in memory only, never saved, logged or shown."""
    toplayer_edits: dict[str, bytes] = field(default_factory=dict)
    """Top-layer files edited in the TUI: relative path -> new content."""
    staged_initramfs: str | None = None
    """Kernel/initramfs built by the initramfs step but not installed yet: the staged
    directory relative to the partition's top level (installed at Review/apply)."""

    def with_changes(self, **changes: object) -> WizardState:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Next:
    """Go on to the next step with the updated state."""

    state: WizardState


@dataclass(frozen=True)
class Back:
    """Return to the previous step."""


@dataclass(frozen=True)
class Quit:
    """Leave the wizard."""


Outcome = Next | Back | Quit


def first() -> Step:
    """The first step of every route."""
    return Step.WELCOME


def after(step: Step, state: WizardState) -> Step | None:
    """The step after ``step`` on ``state.mode``'s route, or None at the end."""
    route = ROUTES[state.mode]
    index = route.index(step) if step in route else 0
    return route[index + 1] if index + 1 < len(route) else None


def before(step: Step, state: WizardState) -> Step:
    """The step before ``step`` on the route (the first step stays put)."""
    route = ROUTES[state.mode]
    index = route.index(step) if step in route else 0
    return route[max(index - 1, 0)]


def has_unsaved_changes(state: WizardState) -> bool:
    """Whether leaving now would lose what the user entered.

    Choosing a mode is not a change; settings that differ from the saved
    config (or any settings when nothing is saved), top-layer edits and new
    passwords are.
    """
    return bool(state.toplayer_edits or state.passwords
                or (state.settings is not None and state.settings != state.saved))


def rebuilt_before_back(step: Step, kept: WizardState, on_screen: WizardState) -> bool:
    """Whether Back from ``step`` leaves a build made on this visit unreachable.

    ``kept`` is the state the step was entered with, ``on_screen`` the step
    screen's own.  Only the initramfs step builds; once it started a new
    build, the one ``kept`` refers to is gone (a build removes stale ones)
    and the new one, never handed on with Next, can no longer be installed:
    the caller discards ``on_screen``'s build and drops ``kept``'s reference.
    """
    return step is Step.INITRAMFS and on_screen.staged_initramfs != kept.staged_initramfs
