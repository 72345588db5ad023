"""One dockerboot-wizard at a time per partition: ``boot_docker/.lock``.

Taken once the partition's top level is mounted and held from the plan to the
last write, so two runs cannot delete each other's staged builds or
overwrite each other's refind.conf and account files.  ``flock`` dies with
its process: a killed run leaves no stale lock.  The file holds the holder's
pid for the message; it is removed on release (and ``boot_docker`` with it
when the lock made it), so a run that changed nothing leaves nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from wizard.common.errors import WizardError

LOCK_NAME = ".lock"


class LockedError(WizardError):
    """Another dockerboot-wizard is working on the same partition."""


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(path.read_text().split()[0]))
    return "unknown"


@contextlib.contextmanager
def partition_lock(boot_dir: Path, label: str) -> Iterator[Path]:
    """Hold ``<boot_dir>/.lock`` exclusively meanwhile; return its path.

    Raises:
        LockedError: another process holds it (one line naming its pid and
            the label); nothing was changed.

    """
    boot_dir = Path(boot_dir)
    made = [p for p in (boot_dir, *boot_dir.parents) if not p.exists()]
    boot_dir.mkdir(parents=True, exist_ok=True)
    path = boot_dir / LOCK_NAME
    try:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(f"another dockerboot-wizard (pid {_holder(path)}) is working "
                                  f"on {label}", "wait for it to finish") from None
            # The holder before us may have removed the file between our open and
            # our flock: then we locked a name nobody else will find.  Start over.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield path
        finally:
            # Unlink while still holding it: a waiter that opened the old file
            # sees it is gone (the samestat check above) and retries.
            with contextlib.suppress(OSError):
                os.unlink(path)
            os.close(fd)
    finally:
        for d in made:  # innermost first: only directories the lock itself made
            with contextlib.suppress(OSError):
                d.rmdir()  # fails (kept) when anything else was written there
