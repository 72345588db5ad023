"""rEFInd put on a new machine's ESP, for an image that carries no signed shim + GRUB.

``install`` writes the image's own GRUB where it can (Secure Boot on).  An
image without the signed pair boots through rEFInd (Secure Boot off), and a
new ESP has none: this lays it out as ``refind-install`` does, from this
machine's ``refind`` package — the loader, the btrfs driver, the icons and
the package's own ``refind.conf-sample`` as ``refind.conf`` (the stock
configuration; apply then adds its managed block) — in the removable path
``EFI/BOOT`` where that is free (a machine with empty NVRAM boots it), else
in ``EFI/refind``.  Nothing on the ESP is overwritten: a file in the way is a
one-line refusal.
"""

from __future__ import annotations

from pathlib import Path

from wizard.common.atomic import write_atomic
from wizard.common.errors import BootloaderError
from wizard.loaders import esp_files
from wizard.loaders.esp import find_refind_conf
from wizard.settings.config import Settings
from wizard.store import images
from wizard.store.signed_chain import find_chain

REFIND_DIR = Path("/usr/share/refind/refind")
"""Where Debian's ``refind`` package keeps what ``refind-install`` copies."""


def files(removable: bool) -> dict[str, Path]:
    """ESP path -> the package's file, for the removable path or ``EFI/refind``."""
    where = "EFI/BOOT" if removable else "EFI/refind"
    out = {f"{where}/{'BOOTX64.EFI' if removable else 'refind_x64.efi'}":
           REFIND_DIR / "refind_x64.efi",
           f"{where}/refind.conf": REFIND_DIR / "refind.conf-sample",
           f"{where}/drivers_x64/btrfs_x64.efi": REFIND_DIR / "drivers_x64" / "btrfs_x64.efi"}
    icons = REFIND_DIR / "icons"  # refind-install copies them beside the loader
    if icons.is_dir():
        out.update({f"{where}/icons/{p.name}": p for p in sorted(icons.iterdir()) if p.is_file()})
    return out


def wanted(settings: Settings, data_root: Path) -> bool:
    """Say whether rEFInd boots ``settings``' image: asked for, or chosen for want of GRUB.

    ``data_root``: the new store's docker data-root, holding the image.

    Raises:
        ImageError: the image cannot be resolved in that store.

    """
    if settings.bootloader:
        return settings.bootloader == "refind"
    root = images.resolve_subvolume(data_root, images.normalize_ref(settings.image))
    return find_chain(root) is None


def put(esp: Path) -> tuple[str, str | None]:
    """Put rEFInd on ``esp`` unless it is there already: what was done, the loader's path.

    The path is as the firmware writes it (backslashes: ``EFI/BOOT/BOOTX64.EFI``),
    for a boot entry; None when rEFInd was there already (what boots it is set up).

    Raises:
        BootloaderError: the ``refind`` package is not installed here, or a
            file of the layout is on the ESP already (never overwritten).

    """
    try:
        return f"rEFInd is on the ESP already ({find_refind_conf(esp)})", None
    except BootloaderError:
        pass
    if not (REFIND_DIR / "refind_x64.efi").is_file():
        raise BootloaderError("the image carries no signed shim + GRUB, and rEFInd is not "
                              f"installed here ({REFIND_DIR} is missing) to boot it",
                              "install it (`apt-get install refind`), or add shim-signed and "
                              "grub-efi-amd64-signed to the image")
    removable = esp_files.existing(esp, "EFI/BOOT/BOOTX64.EFI") is None
    layout = files(removable)
    taken = [rel for rel in layout if esp_files.existing(esp, rel) is not None]
    if taken:
        raise BootloaderError(f"{taken[0]} is on the ESP already and is not rEFInd's "
                              "refind.conf layout: the wizard does not overwrite it",
                              "install rEFInd yourself (refind-install), then run again")
    for rel, source in layout.items():
        path = esp_files.target(esp, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, source.read_bytes(), mode=0o644, backup=False)
    where = "EFI/BOOT (the removable path)" if removable else "EFI/refind"
    loader = next(iter(layout)).replace("/", "\\")
    return (f"rEFInd from this machine's refind package put in {where}, with its stock "
            "refind.conf: the image has no signed shim + GRUB (Secure Boot must be off)",
            f"\\{loader}")
