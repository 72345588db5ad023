"""How much room a new machine's disk must have, before the image's own size is known.

``install`` (the CLI and the TUI's New machine route) plans the disk with
these: the btrfs partition's least size and one generation's boot files,
which size a new ESP (``wizard.disk.layout.esp_size``).
"""

from __future__ import annotations

from pathlib import Path

from wizard.disk.layout import GIB, MIB

DEFAULT_NEED = 4 * GIB
"""The btrfs partition's least size when the image's own is not known yet."""
BOOT_BYTES = 100 * MIB
"""One generation's kernel + initramfs, for the new ESP's size (Debian's: ~70 MiB)."""


def need(archive: Path | None = None) -> int:
    """The btrfs partition's least size: ``DEFAULT_NEED``, more for a large image archive.

    An archive's image takes about its size once loaded, and apply's copy of
    it as a fallback root shares its extents; twice its size plus a GiB
    leaves room for the rw layer and the logs.
    """
    if archive is None:
        return DEFAULT_NEED
    return max(DEFAULT_NEED, 2 * archive.stat().st_size + GIB)
