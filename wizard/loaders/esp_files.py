"""Files the wizard writes on the ESP, and how it knows they are its own.

``EFI/dockerboot/owned`` lists ``<sha256> <path>`` for every file the wizard
wrote (GRUB's chain, systemd-boot's entries and kernel copies): a file is
replaced or removed only while it still holds bytes the wizard wrote.
FAT ignores case, so existing names are found whatever their case; a
directory on the way that is a symbolic link is refused (a write would land
outside the ESP).
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from wizard.common.errors import BootloaderError
from wizard.loaders.esp import child_ci

OWN_DIR = "EFI/dockerboot"
OWNED = "owned"


def read_owned(esp: Path) -> dict[str, set[str]]:
    """``EFI/dockerboot/owned``: path -> the digests of what the wizard wrote there."""
    path = existing(esp, f"{OWN_DIR}/{OWNED}")
    out: dict[str, set[str]] = {}
    if path is not None and path.is_file() and not path.is_symlink():
        for line in path.read_text(errors="replace").splitlines():
            recorded, _, rel = line.partition(" ")
            if rel:
                out.setdefault(rel, set()).add(recorded)
    return out


def digest(data: bytes) -> str:
    """The SHA-256 ``owned`` records for ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    """``digest`` of a file's bytes, read in pieces (a kernel copy is not held whole)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def target(esp: Path, rel: str) -> Path:
    """Where ``rel`` is on the ESP: existing names whatever their case (FAT), new ones as given.

    Raises:
        BootloaderError: a directory on the way is a symbolic link (a write would
            land outside the ESP).

    """
    here = esp
    *dirs, name = PurePosixPath(rel).parts
    for part in dirs:
        here = child_ci(here, part) or here / part
        if here.is_symlink():
            raise BootloaderError(f"{here} is a symbolic link: the wizard never writes "
                                  "through one", "make it a plain directory, then run again")
    return child_ci(here, name) or here / name


def existing(esp: Path, rel: str) -> Path | None:
    """The file (or link) at ``rel`` on the ESP, or None."""
    path = target(esp, rel)
    return path if path.exists() or path.is_symlink() else None


def mine(esp: Path, rel: str, owned: dict[str, set[str]]) -> tuple[bool, bytes | None]:
    """(the wizard may write ``rel``, its bytes now): absent, or still what the wizard wrote."""
    path = existing(esp, rel)
    if path is None:
        return True, None
    if path.is_symlink() or not path.is_file():
        return False, None
    data = path.read_bytes()
    recorded = owned.get(rel, set())
    return "-" in recorded or digest(data) in recorded, data


def owned_bytes(owned: dict[str, set[str]]) -> bytes:
    """The text of ``owned`` for path -> digests."""
    return "".join(f"{d} {rel}\n" for rel, ds in sorted(owned.items())
                   for d in sorted(ds)).encode()
