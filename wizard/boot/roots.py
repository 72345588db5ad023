"""dockerboot's own copies of the images the boot falls back to: ``boot_docker/roots``.

Docker can delete any image (``image prune -a``, ``system prune -a`` also
drops the wizard's pins, ``rmi -f`` ignores them), and then the hook's
fallback would have nothing to boot.  So the hook (assets/hook/dockerboot-
roots.sh) keeps ``boot_docker/roots/<64 hex of the image ID>``: a read-only
btrfs snapshot of the image's subvolume (O(1), it shares every extent and
holds space only once docker deletes the image), carrying the rw layer's v2
mark: ``/.dockerboot-rwlayer`` = ``dockerboot-rwlayer v2 <its own subvolume
ID>``.  The hook makes one for the last good image and for the boot entry's
generation's image; the wizard makes the one of each kept generation's image
at apply/update (``make``), so that a prune before the first boot of a new
generation cannot take it, and collects the ones no longer needed
(``collect``): only those that are dockerboot's (``is_ours``), never anything
else at those names.  ``listing`` is what ``status`` shows (the booted
system's ``dockerboot-update status`` shows the same, assets/selfupdate/
status.sh).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.store.images import IMAGE_ID_RE

ROOTS_DIR = "boot_docker/roots"
"""The roots' directory relative to the partition's top level (the hook's own name)."""
MARK_NAME = ".dockerboot-rwlayer"
"""The mark file at a root's top, as on the rw layer."""
MAGIC = "dockerboot-rwlayer v2 "
"""A v2 mark's start; the subvolume's own ID follows."""
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_MAX_MARK = 128


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["btrfs", *args], capture_output=True, text=True, check=False)


def _roots_dir(top: Path, problems: list[str]) -> Path | None:
    """The roots' directory, when it is one reached through no symlink; else None."""
    path = Path(top)
    for part in ROOTS_DIR.split("/"):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            problems.append(f"{path} is a symlink or no directory: dockerboot's copies not read")
            return None
    return path


def _mark_text(root: Path) -> str | None:
    """The first line of the root's mark file, never through a symlink; None without one."""
    try:
        fd = os.open(root / MARK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(_MAX_MARK).decode("ascii", "replace").split("\n", 1)[0]


def looks_ours(root: Path) -> bool:
    """What ``status`` lists (the shell's test too): a directory, no symlink, with a v2 mark."""
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            return False
    except OSError:
        return False
    text = _mark_text(root)
    return text is not None and text.startswith(MAGIC)


def subvolume_id(path: Path) -> int | None:
    """The ID of the btrfs subvolume whose root ``path`` is (None: no subvolume root)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    # A subvolume's root directory is inode 256, and no other directory is.
    if not stat.S_ISDIR(st.st_mode) or st.st_ino != 256:
        return None
    r = _run("inspect-internal", "rootid", str(path))
    out = r.stdout.strip()
    return int(out) if r.returncode == 0 and out.isascii() and out.isdigit() else None


def is_ours(root: Path) -> bool:
    """Checked before every delete: ``root`` is a subvolume whose mark names its own ID.

    A user's subvolume, a copy of a root (``cp -a``, a snapshot: another ID),
    a plain directory with a mark, or a symlink is not.
    """
    text = _mark_text(root)
    if text is None or not text.startswith(MAGIC) or not looks_ours(root):
        return False
    svid = subvolume_id(root)
    return svid is not None and svid >= 256 and text == f"{MAGIC}{svid}"


def exclusive_bytes(root: Path) -> int | None:
    """The space the root alone holds (``btrfs filesystem du``'s Exclusive); None: unknown.

    Next to nothing while docker still has the image (every extent shared);
    the image's size once docker deleted it.
    """
    r = _run("filesystem", "du", "-s", "--raw", str(root))
    lines = r.stdout.splitlines()
    words = lines[1].split() if r.returncode == 0 and len(lines) >= 2 else []
    return int(words[1]) if len(words) >= 2 and words[1].isdigit() else None


def listing(top: Path, problems: list[str]) -> list[str]:
    """The image IDs of dockerboot's copies on the partition, sorted; a line for anything else."""
    d = _roots_dir(top, problems)
    if d is None:
        return []
    ids = []
    for name in sorted(os.listdir(d)):
        if _HEX_RE.match(name) and looks_ours(d / name):
            ids.append(f"sha256:{name}")
        else:
            problems.append(f"{ROOTS_DIR}/{name} is not a copy of dockerboot's: left as it is")
    return ids


def roots_json(top: Path, keep: set[str], problems: list[str]) -> list[dict[str, Any]]:
    """``status``'s ``roots``: each copy, whether collection keeps it, the space it holds."""
    return [{"id": image_id, "kept": image_id in keep,
             "exclusive_bytes": exclusive_bytes(Path(top) / ROOTS_DIR / image_id[7:])}
            for image_id in listing(top, problems)]


def make(top: Path, subvolume: Path, image_id: str) -> str | None:
    """Make dockerboot's copy of the image ``image_id`` from its ``subvolume``.

    As the hook does: a snapshot under ``<hex>.new``, the mark (its own ID),
    the ro flag, the rename.  Nothing happens when something already stands
    at either name (a leftover ``.new`` is deleted only if ours).  Returns
    None, or one line saying why no copy was made.
    """
    if not IMAGE_ID_RE.match(image_id):
        raise ValueError(f"not an image ID: {image_id!r}")
    problems: list[str] = []
    d = _roots_dir(top, problems)
    if d is None:
        if problems:
            return problems[0]
        try:
            (Path(top) / ROOTS_DIR).mkdir(mode=0o700, parents=False)
        except OSError as e:
            return f"cannot make {ROOTS_DIR}: {e.strerror}"
        d = Path(top) / ROOTS_DIR
    root, new = d / image_id[7:], d / f"{image_id[7:]}.new"
    if os.path.lexists(root):
        return None
    if os.path.lexists(new):
        if not is_ours(new) or not delete(new):
            return f"{ROOTS_DIR}/{new.name} is in the way and not dockerboot's: no copy made"
    if _run("subvolume", "snapshot", str(subvolume), str(new)).returncode != 0:
        return f"cannot snapshot {subvolume} as {ROOTS_DIR}/{new.name}"
    svid = subvolume_id(new)
    try:
        if svid is None:
            raise OSError(f"{new} is no subvolume")
        mark = new / MARK_NAME
        if os.path.lexists(mark):
            os.unlink(mark)
        mark.write_text(f"{MAGIC}{svid}\n")
        if _run("property", "set", "-ts", str(new), "ro", "true").returncode != 0:
            raise OSError("cannot make it read-only")
        os.rename(new, root)
    except OSError as e:
        delete(new)
        return f"cannot make {ROOTS_DIR}/{root.name}: {e}"
    return None


def delete(root: Path) -> bool:
    """Delete ``root``, checked by ``is_ours`` at this very moment; False when refused or failed."""
    if not is_ours(root):
        return False
    # A read-only subvolume can be deleted as it is (btrfs allows it).
    return _run("subvolume", "delete", str(root)).returncode == 0


@dataclass
class RootsCollected:
    """What ``collect`` did."""

    deleted: list[str] = field(default_factory=list)
    """Image IDs whose copies went."""
    problems: list[str] = field(default_factory=list)
    """One line per thing left in place, and why."""


def collect(top: Path, keep: set[str]) -> RootsCollected:
    """Delete dockerboot's copies of images not in ``keep``.

    ``keep``: the last good image, the booted one, those of the kept
    generations.  Each goes only when ``is_ours`` says so just before.
    """
    done = RootsCollected()
    for image_id in listing(top, done.problems):
        if image_id in keep:
            continue
        root = Path(top) / ROOTS_DIR / image_id[7:]
        if delete(root):
            done.deleted.append(image_id)
        else:
            done.problems.append(f"{ROOTS_DIR}/{root.name} kept: not dockerboot's, or "
                                 "btrfs could not delete it")
    return done
