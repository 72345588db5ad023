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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wizard.common.errors import ToplayerError

MAX_LINKS = 40
"""Symlinks followed in one lookup before giving up (Linux' own limit)."""


def resolve(root: Path, path: str, *, missing_ok: bool = False) -> Path | None:
    """The real place of ``path`` inside the root filesystem at ``root``.

    Args:
        root: the image's root directory (its subvolume).
        path: an absolute or relative path as the booted system would use it.
        missing_ok: a missing component and everything after it are taken as
            they are (where a new file would be created), instead of None.

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
            if not missing_ok:
                return None
            return root.joinpath(*done, part, *[p for p in todo if p not in ("", ".")])
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


@dataclass(frozen=True)
class Landing:
    """Where a top-layer entry lands in the new root, when that is worth saying."""

    relpath: str
    """The entry's path in the top layer."""
    note: str
    """What happens, e.g. "replaces the image's symlink (-> ../run/…)"."""


def overlay(toplayer: Path, image_root: Path, extra: Iterable[str] = ()) -> list[Landing]:
    """Check the top layer against the image the way the boot hook lays it over.

    The hook never writes through a symlink of the image: a file replaces a
    symlink, a path through a symlinked directory lands at its real place
    inside the new root (``lib/x`` at ``usr/lib/x`` on a merged ``/usr``).
    This says so for each such entry, before anything is written.

    Args:
        toplayer: the top-layer directory (walked without following symlinks).
        image_root: the image's subvolume.
        extra: top-layer paths about to be written (the plan's files).

    Raises:
        ToplayerError: an entry the hook cannot lay over the image (a directory
            where the image has a file, or a file where it has a directory).

    """
    entries: dict[str, bool] = {rel: False for rel in extra}   # relpath -> is a directory
    if toplayer.is_dir():
        for dirpath, dirnames, filenames in os.walk(toplayer):
            base = Path(dirpath).relative_to(toplayer)
            for name in dirnames:
                link = Path(dirpath, name).is_symlink()
                entries[(base / name).as_posix()] = not link
            for name in filenames:
                entries.setdefault((base / name).as_posix(), False)
    out = []
    for rel, is_dir in sorted(entries.items()):
        parent = PurePosixPath(rel).parent.as_posix()
        # A directory is followed like the hook does (into a symlinked one); a
        # file is written at its name inside its parent's real place.
        real = (resolve(image_root, rel, missing_ok=True) if is_dir else
                _child(resolve(image_root, parent, missing_ok=True), PurePosixPath(rel).name))
        if real is None:
            raise ToplayerError(f"top-layer path {rel}: the image has a symlink loop on its way",
                                "remove the entry from the top layer, or fix the image")
        shown = real.relative_to(image_root).as_posix()
        try:
            st: os.stat_result | None = os.lstat(real)
        except OSError:
            st = None
        if st is not None and not stat.S_ISLNK(st.st_mode) and stat.S_ISDIR(st.st_mode) != is_dir:
            kind = "a directory" if is_dir else "a file"
            raise ToplayerError(f"top-layer {rel} is {kind} but the image has "
                                f"{'a file' if is_dir else 'a directory'} at {shown}",
                                f"remove or rename {rel} in the top layer")
        if is_dir:
            continue
        notes = [f"lands at {shown} (a directory on its way is a symlink in the image)"] \
            if shown != rel else []
        if st is not None and stat.S_ISLNK(st.st_mode):
            notes.append(f"replaces the image's symlink (-> {os.readlink(real)})")
        if notes:
            out.append(Landing(rel, "; ".join(notes)))
    return out


def _child(parent: Path | None, name: str) -> Path | None:
    return None if parent is None else parent / name
