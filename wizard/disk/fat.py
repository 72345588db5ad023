"""A FAT ESP partition as a directory the wizard writes into (``install``).

Mounted (``mount -t vfat``) where the kernel can.  Where it cannot (a kernel
without vfat, as on the machines CI runs on), the partition is copied into a
private directory with mtools and, at the end, only what changed there is
written back: files new or changed are copied in, files the wizard removed
are deleted, every other file on the partition is left as it is (another
system's ESP keeps its bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from wizard.common import leftovers
from wizard.common.commands import output_or
from wizard.common.errors import BootloaderError


def _run(*cmd: str | os.PathLike[str]) -> str:
    return output_or(BootloaderError, "install mtools",
                     "check the ESP partition (fsck.vfat), then run again", *cmd)


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _mountable() -> bool:
    text = Path("/proc/filesystems").read_text()
    if "\tvfat\n" in text:
        return True
    subprocess.run(["modprobe", "vfat"], capture_output=True, check=False)
    return "\tvfat\n" in Path("/proc/filesystems").read_text()


@contextlib.contextmanager
def esp_directory(device: str) -> Iterator[Path]:
    """The FAT partition ``device`` as a directory for the block.

    Raises:
        BootloaderError: it cannot be mounted nor read with mtools, or what
            changed cannot be written back.

    """
    where = Path(tempfile.mkdtemp(prefix="esp-", dir=leftovers.private_run_dir()))
    try:
        if _mountable():
            _run("mount", "-t", "vfat", device, where)
            try:
                yield where
            finally:
                subprocess.run(["umount", str(where)], capture_output=True, check=False)
            return
        listing = _run("mdir", "-b", "-i", device, "::/").split()
        if listing:
            _run("mcopy", "-s", "-n", "-m", "-i", device, "::/*", where)
        before = _digests(where)
        yield where
        write_back(device, where, before)
    finally:
        if not os.path.ismount(where):
            shutil.rmtree(where, ignore_errors=True)


def write_back(device: str, where: Path, before: dict[str, str]) -> list[str]:
    """Copy into the FAT ``device`` what changed in ``where`` since ``before``; remove what went.

    Returns:
        The paths written or removed (relative to the ESP's root).

    """
    now = _digests(where)
    done = []
    for rel in sorted(set(before) - set(now)):
        _run("mdel", "-i", device, f"::/{rel}")
        done.append(rel)
    made: set[str] = set()
    for rel, digest in now.items():
        if before.get(rel) == digest:
            continue
        parent = Path(rel).parent
        chain = [*reversed(list(parent.parents)[:-1]), parent] if str(parent) != "." else []
        for d in chain:  # the shallowest first
            key = d.as_posix()
            if key not in made and not (where / key).is_symlink():
                subprocess.run(["mmd", "-D", "s", "-i", device, f"::/{key}"],
                               capture_output=True, check=False)  # there already: fine
                made.add(key)
        _run("mcopy", "-o", "-m", "-i", device, where / rel, f"::/{rel}")
        done.append(rel)
    return done
