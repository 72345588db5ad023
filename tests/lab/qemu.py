"""UEFI boots in QEMU (TCG) through real rEFInd (now ``wizard.sandbox.qemu``; names kept)."""

from __future__ import annotations

from wizard.sandbox.qemu import (
    ESP_OFFSET,
    OVMF_CODE,
    OVMF_VARS,
    REFIND_DIR,
    STOCK_LOADER_CONF,
    USER_REFIND_CONF,
    boot,
    facts,
    make_esp,
    make_sdboot_esp,
    mirror_esp,
    read_esp,
    sync_esp,
)

__all__ = ["ESP_OFFSET", "OVMF_CODE", "OVMF_VARS", "REFIND_DIR", "STOCK_LOADER_CONF",
           "USER_REFIND_CONF", "boot", "facts", "make_esp", "make_sdboot_esp", "mirror_esp",
           "read_esp", "sync_esp"]
