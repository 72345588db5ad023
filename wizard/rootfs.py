"""Reading an image's root filesystem from its subvolume, never leaving it.

The wizard checks and reads image files (``/etc/fstab``, ``/sbin/init``, …)
straight from the image's btrfs subvolume on the mounted partition: no
container, no copy.  An image is someone else's data, so every symlink in it
is resolved the way the booted system would see it, *inside* the image's
root: an absolute target starts at the image's ``/``, ``..`` never climbs
above it, and a loop or an over-long chain counts as missing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

MAX_LINKS = 40
"""Symlinks followed in one lookup before giving up (Linux' own limit)."""


def resolve(root: Path, path: str) -> Path | None:
    """The real place of ``path`` inside the root filesystem at ``root``.

    Args:
        root: the image's root directory (its subvolume).
        path: an absolute or relative path as the booted system would use it.

    Returns:
        ``root/<real path>`` with every symlink followed inside ``root``, or
        None when a component is missing, a loop, or too many links deep.

    """
    todo = [p for p in PurePosixPath("/", path).parts[1:]]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        current = root.joinpath(*done, part)
        try:
            st = os.lstat(current)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                return None
            target = os.readlink(current)
            if target.startswith("/"):
                done = []
            todo = [p for p in PurePosixPath(target).parts if p != "/"] + todo
            continue
        done.append(part)
    return root.joinpath(*done)


def read_file(root: Path, path: str, limit: int = 1 << 20) -> bytes | None:
    """Content of the regular file ``path`` of the image at ``root`` (None: none there).

    Files over ``limit`` bytes count as absent: the wizard only reads small
    configuration files this way.
    """
    real = resolve(root, path)
    if real is None:
        return None
    try:
        st = os.lstat(real)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        return real.read_bytes()
    except OSError:
        return None


def is_executable(root: Path, path: str) -> bool:
    """Whether ``path`` is an executable regular file in the image at ``root``."""
    real = resolve(root, path)
    if real is None:
        return False
    try:
        st = os.lstat(real)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)
