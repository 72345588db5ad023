"""The try's scratch disk: what the next boot reads, copied off a read-only view of the partition.

The real partition is never written: it is mounted a second time
``ro,noatime`` (a read-only mount of the same filesystem, so even reading
updates no access time and no subvolume's generation moves), and what the
hook and the booted system read is copied from there into a fresh btrfs in
a sparse image file: docker's image metadata (``image/``), the subvolume of
every image the hook may boot (the configured one, the last good one), the
``boot_docker`` directory (generations, config, top layer, state), and an
empty subvolume for each other subvolume at the top level (``home``,
``journal``: what the top layer's fstab mounts).  The image file is made
with a temporary label (a loop device carrying the real label would move
the host's ``/dev/disk/by-label`` link) and relabelled offline afterwards.
Docker keeps running meanwhile; image layers are never changed in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from wizard.common import leftovers, mountinfo
from wizard.common.events import Event, LogLine, StepDone, StepStarted, check_cancel
from wizard.trial.plan import TrialError

VIEW_TAG = "try-view-"
"""In the name of the read-only view's mount directory (after the owner's prefix)."""
HEADROOM = 1 << 30
"""Room in the scratch filesystem for what the guest writes (journal, its docker)."""


def _run(*cmd: str | os.PathLike[str]) -> str:
    args = [str(c) for c in cmd]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        why = "; ".join(ln.strip() for ln in result.stderr.splitlines() if ln.strip())
        raise TrialError(f"`{' '.join(args)}` failed: {why}",
                         "nothing on the partition was changed; see the message")
    return result.stdout


@contextlib.contextmanager
def read_only_view(device: str) -> Iterator[Path]:
    """The partition's top level mounted ``ro,noatime`` on a private directory for the block.

    A second mount of an already mounted btrfs shares its superblock but
    refuses every write, access times included.
    """
    # Where the wizard's own top-level mounts live: a killed try's view is then
    # unmounted by the next run (leftovers.remove_stale_mounts), as theirs are.
    leftovers.remove_stale_mounts()
    where = Path(tempfile.mkdtemp(prefix=f"{leftovers.mount_dir_prefix()}{VIEW_TAG}",
                                  dir=leftovers.private_run_dir()))
    try:
        _run("mount", "-t", "btrfs", "-o", "ro,noatime,subvolid=5", device, where)
        try:
            yield where
        finally:
            if subprocess.run(["umount", where], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", where], capture_output=True)
    finally:
        with contextlib.suppress(OSError):
            where.rmdir()


def tree_bytes(path: Path) -> int:
    """Bytes allocated by the files under ``path`` (``lstat``, never following a link)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                total += st.st_blocks * 512 if not stat.S_ISDIR(st.st_mode) else 0
    return total


def top_subvolumes(view: Path) -> list[str]:
    """Paths of the subvolumes directly below the top level (``btrfs subvolume list``)."""
    out = []
    for line in _run("btrfs", "subvolume", "list", view).splitlines():
        words = line.split()
        if "level" in words and "path" in words:
            level = words[words.index("level") + 1]
            path = line.split(" path ", 1)[1]
            if level == "5":
                out.append(path)
    return out


@dataclass(frozen=True)
class Copy:
    """What goes into the scratch disk, relative to the top level."""

    subvolumes: tuple[str, ...]
    """Image subvolumes copied in full (made subvolumes there too)."""
    trees: tuple[str, ...]
    """Plain directories copied in full (docker's image metadata, boot_docker, …)."""
    empty: tuple[str, ...]
    """Subvolumes made empty (the top level's others: home, journal, docker itself)."""
    bytes: int
    """What the copied files take on the partition."""


def image_size(copy: Copy) -> int:
    """Size of the sparse scratch image: twice the copy plus headroom, at least 2 GiB."""
    return max(2 << 30, 2 * copy.bytes + HEADROOM)


def check_space(workdir: Path, copy: Copy) -> None:
    """Raise ``TrialError`` unless ``workdir``'s filesystem has room for the copy and headroom."""
    st = os.statvfs(workdir)
    free = st.f_bavail * st.f_frsize
    needed = copy.bytes + HEADROOM // 2
    if free < needed:
        raise TrialError(f"not enough disk for the try's copy: {needed >> 20} MiB needed in "
                         f"{workdir}, {free >> 20} MiB free", "free space there, or use --workdir")


def build(view: Path, copy: Copy, image: Path, label: str,
          cancel: threading.Event | None = None) -> Generator[Event, None, int]:
    """Make the scratch disk ``image`` labelled ``label`` from ``view``; return its bytes on disk.

    Events name each copy; the cancel token is checked between them.
    """
    temp_label = f"dbw-try-{uuid.uuid4().hex[:8]}"
    with open(image, "wb") as f:
        f.truncate(image_size(copy))
    yield StepStarted("scratch", f"a scratch btrfs ({image_size(copy) >> 20} MiB sparse) "
                                 f"with {copy.bytes >> 20} MiB copied from the partition")
    _run("mkfs.btrfs", "-q", "-f", "-L", temp_label, image)
    loop = _run("losetup", "--show", "-f", image).strip()
    mnt = image.parent / "scratch-mnt"
    mnt.mkdir(exist_ok=True)
    try:
        _run("mount", "-t", "btrfs", loop, mnt)
        try:
            yield from _fill(view, copy, mnt, cancel)
        finally:
            subprocess.run(["umount", mnt], capture_output=True)
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        with contextlib.suppress(OSError):
            mnt.rmdir()
    _run("btrfs", "filesystem", "label", image, label)
    used = os.stat(image).st_blocks * 512
    yield StepDone("scratch", f"{used >> 20} MiB on disk, labelled {label}")
    return used


def _fill(view: Path, copy: Copy, mnt: Path,
          cancel: threading.Event | None) -> Generator[Event, None, None]:
    for rel in sorted(copy.empty, key=lambda p: p.count("/")):
        (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
        _run("btrfs", "subvolume", "create", mnt / rel)
    for rel in copy.trees:
        check_cancel(cancel)
        yield LogLine(f"copying {rel}/")
        (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
        _run("cp", "-a", "--reflink=never", view / rel, mnt / rel)
    for rel in copy.subvolumes:
        check_cancel(cancel)
        yield LogLine(f"copying the image's subvolume {rel}")
        (mnt / rel).parent.mkdir(parents=True, exist_ok=True)
        _run("btrfs", "subvolume", "create", mnt / rel)
        _run("cp", "-a", "--reflink=never", f"{view / rel}/.", mnt / rel)
    _run("sync", "-f", mnt)


def identity(path: Path) -> tuple[int, int]:
    """``(st_dev, st_ino)`` of ``path`` itself (not what a link points to)."""
    st = os.lstat(path)
    return st.st_dev, st.st_ino


def safe_remove(workdir: Path, made: list[Path], made_id: tuple[int, int] | None = None
                ) -> list[str]:
    """Remove the files this try made in ``workdir``, only those, then ``workdir`` if empty.

    ``workdir`` is opened once without following a link (and must still be
    the directory ``made_id``, from ``identity``, names); every name is then
    looked up and unlinked relative to that open directory, so a ``workdir``
    swapped for a link to another directory meanwhile changes nothing
    elsewhere.  Left in place, one line each (returned): a path not directly
    in ``workdir``, anything that is not a plain file with one link (a
    symlink, a hard link to another file, a directory), a mount point, and
    ``workdir`` itself unless it is empty and still the same directory.
    """
    try:
        fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError as e:
        return [f"{workdir}: left in place, it is not the try's directory ({e.strerror})"]
    left: list[str] = []
    try:
        top = os.fstat(fd)
        if made_id is not None and (top.st_dev, top.st_ino) != made_id:
            return [f"{workdir}: left in place, it is not the directory the try made"]
        mounts = {m.mountpoint for m in mountinfo.read_mountinfo()}
        for path in made:
            if path.parent != workdir or path.name in ("", ".", ".."):
                left.append(f"{path}: left in place, it is not in {workdir}")
                continue
            try:
                st = os.stat(path.name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if str(path) in mounts or st.st_dev != top.st_dev:
                left.append(f"{path}: left in place, it is still mounted — unmount it by hand")
            elif not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                left.append(f"{path}: left in place, it is not a file the try made "
                            "(a link or a directory)")
            else:
                os.unlink(path.name, dir_fd=fd)
        with contextlib.suppress(OSError):
            if not left and identity(workdir) == (top.st_dev, top.st_ino):
                os.rmdir(workdir)  # only when empty: a file the try did not list stays
    finally:
        os.close(fd)
    return left
