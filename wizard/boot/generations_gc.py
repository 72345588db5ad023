"""Garbage collection of generations: which go, and removing them without harm.

``plan_gc`` decides (pure): the newest ``keep`` generations stay, plus any the
caller must keep (the one booted now, a rollback's default, those of the last
good image); the others go, and an image is *released* (unpinned for good,
deleted when nothing else refers to it) only when no kept generation was
built from the same image ID.

``collect`` carries a plan out, in the order that leaves a bootable,
consistent set at every point: the kept generations' pins are made (again)
first, then the removed generations' pins are dropped, then their files.  A
crash between the last two leaves a record whose pin is gone, which the next
run collects again; never a pin-less kept generation, never a deleted kernel
a boot entry still names (the caller rewrites the entries before collecting).

``remove`` deletes only what a generation's record says the wizard made in
its own directory, each name checked just before its ``unlink`` (see there).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.boot.generations import (
    GEN_DIR,
    NAME_RE,
    RECORD_NAME,
    Generation,
    GenerationError,
    Inventory,
)
from wizard.common.atomic import backup_pattern
from wizard.common.errors import WizardError
from wizard.store import pins


@dataclass(frozen=True)
class GcPlan:
    """What a garbage collection keeps and removes."""

    keep: tuple[Generation, ...]
    """Generations that stay, oldest first."""
    remove: tuple[Generation, ...]
    """Generations whose files, record and pin go, oldest first."""
    released: tuple[str, ...]
    """Image IDs no kept generation uses: unpinned for good (sorted)."""


def plan_gc(inventory: Inventory, keep: int = 2, *, also_keep: Iterable[int] = (),
            keep_images: Iterable[str] = ()) -> GcPlan:
    """Decide which generations go (nothing is touched).

    Args:
        inventory: from ``generations.load``; its unreadable directories are
            not generations and are never collected.
        keep: how many of the newest stay (``Settings.generations``, at least 2).
        also_keep: numbers that stay whatever their age (the booted one, the
            default after a rollback).
        keep_images: image IDs whose generations stay, so their pins do: the
            hook's last good image (its fallback) and the booted one.

    Raises:
        ValueError: ``keep`` is below 2: the "previous" entry needs a generation.

    """
    if isinstance(keep, bool) or keep < 2:
        raise ValueError(f"keep must be at least 2, not {keep!r}")
    gens = list(inventory.generations)
    numbers, images = set(also_keep), set(keep_images)
    kept = [g for i, g in enumerate(gens)
            if i >= len(gens) - keep or g.number in numbers or g.image_id in images]
    gone = [g for g in gens if g not in kept]
    kept_ids = {g.image_id for g in kept}
    released = sorted({g.image_id for g in gone if g.image_id and g.image_id not in kept_ids})
    return GcPlan(tuple(kept), tuple(gone), tuple(released))


@dataclass(frozen=True)
class Removed:
    """What ``remove`` did to one generation's directory."""

    deleted: tuple[str, ...]
    """Names unlinked."""
    kept: tuple[str, ...]
    """Names it refused (not a regular file, a symlink, …), one reason each."""
    directory_gone: bool
    """Whether ``gen/<n>`` itself went (only when nothing else was in it)."""


def remove(boot_dir: Path, gen: Generation) -> Removed:
    """Delete what the record says the wizard made in ``gen/<n>``, then the record.

    The directories are opened without following symlinks (``O_NOFOLLOW``,
    then relative to the open directory: nothing can be swapped in between)
    and must be on the filesystem of ``boot_dir``; each name is a bare name
    from the record (or a backup of the record) and is unlinked only when it
    is a regular file at that moment.  A legacy generation loses its record
    only: the flat pair stays.  Anything else in the directory stays, and so
    does the directory then.

    Raises:
        GenerationError: ``boot_dir``, ``gen`` or ``gen/<n>`` is a symlink,
            not a directory, or on another filesystem.

    """
    deleted: list[str] = []
    kept: list[str] = []
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fds: list[int] = []
    try:
        try:
            fds.append(os.open(boot_dir, flags))
            fds.append(os.open(GEN_DIR, flags, dir_fd=fds[0]))
            fds.append(os.open(str(gen.number), flags, dir_fd=fds[1]))
        except OSError as e:
            raise GenerationError(f"refusing to clean generation {gen.number} under "
                                  f"{boot_dir}: {e.strerror} (a symlink?)",
                                  "look at the directory by hand") from e
        dev = os.fstat(fds[0]).st_dev
        if any(os.fstat(fd).st_dev != dev for fd in fds[1:]):
            raise GenerationError(f"{boot_dir}/{GEN_DIR}/{gen.number} is on another filesystem",
                                  "unmount what is mounted there")
        gen_fd = fds[2]
        backups = backup_pattern(RECORD_NAME)
        extra = sorted(n for n in os.listdir(gen_fd) if backups.match(n))
        for name in [*dict.fromkeys(gen.files), *extra, RECORD_NAME]:
            if not NAME_RE.match(name) and not backups.match(name):
                kept.append(f"{name}: not a bare name")
                continue
            try:
                st = os.stat(name, dir_fd=gen_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                kept.append(f"{name}: not a regular file")
                continue
            os.unlink(name, dir_fd=gen_fd)
            deleted.append(name)
        os.fsync(gen_fd)
        gone = True
        try:
            os.rmdir(str(gen.number), dir_fd=fds[1])
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            gone = False
        os.fsync(fds[1])
    finally:
        for fd in fds:
            os.close(fd)
    return Removed(tuple(deleted), tuple(kept), gone)


@dataclass
class Collected:
    """What ``collect`` did."""

    removed: dict[int, Removed] = field(default_factory=dict)
    """Per removed generation: its files."""
    unpinned: dict[int, pins.Unpinned] = field(default_factory=dict)
    """Per generation whose pin was dropped."""
    problems: list[str] = field(default_factory=list)
    """One line per generation left (partly) in place, and why."""


def collect(boot_dir: Path, plan: GcPlan, *, client: Any = None, label: str | None = None,
            inventory: Inventory | None = None) -> Collected:
    """Carry ``plan`` out: pin the kept, unpin the removed, then delete their files.

    Call it only after the boot entries name kept generations alone.  With no
    ``client`` the pins are left as they are (the files still go).  With an
    ``inventory``, pins of numbers it does not know at all (left by a crash
    between unpinning and deleting, or by hand) are dropped too.

    Raises:
        PinError: a kept generation could not be pinned: nothing was removed.

    """
    done = Collected()
    held: set[int] = set()
    if client is not None:
        if label is None:
            raise ValueError("collect needs the partition label to find its pins")
        keep = {g.number: g.image_id for g in plan.keep if g.image_id}
        if inventory is None:
            # Which numbers have directories is unknown: pin the kept, drop nothing else.
            for number, image_id in sorted(keep.items()):
                pins.pin(client, image_id, label, number)
        else:
            # Numbers with a directory are not stale (removed ones are unpinned below).
            known = inventory.taken | {g.number for g in plan.remove}
            done.unpinned.update(pins.reconcile(client, label, keep, known))
        for gen in plan.remove:
            try:
                # The image itself may go only when released (and then only if
                # nothing else refers to it: unpin checks).
                released = gen.image_id if gen.image_id in plan.released else None
                done.unpinned[gen.number] = pins.unpin(client, label, gen.number, released)
            except pins.PinError as e:
                # The daemon failed: keep the record too, the next run tries again.
                done.problems.append(f"generation {gen.number} kept: {e}")
                held.add(gen.number)
                continue
            # A pin container left in place (someone started it) is only reported: the
            # files still go, and a later run with the inventory drops it.
            done.problems += [f"generation {gen.number}: {note}"
                              for note in done.unpinned[gen.number].notes]
    for gen in plan.remove:
        if gen.number in held:
            continue
        try:
            done.removed[gen.number] = remove(boot_dir, gen)
        except (WizardError, OSError) as e:
            done.problems.append(f"generation {gen.number}: {e}")
    return done
