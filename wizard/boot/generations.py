"""Generations: every kernel + initramfs build, versioned and recorded (DESIGN §4b).

Layout on the partition (``<boot_dir>`` is ``boot_docker`` by default)::

    <boot_dir>/gen/<n>/vmlinuz          the kernel of generation n
    <boot_dir>/gen/<n>/initrd.img       its initramfs
    <boot_dir>/gen/<n>/generation.json  its record
    <boot_dir>/vmlinuz, initrd.img      the flat pair of earlier versions: "legacy"

One directory per generation, because a directory rename is the one atomic
step that makes kernel, initramfs *and* record appear together: ``add``
finishes everything inside the staged build directory (``initramfs.build(...,
stage_only=True)`` leaves it in ``<boot_dir>/.build-*``, same filesystem) and
renames it to ``gen/<n>`` last.  A crash before the rename leaves a stale
``.build-*`` the next build removes; after it, a complete generation.

The record's format and validation are ``wizard.boot.generation_record`` (its
names are re-exported here); a directory whose record does not validate is
listed as a problem and skipped, never obeyed or collected.

The flat pair of an earlier wizard is generation 0, ``legacy``: it is
listed while no numbered generation exists, ``adopt_legacy`` records it (with
the image ID it was built from, when known) so the "previous" entry can boot
it after the first new build, and its files are never deleted (they may be
the user's): only its record goes when it ages out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wizard.boot.fingerprint import kernel_version_of
from wizard.boot.generation_record import GEN_DIR as GEN_DIR
from wizard.boot.generation_record import INITRD_NAME as INITRD_NAME
from wizard.boot.generation_record import KERNEL_NAME as KERNEL_NAME
from wizard.boot.generation_record import LEGACY_NUMBER as LEGACY_NUMBER
from wizard.boot.generation_record import NAME_RE as NAME_RE
from wizard.boot.generation_record import RECORD_NAME as RECORD_NAME
from wizard.boot.generation_record import RECORD_SCHEMA as RECORD_SCHEMA
from wizard.boot.generation_record import Generation as Generation
from wizard.boot.generation_record import GenerationError as GenerationError
from wizard.boot.generation_record import encode as _encode
from wizard.boot.generation_record import from_json as from_json
from wizard.boot.generation_record import new_record as new_record
from wizard.boot.generation_record import require
from wizard.boot.generation_record import utc_now as utc_now
from wizard.boot.initramfs import SCRATCH_PREFIX, STAGED_INITRD, STAGED_KERNEL
from wizard.common.atomic import fsync_dir, replace_atomic, write_atomic
from wizard.store.images import normalize_ref

_MAX_RECORD = 64 << 10
_NUMBER_RE = re.compile(r"^(0|[1-9][0-9]{0,8})$")


def _nofollow(path: str | os.PathLike[str], flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


@dataclass(frozen=True)
class Inventory:
    """The generations found under a ``boot_dir``, oldest first, and what was unreadable."""

    generations: tuple[Generation, ...] = ()
    """Valid records, by number."""
    problems: tuple[str, ...] = ()
    """One line per directory under ``gen/`` that was skipped (never collected)."""
    taken: frozenset[int] = field(default_factory=frozenset)
    """Every number with a directory, valid or not: never given out again."""

    @property
    def newest(self) -> Generation | None:
        """The generation the default boot entry boots."""
        return self.generations[-1] if self.generations else None

    @property
    def previous(self) -> Generation | None:
        """The one before it, which the "previous" entry boots (pinned by image ID)."""
        return self.generations[-2] if len(self.generations) >= 2 else None

    def get(self, number: int) -> Generation | None:
        """The generation numbered ``number``, if it has a valid record."""
        return next((g for g in self.generations if g.number == number), None)


def _read_record(gen_dir: Path, number: int) -> Generation:
    try:
        with open(gen_dir / RECORD_NAME, "rb", opener=_nofollow) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise GenerationError(f"{gen_dir / RECORD_NAME} is not a regular file")
            raw = f.read(_MAX_RECORD + 1)
    except OSError as e:
        raise GenerationError(f"cannot read {gen_dir / RECORD_NAME}: {e.strerror}") from e
    require(len(raw) <= _MAX_RECORD, "larger than 64 KiB")
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise GenerationError(f"{gen_dir / RECORD_NAME} is not JSON: {e}") from e
    return from_json(data, number)


def _legacy(boot_dir: Path) -> Generation | None:
    kernel, initrd = boot_dir / KERNEL_NAME, boot_dir / INITRD_NAME
    for f in (kernel, initrd):
        with contextlib.suppress(OSError):
            st = os.lstat(f)
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                continue
        return None
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.lstat(kernel).st_mtime))
    return Generation(number=LEGACY_NUMBER, kernel_version=kernel_version_of(kernel),
                      image_ref=None, image_id=None, inputs=None, created=created,
                      files=(), legacy=True)


def load(boot_dir: Path) -> Inventory:
    """List the generations under ``boot_dir`` (nothing is written).

    A directory under ``gen/`` that is not a plain directory with a valid
    record is reported in ``problems`` and left alone.  The flat legacy pair
    counts as generation 0 while nothing is under ``gen/`` (or once adopted).
    """
    boot_dir = Path(boot_dir)
    gens: list[Generation] = []
    problems: list[str] = []
    taken: set[int] = set()
    root = boot_dir / GEN_DIR
    try:
        root_st = os.lstat(root)
    except FileNotFoundError:
        root_st = None
    if root_st is not None and not stat.S_ISDIR(root_st.st_mode):
        problems.append(f"{root} is not a directory (a symlink?): no generation read from it")
    elif root_st is not None:
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if not _NUMBER_RE.match(entry.name):
                continue  # not ours (a user's note, an editor's backup): ignored, not touched
            number = int(entry.name)
            taken.add(number)
            if not stat.S_ISDIR(os.lstat(entry).st_mode):
                problems.append(f"{entry} is not a directory (a symlink?): skipped")
                continue
            try:
                gens.append(_read_record(entry, number))
            except GenerationError as e:
                problems.append(f"{entry}: {e.problem}: skipped, never removed")
    if not taken:
        legacy = _legacy(boot_dir)
        if legacy is not None:
            gens.append(legacy)
    gens.sort(key=lambda g: g.number)
    return Inventory(tuple(gens), tuple(problems), frozenset(taken))


def next_number(inventory: Inventory) -> int:
    """The number of the next generation: above every directory ever seen, at least 1."""
    used = set(inventory.taken) | {g.number for g in inventory.generations}
    return max(used, default=LEGACY_NUMBER) + 1


def _plain_dir(path: Path, what: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        path.mkdir(mode=0o755)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise GenerationError(f"{what} {path} is not a directory (a symlink?)",
                              f"move {path} away; the wizard makes it itself")


def write_record(boot_dir: Path, gen: Generation) -> Path:
    """(Re)write the record of an existing generation directory atomically, with backup.

    Raises:
        GenerationError: the generation's directory is missing or not a plain directory.

    """
    gen_dir = Path(boot_dir) / GEN_DIR / str(gen.number)
    _plain_dir(Path(boot_dir) / GEN_DIR, "the generations directory")
    if not gen_dir.is_dir() or gen_dir.is_symlink():
        raise GenerationError(f"{gen_dir} is not a generation directory")
    write_atomic(gen_dir / RECORD_NAME, _encode(gen), mode=0o644, backup=True)
    return gen_dir / RECORD_NAME


def add(boot_dir: Path, staged: Path, record: Generation) -> Generation:
    """Install a staged build as generation ``record.number``; the rename is the commit.

    ``staged`` is what ``initramfs.build(..., stage_only=True)`` returned: a
    ``.build-*`` directory right inside ``boot_dir`` holding ``vmlinuz.new``
    and ``initrd.img.new``.  They are renamed (fsynced) to the record's
    names, the record (with ``files`` set to those two names) is written next
    to them, then the directory is renamed to ``gen/<n>``.  Nothing outside
    the staged directory changes before that.

    Raises:
        GenerationError: the staged build is not one, is incomplete, its kernel
            is not ``record.kernel_version``, or ``gen/<n>`` exists.

    """
    boot_dir, staged = Path(boot_dir), Path(staged)
    if (staged.parent.resolve() != boot_dir.resolve() or not staged.name.startswith(SCRATCH_PREFIX)
            or staged.is_symlink() or not staged.is_dir()):
        raise GenerationError(f"{staged} is not a staged build in {boot_dir}",
                              "build the initramfs again")
    if record.legacy or record.number < 1:
        raise GenerationError(f"generation {record.number} cannot be added: numbers start at 1")
    kernel, initrd = staged / STAGED_KERNEL, staged / STAGED_INITRD
    for f in (kernel, initrd):
        st = os.lstat(f) if os.path.lexists(f) else None
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            raise GenerationError(f"the staged build in {staged} has no complete {f.name}",
                                  "build the initramfs again")
    found = kernel_version_of(kernel)
    if found is not None and found != record.kernel_version:
        raise GenerationError(f"the staged kernel is {found}, not {record.kernel_version}",
                              "build the initramfs again")
    _plain_dir(boot_dir / GEN_DIR, "the generations directory")
    target = boot_dir / GEN_DIR / str(record.number)
    if os.path.lexists(target):
        raise GenerationError(f"generation {record.number} already exists ({target})",
                              "use generations.next_number()")
    record = replace(record, files=(record.kernel, record.initrd))
    replace_atomic(initrd, staged / record.initrd)
    replace_atomic(kernel, staged / record.kernel)
    write_atomic(staged / RECORD_NAME, _encode(record), mode=0o644, backup=False)
    os.chmod(staged, 0o755)  # mkdtemp made it 0700; a kernel is no secret (the flat pair: 0644)
    try:
        os.rename(staged, target)
    except OSError as e:
        raise GenerationError(f"cannot install generation {record.number}: {e.strerror}",
                              "check free space on the partition, then run again") from e
    fsync_dir(boot_dir / GEN_DIR)
    return record


def adopt_legacy(boot_dir: Path, image_ref: str, image_id: str | None) -> Generation | None:
    """Record the flat legacy pair as generation 0, before the first numbered one is added.

    Its files stay where they are, owned by nobody (never deleted).
    ``image_id`` is the image it was built from, as well as it is known (the
    hook's last good image booted on that kernel, else the tag's ID now).
    Like ``add``, the record is finished in a ``.build-*`` directory that is
    then renamed to ``gen/0``: a crash leaves the legacy pair as it was.

    Returns:
        The record; None when there is no legacy pair, or ``gen/`` already
        has a generation (then the pair is no longer listed).

    """
    boot_dir = Path(boot_dir)
    inv = load(boot_dir)
    legacy = inv.get(LEGACY_NUMBER)
    if legacy is None or inv.taken:
        return None
    gen = from_json(replace(legacy, image_ref=normalize_ref(image_ref),
                            image_id=image_id).to_json(), LEGACY_NUMBER)
    _plain_dir(boot_dir / GEN_DIR, "the generations directory")
    staged = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=boot_dir))
    try:
        write_atomic(staged / RECORD_NAME, _encode(gen), mode=0o644, backup=False)
        os.chmod(staged, 0o755)
        os.rename(staged, boot_dir / GEN_DIR / str(LEGACY_NUMBER))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    fsync_dir(boot_dir / GEN_DIR)
    return gen


def rollback_state(inv: Inventory, tag_id: str | None) -> dict[str, Any] | None:
    """The newest generation's rollback and whether it holds; None when it is no rollback.

    A rollback holds while the configured tag names one of the images it
    turned away from (``rolled_back_from`` in its record; a record of an
    earlier version does not say: then the previous generation's image, the
    one it was rolled back from).  Only a tag moved to another image, or an
    ``update`` run by hand, ends it.  ``holds`` is None when the tag's ID is
    unknown.
    """
    newest = inv.newest
    if newest is None or not newest.pinned:
        return None
    if newest.rolled_back_from is not None:
        away = list(newest.rolled_back_from)
    else:
        prev = inv.previous
        away = [prev.image_id] if prev is not None and prev.image_id else []
    return {"generation": newest.number, "image_id": newest.image_id, "since": newest.created,
            "from": away, "holds": None if tag_id is None else tag_id in away}


def rollback_line(rollback: dict[str, Any], image: str, tag_id: str | None) -> str:
    """The rollback in one line: since when, from which images, and whether it holds."""
    away = ", ".join(f"@{i[7:19]}" for i in rollback["from"]) or "an unknown image"
    head = (f"generation {rollback['generation']} is a rollback to "
            f"@{(rollback['image_id'] or '?')[7:19]} since {rollback['since']} (from {away})")
    if rollback["holds"] is False and tag_id is not None:
        return f"{head}: {image} moved to @{tag_id[7:19]} since: an update returns to it"
    return (f"{head}: it holds while {image} is one of those; "
            f"an update run by hand returns to {image}")
