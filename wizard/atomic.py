"""Atomic, backed-up file writes: temp file + fsync + rename.

Every file the tool writes outside its scratch space goes through
``write_atomic`` so a crash leaves either the old or the new content, never a
mix, and the replaced content is kept as a backup.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup_path(path: Path) -> Path:
    """Where the backup of ``path`` goes: ``<name>.dockerboot-<UTC timestamp>.bak``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.dockerboot-{stamp}.bak")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.dockerboot-{stamp}-{n}.bak")
        n += 1
    return candidate


def write_atomic(path: Path, data: bytes, *, mode: int | None = None,
                 uid: int | None = None, gid: int | None = None,
                 backup: bool = True) -> Path | None:
    """Replace ``path`` with ``data`` atomically; return the backup path, if any.

    The temp file is created in the same directory (same filesystem, so the
    rename is atomic), fsynced, given ``mode``/ownership (default: those of
    the file it replaces, else 0644), then renamed over ``path``.  When
    ``backup`` is true and ``path`` exists with different content, the old
    file is first copied to ``backup_path(path)``.  Unchanged content is not
    rewritten and makes no backup.
    """
    path = Path(path)
    old_stat = path.stat() if path.exists() else None
    unchanged_mode = old_stat is not None and mode in (None, old_stat.st_mode & 0o7777)
    if unchanged_mode and path.read_bytes() == data:
        return None
    saved = None
    if backup and old_stat is not None:
        saved = backup_path(path)
        shutil.copy2(path, saved)
    if mode is None:
        mode = (old_stat.st_mode & 0o7777) if old_stat else 0o644
    if uid is None:
        uid = old_stat.st_uid if old_stat else -1
    if gid is None:
        gid = old_stat.st_gid if old_stat else -1
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    return saved


def replace_atomic(tmp: Path, path: Path) -> None:
    """Rename a finished temp file over ``path`` after fsyncing it."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
