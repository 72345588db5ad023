"""Preview and apply a configuration: the two calls the CLI and the TUI share.

The front ends only collect an ``ApplyRequest`` (plain data: settings,
passwords, steps, top-layer edits, a staged build) and hand it to the core:

- ``preview`` opens a session (partition top level mounted, daemon checked,
  the partition's lock unless told otherwise), makes the plan and closes the
  session again before it returns: nothing stays mounted or locked while
  the user reads the plan.
- ``apply`` opens its own session, makes the plan again from what is on
  disk *now* and executes it; the session is closed whatever happens (done,
  failed, cancelled, or the consumer stopped iterating).

The plan shown and the plan applied are made from the same request, so they
differ only where the disk changed in between.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from wizard.common.errors import InitramfsError
from wizard.common.events import Event, check_cancel
from wizard.flows import apply as apply_mod
from wizard.flows.flow import WizardState
from wizard.flows.review import RefindPreview, Section, refind_preview
from wizard.settings.config import Settings

__all__ = ["ApplyRequest", "Preview", "apply", "boot_entries", "preview"]

BOOT_STEPS = ("initramfs", "bootloader")
"""The steps that decide the boot entries: the generation added, and the block naming it."""


@dataclass(frozen=True)
class ApplyRequest:
    """What to write, as collected by the CLI's options or the TUI's screens."""

    settings: Settings
    """The settings to apply (``docker_path`` is filled in from the daemon)."""
    passwords: Mapping[str, str] = field(default_factory=dict, repr=False)
    """New users' passwords (user -> password): memory only, never shown or logged."""
    steps: tuple[str, ...] = apply_mod.EXECUTE_STEPS
    """Which of ``apply.EXECUTE_STEPS`` to plan and write."""
    edits: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    """Top-layer files edited in the TUI: relative path -> new content (may hold
    secrets such as a shadow file, so it stays out of ``repr`` too)."""
    staged: str | None = None
    """A staged initramfs build (``initramfs.build(stage_only=True)``), relative to the
    partition's top level, e.g. ``boot_docker/.build-x``: installed instead of building
    (used only when ``"initramfs"`` is in ``steps``)."""

    def __post_init__(self) -> None:
        apply_mod.check_steps(self.steps)


@dataclass(frozen=True)
class Preview:
    """A plan made and let go: plain data, nothing mounted or locked behind it."""

    plan: apply_mod.Plan
    """The plan as made now (``plan.top`` is where the top level was mounted then)."""
    steps: tuple[str, ...]
    """The steps it was made for (the request's)."""
    sections: tuple[Section, ...]
    """The review, section by section (``review.sections``): what the TUI shows."""
    text: str
    """The review as one text block (``report.render_plan``): what the CLI prints."""

    @property
    def default_question(self) -> bool:
        """A default of the user's own is in force and no answer was given.

        refind.conf has the user's ``default_selection``, or a distribution's
        GRUB boots the machine (way b: it always has its own default).  Then
        the plan keeps theirs (nothing of the user's changes unasked); the
        answer is ``Settings.default_entry`` ("yes"/"no"), and a new preview.
        """
        from wizard.boot import bootloader

        if self.plan.settings.default_entry:
            return False
        if self.plan.chain is not None:  # a distribution's GRUB always has a default of its own
            return self.plan.chain.loader == "grub" and self.plan.chain.custom is not None
        old = self.plan.refind_old
        return old is not None and bool(bootloader.user_defaults(bootloader.decode(old)))


def preview(request: ApplyRequest, *, cancel: threading.Event | None = None,
            lock: bool = True) -> Preview:
    """Validate ``request``, make its plan in a session of its own and close it again.

    Args:
        request: what to plan.
        cancel: set it to stop between the parts of the plan (``Cancelled``).
        lock: take the partition's lock while planning (a dry run takes none).

    Raises:
        WizardError: bad settings, a precondition fails (partition, daemon,
            image, ESP, …), the lock is held, or cancelled.

    """
    from wizard.flows.report import render_plan
    from wizard.flows.review import sections

    request.settings.validate()
    check_cancel(cancel)
    with apply_mod.open_session(request.settings, lock=lock) as session:
        plan = _make_plan(session, request, cancel)
    return Preview(plan, request.steps, tuple(sections(plan, request.steps)),
                   render_plan(plan, request.steps))


def boot_entries(state: WizardState, *,
                 cancel: threading.Event | None = None) -> RefindPreview:
    """What the Bootloader step shows: the entries apply writes for ``state``, and their diff.

    The plan of the state's boot steps only (``BOOT_STEPS`` among its mode's):
    the same plan apply makes, so the generation number, paths and command
    line are the ones written (no top layer planned, nothing written).

    Raises:
        WizardError: as ``preview`` (no ESP or refind.conf found, …).
        ValueError: the state's mode writes no boot entry.

    """
    steps = tuple(s for s in state.writes if s in BOOT_STEPS)
    if "bootloader" not in steps:
        raise ValueError(f"mode {state.mode} writes no boot entry")
    return refind_preview(preview(request_for(state, steps), cancel=cancel).plan)


def apply(request: ApplyRequest, *,
          cancel: threading.Event | None = None) -> Generator[Event, None, None]:
    """Plan ``request`` again in a session of its own and carry it out, yielding events.

    A generator: nothing happens until it is iterated.  The session (mount,
    daemon client, the partition's lock) is opened at the first step and
    closed when the generator ends, raises, or is closed early (the consumer
    stops iterating, or ``cancel`` is set and ``Cancelled`` is raised).

    Raises:
        WizardError: as ``preview``, plus what ``apply.execute`` raises
            (``Cancelled`` when ``cancel`` is set).

    """
    request.settings.validate()
    check_cancel(cancel)
    with apply_mod.open_session(request.settings) as session:
        plan = _make_plan(session, request, cancel)
        check_cancel(cancel)
        yield from apply_mod.execute(session, plan, steps=request.steps, cancel=cancel)


def staged_path(top: Path, request: ApplyRequest) -> Path | None:
    """The request's staged build under ``top``, when it is installed in its steps.

    Raises:
        InitramfsError: ``request.staged`` is not a ``.build-*`` directory directly
            in the partition's boot directory (nothing else is ever installed from).

    """
    if request.staged is None or "initramfs" not in request.steps:
        return None
    from wizard.boot.initramfs import SCRATCH_PREFIX

    rel = PurePosixPath(request.staged)
    if (rel.is_absolute() or rel.parent != PurePosixPath(request.settings.boot_dir)
            or not rel.name.startswith(SCRATCH_PREFIX)):
        raise InitramfsError(f"{request.staged} is not a staged build in "
                             f"{request.settings.boot_dir}", "build the initramfs again")
    return top / rel


def _make_plan(session: apply_mod.Session, request: ApplyRequest,
               cancel: threading.Event | None) -> apply_mod.Plan:
    # Only what the steps write is planned: reconfiguring the top layer needs
    # neither the probe container nor the ESP.
    return apply_mod.make_plan(session, dict(request.passwords), cancel=cancel,
                               steps=request.steps, staged=staged_path(session.top, request),
                               edits=dict(request.edits))


def request_for(state: WizardState, steps: tuple[str, ...] | None = None) -> ApplyRequest:
    """The ``ApplyRequest`` for what the TUI collected in ``state``.

    Args:
        state: with ``settings`` set (the review step is reached only then).
        steps: what to write; default: the steps of ``state.mode``.

    Raises:
        ValueError: ``state`` has no settings yet.

    """
    if state.settings is None:
        raise ValueError("no settings collected yet: nothing to plan")
    return ApplyRequest(settings=state.settings, passwords=state.passwords,
                        steps=state.writes if steps is None else steps,
                        edits=state.toplayer_edits, staged=state.staged_initramfs)
