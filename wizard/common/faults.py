"""Any exception as the one line the user reads: problem — fix.

``WizardError`` already is one; an ``OSError`` (a full disk, an I/O error, a
read-only ESP, a path that vanished) and a Docker or HTTP error of the SDK
are turned into one here, so the CLI never prints a traceback and a TUI
worker never leaves its screen waiting.
"""

from __future__ import annotations

import errno

from wizard.common.errors import DockerError, WizardError

_AGAIN = "then run apply again"
_FIXES = {
    errno.ENOSPC: f"free space on that filesystem (the partition or the ESP), {_AGAIN}",
    errno.EDQUOT: f"raise the quota or free space on that filesystem, {_AGAIN}",
    errno.EIO: f"the disk reported an I/O error: check it (dmesg, btrfs device stats), {_AGAIN}",
    errno.EROFS: f"remount it read-write (mount -o remount,rw …), {_AGAIN}",
    errno.EACCES: f"run as root and check the path's permissions and mount options, {_AGAIN}",
    errno.EPERM: f"run as root and check the path's attributes (lsattr) and mount, {_AGAIN}",
    errno.ENOENT: f"check that the partition and the ESP are still mounted, {_AGAIN}",
    errno.ENOTDIR: f"a path component is a file, not a directory: fix the path, {_AGAIN}",
    errno.EISDIR: f"give a file, not a directory, {_AGAIN}",
    errno.ENODEV: f"plug the disk back in (or wait for udev), {_AGAIN}",
    errno.EBUSY: f"close what uses it (lsof, fuser -m), {_AGAIN}",
}


def one_line(text: str) -> str:
    """``text`` with every line break turned into a blank: what is printed is one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(exc: BaseException) -> WizardError:
    """The ``WizardError`` to show for ``exc`` (itself when it already is one).

    ``OSError`` -> its message, the file and a fix by errno; Docker SDK and
    ``requests`` errors -> ``DockerError``; anything else -> its type and
    message with a hint to report it (never a traceback on screen).
    """
    if isinstance(exc, WizardError):
        return exc
    # Imported here: the SDK costs ~0.1 s and a fault is rare (not at start-up).
    import docker.errors
    import requests.exceptions

    # First: requests' exceptions (docker's APIError too) are OSErrors.
    if isinstance(exc, docker.errors.DockerException | requests.exceptions.RequestException):
        return DockerError(f"the Docker daemon failed: {one_line(str(exc)) or type(exc).__name__}",
                           "check that dockerd is running and DOCKER_HOST points at it, "
                           f"{_AGAIN}")
    if isinstance(exc, OSError):
        what = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
        where = f" {exc.filename}" if exc.filename else ""
        verb = " at" if exc.errno == errno.ENOENT else " writing" if exc.errno in (
            errno.ENOSPC, errno.EDQUOT, errno.EROFS) else " on" if where else ""
        problem = f"{what}{verb if where else ''}{where}"
        return WizardError(one_line(problem), _FIXES.get(exc.errno or 0,
                                                         f"check that path, {_AGAIN}"))
    return WizardError(f"unexpected {type(exc).__name__}: {one_line(str(exc))}",
                       "this is a bug in dockerboot-wizard: please report it with this line; "
                       "nothing after the last finished step changed")


def is_unexpected(exc: BaseException) -> bool:
    """Whether ``exc`` is none of the faults ``describe`` knows: a bug, not a user's problem."""
    if isinstance(exc, WizardError | OSError):  # requests' and docker's errors are OSErrors
        return False
    import docker.errors

    return not isinstance(exc, docker.errors.DockerException)


def message(exc: BaseException) -> str:
    """``str(describe(exc))`` on one line."""
    return one_line(str(describe(exc)))
