"""What an image carries to boot with Secure Boot on: its distribution's signed shim + GRUB.

The boot chain comes from the image like its kernel (DESIGN §4c,
platform-facts §11): read from inside the image's root (its subvolume),
every symlink followed inside it (``rootfs.resolve``), never out of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wizard.common.errors import BootloaderError
from wizard.store import rootfs


@dataclass(frozen=True)
class ChainSource:
    """Where a distribution's packages put the signed shim and GRUB."""

    vendor: str
    """The signed GRUB's built-in prefix is ``/EFI/<vendor>``."""
    packages: str
    """What to add to the Dockerfile (said when the files are missing)."""
    shim: str
    grub: str
    mm: str


SOURCES = (
    ChainSource("debian", "shim-signed grub-efi-amd64-signed",
                "usr/lib/shim/shimx64.efi.signed",
                "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
                "usr/lib/shim/mmx64.efi.signed"),
    ChainSource("ubuntu", "shim-signed grub-efi-amd64-signed",
                "usr/lib/shim/shimx64.efi.signed.latest",
                "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
                "usr/lib/shim/mmx64.efi.signed"),
    ChainSource("fedora", "shim-x64 grub2-efi-x64",
                "boot/efi/EFI/fedora/shimx64.efi", "boot/efi/EFI/fedora/grubx64.efi",
                "boot/efi/EFI/fedora/mmx64.efi"),
)


@dataclass(frozen=True)
class Chain:
    """The signed shim, GRUB and MokManager found in an image."""

    vendor: str
    shim: bytes
    grub: bytes
    mm: bytes | None


def os_id(image_root: Path) -> str:
    """The image's distribution: ``ID`` of its os-release ("" when it has none)."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        path = rootfs.resolve(image_root, rel)
        if path is not None and path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith("ID="):
                    return line[3:].strip().strip("\"'")
    return ""


def _read(image_root: Path, rel: str) -> bytes | None:
    path = rootfs.resolve(image_root, rel)
    return path.read_bytes() if path is not None and path.is_file() else None


def find_chain(image_root: Path) -> Chain | None:
    """The signed shim + GRUB of the image at ``image_root`` (its subvolume), or None."""
    distribution = os_id(image_root)
    for src in sorted(SOURCES, key=lambda s: s.vendor != distribution):
        shim, grub = _read(image_root, src.shim), _read(image_root, src.grub)
        if shim and grub:
            return Chain(src.vendor, shim, grub, _read(image_root, src.mm))
    return None


def missing_chain(image: str, image_root: Path) -> BootloaderError:
    """The one line for an image without its distribution's signed shim + GRUB."""
    distribution = os_id(image_root)
    src = next((s for s in SOURCES if s.vendor == distribution), SOURCES[0])
    return BootloaderError(
        f"image {image} carries no signed shim + GRUB (/{src.shim}, /{src.grub})",
        f"add `{src.packages}` to its Dockerfile, or use --bootloader refind "
        "(Secure Boot must be off for rEFInd)")
