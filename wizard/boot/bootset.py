"""The boot set: the generations, the rEFInd block naming them, and their pins, changed together.

``apply``, ``update`` and ``rollback`` all change it in the same three
moves, so a failure or a kill between any two leaves a set where every boot
entry names a complete kernel + initramfs:

1. the new generation is staged in a ``.build-*`` scratch directory (a build,
   or a copy of another generation's pair) and appears as ``gen/<n>`` by one
   rename (``generations.add``): nothing names it yet, nothing else changed;
2. refind.conf names it: one atomic write with a backup (``bootloader``);
   this is the commit;
3. the generations no entry names any more go (``collect_old``): the kept
   ones are pinned first, then the old ones are unpinned and the files their
   records list are deleted.  Generations of the hook's last good image and
   of the image running now are kept whatever their age.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wizard.boot import generations, generations_gc, initramfs, roots
from wizard.boot.bootloader import default_cmdline, menu_entries, render_entries, write_refind
from wizard.boot.fingerprint import Fingerprint
from wizard.boot.generations import Generation, GenerationError
from wizard.boot.initramfs import SCRATCH_PREFIX, STAGED_INITRD, STAGED_KERNEL, BuildTarget
from wizard.boot.status import hook_images
from wizard.common.errors import BootloaderError, WizardError
from wizard.common.events import Event, LogLine, StepDone, StepStarted
from wizard.settings.config import Settings
from wizard.store.images import normalize_ref, resolve_subvolume
from wizard.store.pins import PinError

_FICLONE = 0x40049409
"""ioctl: share the source's extents (btrfs); a copy in no time and no space."""


@dataclass(frozen=True)
class NewGeneration:
    """A planned generation and the boot block that will name it (nothing written yet)."""

    record: Generation
    """What ``generations.add`` will install (number, kernel, image ID, inputs)."""
    copy_from: Generation | None
    """Whose kernel + initramfs it reuses (same inputs, or a rollback); None: built."""
    previous: Generation | None
    """What the "previous" entry boots afterwards (the newest one now)."""
    adopt: Generation | None
    """The legacy flat pair, recorded as generation 0 first so "previous" can boot it."""
    block: str
    """The rEFInd block (default + previous entries)."""


def plan_new(top: Path, settings: Settings, *, image_id: str, inputs: Fingerprint,
             copy_from: Generation | None = None, pinned: bool = False,
             rolled_back_from: tuple[str, ...] = ()) -> NewGeneration:
    """Plan generation ``next_number`` of ``image_id`` (the configured tag unless ``pinned``).

    A ``pinned`` one (a rollback) records ``rolled_back_from``: the image IDs it
    turns away from, for as long as the tag names one of them the rollback holds.

    Raises:
        GenerationError: the generations directory cannot be read safely.
        BootloaderError: a value cannot be written into refind.conf.

    """
    boot_dir = top / settings.boot_dir
    inv = generations.load(boot_dir)
    previous = adopt = inv.newest
    if previous is not None and previous.legacy:
        # The flat pair was built from the last image the hook booted well, as far as
        # anybody knows; unknown: it gets no "previous" entry (it could boot only the tag).
        good, _ = hook_images(top, settings)
        previous = adopt = replace(previous, image_ref=normalize_ref(settings.image),
                                   image_id=good)
    else:
        adopt = None
    ref = copy_from.image_ref if pinned and copy_from and copy_from.image_ref else settings.image
    record = replace(generations.new_record(generations.next_number(inv), inputs, ref, image_id),
                     pinned=pinned,
                     rolled_back_from=tuple(sorted(set(rolled_back_from))) if pinned else None)
    return NewGeneration(record, copy_from, previous, adopt,
                         render_entries(settings, record, previous))


def current_block(top: Path, settings: Settings) -> str:
    """The block for the generations there are now (a boot entry written without a build).

    Raises:
        BootloaderError: there is no kernel + initramfs to name yet.

    """
    return entries(top, settings, None)[0]


def entries(top: Path, settings: Settings, new: NewGeneration | None) -> tuple[str, str]:
    """The block written into refind.conf and its default entry's kernel command line.

    ``new``: the generation the same apply adds (its block names it); None: the
    block names the generations there are now.  What the Bootloader step, the
    Review and apply show and write.

    Raises:
        BootloaderError: no ``new`` and no generation yet (nothing to boot).

    """
    if new is not None:
        return new.block, default_cmdline(settings, new.record)
    inv = generations.load(top / settings.boot_dir)
    if inv.newest is None:
        raise BootloaderError(f"no kernel + initramfs in {top / settings.boot_dir} yet: "
                              "a boot entry would name nothing",
                              "build them first (a full apply, or Rebuild initramfs)")
    return (render_entries(settings, inv.newest, inv.previous),
            default_cmdline(settings, inv.newest))


def menu(top: Path, settings: Settings,
         new: NewGeneration | None) -> tuple[list[tuple[str, str, str, str]], list[int]]:
    """The entries every bootloader writes (``bootloader.menu_entries``) and their generations.

    ``new`` as for ``entries``; the first number is the newest generation's.

    Raises:
        BootloaderError: no ``new`` and no generation yet (nothing to boot).

    """
    if new is not None:
        newest, previous = new.record, new.previous
    else:
        inv = generations.load(top / settings.boot_dir)
        if inv.newest is None:
            raise BootloaderError(f"no kernel + initramfs in {top / settings.boot_dir} yet: "
                                  "a boot entry would name nothing",
                                  "build them first (a full apply, or Rebuild initramfs)")
        newest, previous = inv.newest, inv.previous
    entries = menu_entries(settings, newest, previous)
    numbers = [newest.number] + ([previous.number] if previous is not None else [])
    return entries, numbers[:len(entries)]


def stage_copy(boot_dir: Path, source: Generation) -> Path:
    """Copy the kernel + initramfs of ``source`` into a new ``.build-*`` directory, like a build.

    On btrfs the copy is a reflink (shared extents): instant and free.
    """
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=boot_dir))
    try:
        for src, name in ((source.loader, STAGED_KERNEL), (source.initrd_path, STAGED_INITRD)):
            _clone(boot_dir / src, scratch / name)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch


def _clone(src: Path, dst: Path) -> None:
    with open(src, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as fin, \
            open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        except OSError:
            shutil.copyfileobj(fin, fout, 1 << 20)  # not btrfs: a plain copy
        fout.flush()
        os.fsync(fout.fileno())


def install(top: Path, settings: Settings, new: NewGeneration, staged: Path) -> Generation:
    """Move 1: make the staged pair generation ``new.record.number`` (one rename).

    Raises:
        GenerationError: the generations changed since the plan (another run),
            or the staged pair is not what the record says.

    """
    boot_dir = top / settings.boot_dir
    number = generations.next_number(generations.load(boot_dir))
    if number != new.record.number:
        raise GenerationError(f"the generations in {boot_dir} changed since the plan "
                              f"(next is {number}, planned {new.record.number})",
                              "run the command again")
    if new.adopt is not None:
        generations.adopt_legacy(boot_dir, new.adopt.image_ref or settings.image,
                                 new.adopt.image_id)
    return generations.add(boot_dir, staged, new.record)


def collect_old(top: Path, settings: Settings, client: Any) -> Iterator[Event]:
    """Move 3: pin the kept generations, remove the rest; one line per thing done or kept.

    Call it only once refind.conf names kept generations alone.  A pin
    that cannot be made stops the collection (nothing is removed) and is
    reported, not raised: the boot set is already complete.
    """
    boot_dir = top / settings.boot_dir
    inv = generations.load(boot_dir)
    good, booted = hook_images(top, settings)
    plan = generations_gc.plan_gc(inv, settings.generations,
                                  keep_images=[i for i in (good, booted) if i])
    try:
        done = generations_gc.collect(boot_dir, plan, client=client, label=settings.label,
                                      inventory=inv)
    except (PinError, GenerationError) as e:
        yield LogLine(f"old generations kept for now: {e}")
        return
    for number in sorted(done.removed):
        yield LogLine(f"removed generation {number}")
    for line in [*inv.problems, *done.problems]:
        yield LogLine(line)
    yield from keep_roots(top, settings, [g.image_id for g in plan.keep if g.image_id],
                          {i for i in (good, booted) if i})


def keep_roots(top: Path, settings: Settings, generation_images: list[str],
               also_keep: set[str]) -> Iterator[Event]:
    """Keep dockerboot's copies of the fallback images (``wizard.boot.roots``).

    Each kept generation's image gets one now (the hook makes the last good
    image's), so a ``docker system prune -a`` before the next boot cannot take
    it; the copies of other images go (only the ones that are dockerboot's).
    Never fails: one line each.
    """
    data_root = top / settings.docker_path.strip("/")
    for image_id in dict.fromkeys(generation_images):
        try:
            subvolume = resolve_subvolume(data_root, image_id)
        except WizardError as e:
            yield LogLine(f"no copy of image @{image_id[7:19]} kept: {e}")
            continue
        why = roots.make(top, subvolume, image_id)
        if why is not None:
            yield LogLine(f"no copy of image @{image_id[7:19]} kept: {why}")
    done = roots.collect(top, set(generation_images) | also_keep)
    for image_id in done.deleted:
        yield LogLine(f"removed dockerboot's copy of image @{image_id[7:19]}")
    for line in done.problems:
        yield LogLine(line)


def make_generation(client: Any, top: Path, settings: Settings, new: NewGeneration, *,
                    target: BuildTarget | None, staged: Path | None = None,
                    cancel: threading.Event | None = None, image_name: str = "",
                    image_tag: str = "") -> Iterator[Event]:
    """Move 1 as the ``initramfs`` step: build (or copy, or take ``staged``), then ``install``.

    A build runs in a container of ``new.record.image_id``, so a pull during
    the build cannot change what the record says.  A staged pair that cannot
    be installed is removed; the generations stay as they were.
    """
    boot_dir = top / settings.boot_dir
    if staged is not None:
        yield StepStarted("initramfs", f"installing the initramfs built earlier ({staged})")
    elif new.copy_from is not None:
        src = new.copy_from
        yield StepStarted("initramfs", f"reusing generation {src.number}'s kernel + initramfs "
                                       f"(kernel {src.kernel_version}): no build needed")
        # As a build does: under the partition's lock, an earlier scratch is a leftover.
        for gone in initramfs.remove_stale_builds(boot_dir):
            yield LogLine(f"removed {gone.name}, left by an earlier run")
        staged = stage_copy(boot_dir, src)
    else:
        assert target is not None and new.record.image_id is not None
        build = initramfs.build(client, new.record.image_id, target, boot_dir,
                                image_name=image_name, image_tag=image_tag,
                                cancel=cancel or threading.Event(), stage_only=True)
        staged = yield from _step_continues(build)
        assert staged is not None
    try:
        gen = install(top, settings, new, staged)
    except BaseException:
        with contextlib.suppress(WizardError, OSError):
            initramfs.discard_staged(boot_dir, staged)
        raise
    yield StepDone("initramfs", f"generation {gen.number}: {boot_dir / gen.loader} and "
                                f"{boot_dir / gen.initrd_path} (kernel {gen.kernel_version})")


def _step_continues(events: Generator[Event, None, Path | None]) -> Generator[Event, None,
                                                                            Path | None]:
    # The build's StepDone is a log line here: the step ends with the install.
    try:
        while True:
            event = next(events)
            yield LogLine(event.detail) if isinstance(event, StepDone) else event
    except StopIteration as done:
        value: Path | None = done.value
        return value
    finally:
        events.close()


def write_entries(conf: Path, content: bytes, top: Path, settings: Settings,
                  client: Any) -> Iterator[Event]:
    """Moves 2 and 3 as the ``bootloader`` step: write refind.conf, then collect."""
    yield StepStarted("bootloader", f"writing the rEFInd entries in {conf}")
    backup = write_refind(conf, content)
    # Only now that no entry names them may old generations go.
    yield from collect_old(top, settings, client)
    yield StepDone("bootloader", f"backup: {backup}" if backup else "entries unchanged")
