"""UEFI boots in QEMU (TCG) through real rEFInd, reading facts from the serial console.

The kernel here cannot mount vfat, so the ESP is kept as a directory and
copied into the disk image's FAT partition with mtools before each boot
(DESIGN §7).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.lab.lab import run

REFIND_DIR = Path("/usr/share/refind/refind")
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
ESP_OFFSET = "1M"

USER_REFIND_CONF = """\
# refind.conf of the user's own (the wizard must keep every byte of this)
timeout 2
textonly
scanfor manual
default_selection "Docker image"

menuentry "My own OS" {
    loader /EFI/myos/grubx64.efi
    # a comment inside the user's entry
}
"""


def make_esp(esp: Path, refind_conf: str = USER_REFIND_CONF) -> Path:
    """Lay out rEFInd as the removable-media loader in ``esp``; return refind.conf's path."""
    boot = esp / "EFI" / "BOOT"
    (boot / "drivers_x64").mkdir(parents=True, exist_ok=True)
    shutil.copy(REFIND_DIR / "refind_x64.efi", boot / "BOOTX64.EFI")
    shutil.copy(REFIND_DIR / "drivers_x64" / "btrfs_x64.efi", boot / "drivers_x64")
    conf = boot / "refind.conf"
    conf.write_text(refind_conf)
    return conf


def sync_esp(esp: Path, disk_image: Path) -> None:
    """Copy the ESP directory into the FAT partition at 1 MiB of ``disk_image``."""
    target = f"{disk_image}@@{ESP_OFFSET}"
    for item in sorted(esp.iterdir()):
        run("mcopy", "-o", "-s", "-Q", "-i", target, item, "::/")


def boot(disk_image: Path, log: Path, *, timeout: float = 900, memory: str = "1536") -> str:
    """Boot ``disk_image`` with OVMF; return the serial log once the guest powers off.

    The guest is expected to power off by itself (the test init does);
    a guest that hangs is killed after ``timeout`` seconds and its log
    returned, so the caller's assertions show what happened.
    """
    vars_copy = log.with_suffix(".vars.fd")
    shutil.copy(OVMF_VARS, vars_copy)
    cmd = [
        "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", memory, "-smp", "1",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_copy}",
        "-drive", f"file={disk_image},format=raw,if=virtio",
        "-display", "none", "-serial", f"file:{log}", "-monitor", "none",
        "-no-reboot", "-nic", "none",
    ]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace") if log.exists() else ""
    return text + f"\n[lab: qemu ran {elapsed:.0f}s, exit {proc.returncode}]\n"


def facts(serial: str) -> dict[str, str]:
    """``DBW-FACT key=value`` lines printed by the test init, as a dict."""
    out: dict[str, str] = {}
    for line in serial.splitlines():
        if "DBW-FACT " in line:
            key, _, value = line.split("DBW-FACT ", 1)[1].strip().partition("=")
            out[key] = value.strip()
    return out
