"""Atomic, backed-up file writes: temp file + fsync + rename.

Every file the tool writes outside its scratch space goes through
``write_atomic`` so a crash leaves either the old or the new content, never a
mix, and the replaced content is kept as a backup.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from wizard.common.leftovers import remove_stale_temp_files


def fsync_dir(directory: Path) -> None:
    """Flush ``directory`` itself, so renames and unlinks in it survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_fsync_dir = fsync_dir


KEEP_BACKUPS = 3
"""How many ``<name>.dockerboot-<time>.bak`` backups of one file are kept."""
_STAMP = r"([0-9]{8}T[0-9]{6}Z)(?:-([0-9]+))?"  # ASCII digits only, as backup_path writes


def backup_pattern(name: str) -> re.Pattern[str]:
    """The names ``backup_path`` gives backups of a file called ``name`` (nothing else)."""
    return re.compile(rf"^{re.escape(name)}\.dockerboot-{_STAMP}\.bak$")


def prune_backups(path: Path, keep: int = KEEP_BACKUPS,
                  written: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` wizard backups of ``path``; return what went.

    Only regular files named exactly as ``backup_path`` names them are
    candidates: a user's own ``refind.conf.bak`` or a symlink is never touched.
    ``written``, the backup just made, always stays and counts as one of the
    ``keep``: a clock behind the newest stamp must not prune it.
    """
    path = Path(path)
    pattern = backup_pattern(path.name)
    found = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            m = pattern.match(entry.name)
            if m and entry != written and stat.S_ISREG(os.lstat(entry).st_mode):
                found.append(((m.group(1), int(m.group(2) or 0)), entry))
    found.sort()
    if written is not None:
        keep -= 1
    gone = [entry for _, entry in found[:max(len(found) - keep, 0)]]
    for entry in gone:
        entry.unlink(missing_ok=True)
    if gone:
        _fsync_dir(path.parent)
    return gone


def backup_path(path: Path) -> Path:
    """Where the backup of ``path`` goes: ``<name>.dockerboot-<UTC timestamp>.bak``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.dockerboot-{stamp}.bak")
    pattern = backup_pattern(path.name)
    # Later than every backup of this second, also those pruning left: names sort by age.
    taken = [int(m.group(2) or 0) for e in path.parent.iterdir()
             if (m := pattern.match(e.name)) and m.group(1) == stamp]
    n = max(taken) + 1 if taken else 1
    if taken:
        candidate = path.with_name(f"{path.name}.dockerboot-{stamp}-{n}.bak")
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.dockerboot-{stamp}-{n}.bak")
        n += 1
    return candidate


def write_atomic(path: Path, data: bytes, *, mode: int | None = None,
                 uid: int | None = None, gid: int | None = None,
                 backup: bool = True, tmp_dir: Path | None = None) -> Path | None:
    """Replace ``path`` with ``data`` atomically; return the backup path, if any.

    The temp file is created in the same directory (same filesystem, so the
    rename is atomic), fsynced, given ``mode``/ownership (default: those of
    the file it replaces, else 0644), then renamed over ``path``.  When
    ``backup`` is true and ``path`` exists with different content, the old
    file is first copied to ``backup_path(path)`` (fsynced) and only the
    newest ``KEEP_BACKUPS`` backups are kept.  Unchanged content is not
    rewritten and makes no backup.

    ``tmp_dir`` (same filesystem) holds the temp file instead of the target's
    directory: the top layer is copied over the root as it is, so a temp file
    a killed run left there must never be inside it.  Temp files a killed
    earlier run left for ``path`` are removed first.
    """
    path = Path(path)
    tmp_parent = Path(tmp_dir) if tmp_dir is not None else path.parent
    if tmp_dir is not None:
        tmp_parent.mkdir(mode=0o700, exist_ok=True)
    remove_stale_temp_files(path, tmp_parent)
    old_stat = path.stat() if path.exists() else None
    unchanged_mode = old_stat is not None and mode in (None, old_stat.st_mode & 0o7777)
    if unchanged_mode and path.read_bytes() == data:
        return None
    saved = None
    if backup and old_stat is not None:
        saved = backup_path(path)
        copy_durable(path, saved)
        prune_backups(path, written=saved)
    if mode is None:
        mode = (old_stat.st_mode & 0o7777) if old_stat else 0o644
    if uid is None:
        uid = old_stat.st_uid if old_stat else -1
    if gid is None:
        gid = old_stat.st_gid if old_stat else -1
    fd, tmp = tempfile.mkstemp(dir=tmp_parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    if tmp_parent != path.parent:
        _fsync_dir(tmp_parent)
    return saved


def copy_durable(src: Path, dst: Path) -> None:
    """Copy ``src`` to a new ``dst`` (data, mode, times) that is complete or absent.

    Written as ``.<dst name>.XXXXXXXX.tmp`` in ``dst``'s directory, fsynced,
    renamed, and the directory fsynced: a crash never leaves a partial backup.
    """
    src, dst = Path(src), Path(dst)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as f:
            shutil.copyfileobj(f, out)
            out.flush()
            shutil.copystat(src, tmp)
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)


def syncfs(path: Path) -> None:
    """Flush the whole filesystem holding ``path`` (``syncfs(2)``; ``sync`` as fallback).

    ``execute`` calls it after its last write, for the partition and the ESP:
    a power cut right after "done" then loses nothing.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        os.sync()
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


def replace_atomic(tmp: Path, path: Path) -> None:
    """Rename a finished temp file over ``path`` after fsyncing it."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
