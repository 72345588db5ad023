"""The EFI system partition: where it is mounted, and where rEFInd's ``refind.conf`` is on it.

FAT matches names without regard to case, so every lookup on the ESP does too.
"""

from __future__ import annotations

from pathlib import Path

from wizard.common.errors import BootloaderError
from wizard.common.mountinfo import MOUNTINFO, read_mountinfo

_ESP_PREFERENCE = ("/boot/efi", "/efi", "/boot")
SECURE_BOOT_VAR = Path("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
"""The firmware's ``SecureBoot`` variable: 4 bytes of attributes, then 1 (on) or 0 (off)."""
_FAT_TYPES = {"vfat", "msdos", "fat"}


def child_ci(directory: Path, name: str) -> Path | None:
    """Return the entry of ``directory`` called ``name``, ignoring case (FAT)."""
    exact = directory / name
    if exact.exists():
        return exact
    try:
        for child in directory.iterdir():
            if child.name.lower() == name.lower():
                return child
    except OSError:
        return None
    return None


def find_refind_conf(esp: Path) -> Path:
    """Find ``refind.conf`` on the ESP mounted (or copied) at ``esp``.

    Searches ``EFI/refind/``, ``EFI/BOOT/`` and then any other ``EFI/*/``
    directory, matching names case-insensitively.

    Raises:
        BootloaderError: no refind.conf was found.

    """
    esp = Path(esp)
    efi = child_ci(esp, "EFI")
    if efi is not None and efi.is_dir():
        for sub in ("refind", "BOOT"):
            d = child_ci(efi, sub)
            conf = child_ci(d, "refind.conf") if d is not None and d.is_dir() else None
            if conf is not None and conf.is_file():
                return conf
        for d in sorted(p for p in efi.iterdir() if p.is_dir()):
            conf = child_ci(d, "refind.conf")
            if conf is not None and conf.is_file():
                return conf
    raise BootloaderError(f"no refind.conf under {esp}",
                          "install rEFInd on the ESP (refind-install) or pass --refind-conf FILE")


def find_esp(mountinfo: Path = MOUNTINFO) -> Path:
    """Return the mounted ESP: a FAT mount holding an ``EFI`` directory.

    ``/boot/efi``, ``/efi`` and ``/boot`` are preferred, in that order, over
    any other FAT mount.

    Args:
        mountinfo: the mount table to look in (a file in mountinfo format).

    Raises:
        BootloaderError: no mounted FAT filesystem holds an EFI directory.

    """
    candidates = [Path(m.mountpoint) for m in read_mountinfo(mountinfo)
                  if m.fstype in _FAT_TYPES and child_ci(Path(m.mountpoint), "EFI") is not None]
    for preferred in _ESP_PREFERENCE:
        if Path(preferred) in candidates:
            return Path(preferred)
    if candidates:
        return candidates[0]
    raise BootloaderError("no mounted EFI system partition found",
                          "mount the ESP (e.g. at /boot/efi) or pass --esp DIR")


def esp_warning(esp: Path, mountinfo: Path = MOUNTINFO, loader: str = "rEFInd") -> str | None:
    """Return a warning when ``esp`` is not a mounted FAT filesystem, else None.

    Not an error: a directory that is later copied onto the ESP (as the
    test lab does) is a legitimate target.
    """
    resolved = Path(esp).resolve()
    mounts = [(m.mountpoint, m.fstype) for m in read_mountinfo(mountinfo)]
    fstype = next((t for mp, t in reversed(mounts) if Path(mp) == resolved), None)
    if fstype in _FAT_TYPES:
        return None
    if fstype is None:
        # The filesystem the directory lives on: the longest mountpoint prefix.
        best = max((mp for mp, _ in mounts if resolved.is_relative_to(mp)), key=len, default="/")
        fstype = next((t for mp, t in reversed(mounts) if mp == best), "unknown")
        return (f"{esp} is not a mount point (it lives on a {fstype} filesystem); "
                f"the firmware only reads {loader} from a FAT ESP")
    return (f"{esp} is a {fstype} filesystem, not FAT; "
            f"the firmware only reads {loader} from a FAT ESP")


def secure_boot(var: Path = SECURE_BOOT_VAR) -> bool | None:
    """Whether the firmware this runs on enforces Secure Boot (None: not known here).

    None on a machine not booted through UEFI, or whose EFI variables cannot be read.
    """
    try:
        data = Path(var).read_bytes()
    except OSError:
        return None
    return bool(data[-1]) if len(data) == 5 else None
