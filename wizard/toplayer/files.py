"""The per-machine top layer (DESIGN §4, §5 step 4).

The top layer is a directory (``<top level>/<toplayer_path>``, mode 0700)
copied over the fresh root at every boot.  This module plans changes to it
as ``FileChange`` values (shown as diffs in the review, secrets redacted)
and applies them atomically.  The account files among them come from
``wizard.toplayer.users`` (the image's own ``useradd``/``chpasswd`` in a throwaway
container; passwords travel only over its stdin).

Backups of replaced files go under ``<boot_dir>/backups/toplayer/<stamp>/``,
never next to the file: anything inside the top layer ends up in the root.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wizard.common.atomic import copy_durable, write_atomic
from wizard.common.diffs import unified_diff
from wizard.common.errors import ToplayerError
from wizard.common.names import check_hostname
from wizard.settings.config import Settings

TOPLAYER_MODE = 0o700
ACCOUNT_FILES = ("passwd", "shadow", "group", "gshadow")
SECRET_FILES = frozenset({"etc/shadow", "etc/gshadow"})
STEP = "toplayer"
"""The step name its events carry."""


@dataclass(frozen=True)
class FileInfo:
    """A file's content and metadata, as taken out of a container."""

    data: bytes
    """Content."""
    mode: int
    """Permission bits (``0o7777`` part of the mode)."""
    uid: int
    """Owner uid."""
    gid: int
    """Group gid (e.g. the image's ``shadow`` group for ``/etc/shadow``)."""


@dataclass(frozen=True)
class FileChange:
    """One planned write of a file in the top layer."""

    relpath: str
    """Path relative to the top layer, e.g. ``etc/hostname``."""
    old: bytes | None
    """Current content in the top layer, or None if the file is not there yet."""
    new: bytes
    """Content to write."""
    mode: int = 0o644
    """Permission bits of the written file."""
    uid: int = 0
    """Owner uid of the written file."""
    gid: int = 0
    """Group gid of the written file."""
    secret: bool = False
    """True for shadow/gshadow: diffs redact the password hashes."""
    image_old: bytes | None = None
    """The image's own version of the file, diffed against when ``old`` is None."""
    summary: str | None = None
    """Shown instead of a diff: a file the wizard ships as it is (its own command, assets)."""

    @property
    def changed(self) -> bool:
        """Tell whether applying this change would alter the top layer's content."""
        return self.old != self.new


def toplayer_dir(top: Path, settings: Settings) -> Path:
    """Return the top-layer directory under the mounted top level ``top``."""
    return Path(top) / settings.toplayer_path


def ensure_toplayer(top: Path, settings: Settings) -> Path:
    """Create the top-layer directory (mode 0700, root:root) and return it."""
    path = toplayer_dir(top, settings)
    path.mkdir(parents=True, exist_ok=True)
    # mkdir honours the umask and leaves an existing dir alone: set it explicitly.
    os.chmod(path, TOPLAYER_MODE)
    os.chown(path, 0, 0)
    return path


def validate_hostname(hostname: str) -> str:
    """Return ``hostname`` if it follows RFC 1123, else raise ``ToplayerError``."""
    return check_hostname(hostname)


def plan_hostname(toplayer: Path, hostname: str) -> FileChange:
    """Plan the top layer's ``etc/hostname`` for ``hostname``."""
    validate_hostname(hostname)
    target = Path(toplayer) / "etc/hostname"
    old = target.read_bytes() if target.is_file() else None
    return FileChange("etc/hostname", old, f"{hostname}\n".encode())


def diff_text(change: FileChange) -> str:
    """Return a unified diff for ``change`` (hashes redacted; '' when unchanged)."""
    if change.summary is not None and change.changed:
        return f"{change.relpath}: {change.summary}\n"
    old = change.old if change.old is not None else change.image_old
    label = change.relpath if change.old is not None or change.image_old is None \
        else f"{change.relpath} (against the image's own file)"
    return unified_diff(old, change.new, label, secret=change.secret)


def backup_root(top: Path, settings: Settings) -> Path:
    """Return where replaced top-layer files are backed up (outside the top layer)."""
    root = Path(top) / settings.boot_dir / "backups" / "toplayer"
    if root.is_relative_to(toplayer_dir(top, settings)):
        # toplayer_path == boot_dir (seed layout): keep backups out of the root copy.
        root = Path(top) / ".dockerboot-backups" / "toplayer"
    return root


def staging_dir(toplayer: Path) -> Path:
    """Where temp files of the top layer's writes go: beside it (same filesystem), never in it."""
    toplayer = Path(toplayer)
    return toplayer.parent / f".{toplayer.name}-tmp"


def _target(toplayer: Path, relpath: str) -> Path:
    """Resolve ``relpath`` inside the top layer, refusing escapes and symlinked dirs."""
    parts = Path(relpath).parts
    if not parts or Path(relpath).is_absolute() or ".." in parts:
        raise ToplayerError(f"invalid top-layer path {relpath!r}",
                            "give a path relative to the top layer without '..'")
    current = Path(toplayer)
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise ToplayerError(f"{current} is a symlink",
                                "replace it with a real directory in the top layer")
    return Path(toplayer, *parts)


def _makedirs(toplayer: Path, directory: Path) -> None:
    """Create missing dirs as 0755 root:root: ``cp -a`` gives the root these modes."""
    missing = []
    d = directory
    while not d.exists() and d != Path(toplayer):
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir()
        os.chmod(d, 0o755)
        os.chown(d, 0, 0)


def apply_change(toplayer: Path, change: FileChange, backups: Path,
                 stamp: str | None = None) -> Path | None:
    """Write ``change`` into the top layer atomically; return the backup path, if any.

    The replaced file is first copied to ``backups/<stamp>/<relpath>`` (see
    ``backup_root``; ``stamp`` defaults to the current UTC time), never next
    to it.  An identical file is left alone.
    """
    target = _target(toplayer, change.relpath)
    _makedirs(toplayer, target.parent)
    saved = None
    if target.exists():
        st = target.stat()
        if (target.read_bytes() == change.new and st.st_mode & 0o7777 == change.mode
                and (st.st_uid, st.st_gid) == (change.uid, change.gid)):
            return None
        stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        saved = backups / stamp / change.relpath
        n = 1
        while saved.exists():  # two applies within one second
            saved, n = backups / f"{stamp}-{n}" / change.relpath, n + 1
        saved.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(backups, 0o700)  # backups may hold shadow: keep them private
        copy_durable(target, saved)
        os.chown(saved, st.st_uid, st.st_gid)
    write_atomic(target, change.new, mode=change.mode, uid=change.uid, gid=change.gid,
                 backup=False, tmp_dir=staging_dir(toplayer))
    return saved


def apply_changes(top: Path, settings: Settings, changes: Iterable[FileChange]) -> list[Path]:
    """Apply ``changes`` to the top layer (created if needed); return the backups made."""
    toplayer = ensure_toplayer(top, settings)
    remove_temp_files(staging_dir(toplayer))  # a killed run's, never inside the top layer
    stamp = new_stamp(backup_root(top, settings))
    made = [apply_change(toplayer, c, backup_root(top, settings), stamp) for c in changes]
    prune_backups(backup_root(top, settings))
    return [p for p in made if p is not None]


KEEP_STAMPS = 3
"""How many applies' worth of top-layer backups (``backups/toplayer/<stamp>/``) are kept."""
_STAMP_DIR = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?$")


_TEMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_temp_files(directory: Path) -> list[Path]:
    """Remove temp files named like ``write_atomic``/``copy_durable``'s under ``directory``.

    Only for directories the wizard owns (the staging dir, backup stamps);
    regular files only, and symlinked directories are never entered.
    """
    gone = []
    for root, _dirs, files in os.walk(directory, followlinks=False):
        for name in files:
            path = Path(root, name)
            if _TEMP_FILE.match(name) and path.is_file() and not path.is_symlink():
                path.unlink()
                gone.append(path)
    return gone


def new_stamp(backups: Path) -> str:
    """A backup stamp for this apply, later than every stamp directory already there."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with contextlib.suppress(OSError):
        taken = [_stamp_key(d.name)[1] for d in Path(backups).iterdir()
                 if _STAMP_DIR.match(d.name) and _stamp_key(d.name)[0] == stamp]
        if taken:
            return f"{stamp}-{max(taken) + 1}"
    return stamp


def _stamp_key(name: str) -> tuple[str, int]:
    stamp, _, n = name.partition("-")
    return stamp, int(n or 0)


def prune_backups(backups: Path, keep: int = KEEP_STAMPS) -> list[Path]:
    """Bound the top-layer backups; return what was deleted.

    Keeps the newest ``keep`` stamp directories; older ones go whole.  Old
    password hashes are not kept: of ``etc/shadow`` and ``etc/gshadow`` only
    the most recent backup stays (enough to undo the last change of users).
    Unfinished backup copies of a killed run (``.<name>.XXXXXXXX.tmp``) in
    the kept stamps go too.  Only directories named like a stamp
    (``20250101T120000Z``, ``…-1``) are touched; anything else in
    ``backups`` (a user's notes) stays, and symlinks are never followed.
    """
    backups = Path(backups)
    if not backups.is_dir() or backups.is_symlink():
        return []
    stamps = sorted((d for d in backups.iterdir()
                     if _STAMP_DIR.match(d.name) and d.is_dir() and not d.is_symlink()),
                    key=lambda d: _stamp_key(d.name), reverse=True)
    gone = []
    for old in stamps[keep:]:
        shutil.rmtree(old)  # rmtree never follows symlinks inside
        gone.append(old)
    seen: set[str] = set()
    for d in stamps[:keep]:
        gone += remove_temp_files(d)  # a backup copy a killed run never finished
        for rel in sorted(SECRET_FILES):
            f = d / rel
            if f.parent.is_symlink() or f.is_symlink() or not f.is_file():
                continue  # a symlinked etc/ could point anywhere: never through it
            if rel in seen:
                f.unlink()
                gone.append(f)
                with contextlib.suppress(OSError):
                    f.parent.rmdir()  # only when empty
                    d.rmdir()
            seen.add(rel)
    return gone


