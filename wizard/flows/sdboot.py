"""systemd-boot's part of a plan and of ``status`` (``wizard.loaders.systemd_boot``).

The same generations, titles and command lines as every bootloader
(``bootset.menu``); the kernels copied to the ESP, the entries beside
systemd-boot's own, its count read back from the entries' names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wizard.boot import bootset
from wizard.common.errors import BootloaderError
from wizard.loaders import esp_plan, systemd_boot
from wizard.loaders.esp import esp_warning, secure_boot
from wizard.settings.config import Settings


def plan(esp: Path, top: Path, settings: Settings, new: bootset.NewGeneration | None, *,
         counting: bool) -> tuple[esp_plan.ChainPlan, list[str]]:
    """Entries and kernel copies on the ESP ``esp`` for the generations after this run.

    ``counting``: the image marks its boots good (systemd), so a new
    generation's entry is counted.

    Raises:
        BootloaderError: no systemd-boot on the ESP, a file there not the
            wizard's, loader.conf not a plain file, too little space.

    """
    if systemd_boot.find(esp) is None:
        raise BootloaderError(f"no systemd-boot on the ESP {esp} (no {systemd_boot.BINARY}, "
                              f"no {systemd_boot.LOADER_CONF})",
                              "install it (bootctl install), or choose --bootloader grub|refind")
    menu, numbers = bootset.menu(top, settings, new)
    entries = [systemd_boot.BootEntry(n, title, top / kernel, top / initrd, cmdline)
               for n, (title, kernel, initrd, cmdline) in zip(numbers, menu, strict=True)]
    writes, removes = systemd_boot.plan_entries(esp, settings.label, entries,
                                                counting=counting)
    conf = systemd_boot.plan_loader_conf(esp, settings.label, settings.default_entry)
    text = "".join(systemd_boot.render_entry(settings.label, e) for e in entries)
    chain = esp_plan.ChainPlan(esp, writes, [], text, conf, removes, loader="systemd-boot")
    esp_plan.check_space(chain)
    warnings = [w for w in [esp_warning(esp, loader="systemd-boot")] if w]
    warnings.append(describe_default(esp, settings.label, settings.default_entry))
    if secure_boot():
        warnings.append("Secure Boot is on: Debian 12's systemd-boot is unsigned and the "
                        "firmware refuses it (turn Secure Boot off, or use --bootloader grub)")
    if not counting and len(entries) > 1:
        warnings.append(f"image {settings.image} cannot mark its boots good (no systemd): its "
                        "entry is not counted, the hook's fallback still works")
    return chain, warnings


def describe_default(esp: Path, label: str, choice: str) -> str:
    """One line: what systemd-boot boots by default once the plan is written."""
    mine = f"default dockerboot-{systemd_boot.token(label)}-*"
    theirs = systemd_boot.default_line(esp)
    if choice == "yes":
        return (f"systemd-boot boots the wizard's newest entry ({mine} in loader.conf"
                + (f"; yours, {theirs}, commented out, a backup kept)" if theirs
                   and theirs != mine else ")"))
    if choice == "no":
        return ("systemd-boot boots what loader.conf says, as you chose (--default-entry no): "
                "loader.conf is not changed")
    return ("systemd-boot picks its default from loader.conf, the entry booted last or its own "
            "order: choose whether the wizard's newest entry becomes the default "
            "(--default-entry yes|no; yes writes one line into loader.conf)")


def status(out: dict[str, Any], esp: Path, settings: Settings) -> dict[str, Any]:
    """``status`` of a machine systemd-boot boots: its entries and their counts.

    ``entries`` (default and previous) from the wizard's entry files, and
    ``assessment.systemd_boot``: the ESP, and per generation the tries left
    and done (null: not counted, or marked good).
    """
    files = systemd_boot.ours(esp, settings.label)
    numbers = sorted(files, reverse=True)
    out["entries"] = {"default": numbers[0] if numbers else None,
                      "previous": numbers[1] if len(numbers) > 1 else None}
    counts = {}
    for n in numbers:
        _, left, done = systemd_boot.counter(files[n])
        counts[str(n)] = {"file": files[n], "tries_left": left,
                          "tries_done": done if left is not None else None}
    if not files:
        out["problems"].append(f"no entry of the wizard's in {esp / systemd_boot.ENTRIES_DIR}")
    out["assessment"] = {
        "bootloader_counts": True,
        "why": "systemd-boot counts the boots of a new generation in its entry's name "
               f"(+{systemd_boot.TRIES}): without the booted system's good mark it tries the "
               "previous generation first (also when the kernel panics before the hook)",
        "systemd_boot": {"esp": str(esp), "entries": counts}}
    return out
