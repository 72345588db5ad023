"""The wizard's steps, routes and outcomes: pure, shared by the TUI and its tests.

Step names match the core modules and the screens (DESIGN §5).  Each mode
has one ``Route``: the screens it visits and the apply steps it writes, in
one table.  The TUI walks a route with typed outcomes that carry the state;
the same ``Settings`` it collects are what headless ``apply`` takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from wizard.settings.config import Settings

if TYPE_CHECKING:
    from wizard.disk.disks import Chosen


class Step(StrEnum):
    """One screen of the wizard."""

    WELCOME = "welcome"
    DISK = "disk"
    PARTITION = "partition"
    DOCKER = "docker_daemon"
    IMAGE = "images"
    TOPLAYER = "toplayer"
    INITRAMFS = "initramfs"
    BOOTLOADER = "bootloader"
    REVIEW = "review"
    UPDATE = "update"
    DONE = "done"


class Mode(StrEnum):
    """What the user chose on the welcome screen."""

    FULL = "full"
    RECONFIGURE_TOPLAYER = "toplayer"
    SWITCH_IMAGE = "image"
    REBUILD_INITRAMFS = "initramfs"
    REWRITE_BOOT_ENTRY = "bootloader"
    UPDATE = "update"
    ROLLBACK = "rollback"
    NEW_MACHINE = "new_machine"


@dataclass(frozen=True)
class Route:
    """The screens a mode visits and what its apply writes."""

    steps: tuple[Step, ...]
    """Screens in order, Welcome first, Done last."""
    writes: tuple[str, ...]
    """The ``apply.EXECUTE_STEPS`` this mode runs, in execute's order."""


_EVERYTHING = ("initramfs", "toplayer", "bootloader", "config")

ROUTES: dict[Mode, Route] = {
    Mode.FULL: Route((Step.WELCOME, Step.PARTITION, Step.DOCKER, Step.IMAGE, Step.TOPLAYER,
                      Step.INITRAMFS, Step.BOOTLOADER, Step.REVIEW, Step.DONE), _EVERYTHING),
    # Reconfiguring the top layer rebuilds nothing, so it takes seconds.
    Mode.RECONFIGURE_TOPLAYER: Route((Step.WELCOME, Step.TOPLAYER, Step.REVIEW, Step.DONE),
                                     ("toplayer", "config")),
    Mode.SWITCH_IMAGE: Route((Step.WELCOME, Step.DOCKER, Step.IMAGE, Step.INITRAMFS,
                              Step.BOOTLOADER, Step.REVIEW, Step.DONE), _EVERYTHING),
    # A rebuild is a new generation: the entries must name it (and the old ones go).
    Mode.REBUILD_INITRAMFS: Route((Step.WELCOME, Step.INITRAMFS, Step.REVIEW, Step.DONE),
                                  ("initramfs", "bootloader", "config")),
    Mode.REWRITE_BOOT_ENTRY: Route((Step.WELCOME, Step.BOOTLOADER, Step.REVIEW, Step.DONE),
                                   ("bootloader", "config")),
    # A new generation for what the tag is now, or the previous one again: the Update
    # screen shows the plan and runs ``wizard.flows.update`` (not apply's steps).
    Mode.UPDATE: Route((Step.WELCOME, Step.UPDATE, Step.DONE), ()),
    Mode.ROLLBACK: Route((Step.WELCOME, Step.UPDATE, Step.DONE), ()),
    # A disk, free space or an empty partition made into the partition, its store and
    # ESP (``install``): the Review installs, then applies everything on it.  No Docker,
    # Initramfs or Boot entry step: nothing is there to check or build before install.
    Mode.NEW_MACHINE: Route((Step.WELCOME, Step.DISK, Step.IMAGE, Step.TOPLAYER, Step.REVIEW,
                             Step.DONE), _EVERYTHING),
}
"""Mode -> its route: the one table of what each mode shows and writes."""


@dataclass(frozen=True)
class WizardState:
    """Everything collected so far; immutable, changed with ``dataclasses.replace``."""

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
    new_disk: Chosen | None = None
    """New machine: where it goes, the disk as the Disk step surveyed it, the plan shown."""

    @property
    def writes(self) -> tuple[str, ...]:
        """The apply steps this state's mode runs."""
        return ROUTES[self.mode].writes


def images_from_host(state: WizardState) -> bool:
    """Whether the Image step offers this machine's own docker images, not the partition's.

    A new machine has no store yet: install copies the chosen image from the
    host's docker (or pulls it) into the new partition's, so the host's
    storage driver does not matter and no subvolume is resolved beforehand.
    """
    return state.mode is Mode.NEW_MACHINE


@dataclass(frozen=True)
class _Carrying:
    state: WizardState
    """The state as the step leaves it (e.g. with a build it started)."""


class Next(_Carrying):
    """Go on to the next step with the updated state."""


class Back(_Carrying):
    """Return to the previous step; ``state`` is the screen's own (e.g. a new build)."""


class Quit(_Carrying):
    """Leave the wizard (already confirmed when input would be lost)."""


Outcome = Next | Back | Quit


def first() -> Step:
    """The first step of every route."""
    return Step.WELCOME


def position(step: Step, state: WizardState) -> tuple[int, int]:
    """``(n, total)`` of ``step`` on ``state.mode``'s route, 1-based (``4/9``)."""
    route = ROUTES[state.mode].steps
    return (route.index(step) + 1 if step in route else 1), len(route)


def after(step: Step, state: WizardState) -> Step | None:
    """The step after ``step`` on ``state.mode``'s route, or None at the end."""
    route = ROUTES[state.mode].steps
    index = route.index(step) if step in route else 0
    return route[index + 1] if index + 1 < len(route) else None


def before(step: Step, state: WizardState) -> Step:
    """The step before ``step`` on the route (the first step stays put)."""
    route = ROUTES[state.mode].steps
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


def rebuilt(kept: WizardState, returned: WizardState) -> bool:
    """Whether a step started a build since ``kept``, the state it was entered with.

    ``returned`` is what its Back or Quit carries.  Only the initramfs step
    builds; once it started a new build, the one ``kept`` refers to is gone
    (a build removes stale ones) and the new one, never handed on with Next,
    can no longer be installed: the caller discards ``returned``'s build and
    drops ``kept``'s reference.
    """
    return returned.staged_initramfs != kept.staged_initramfs
