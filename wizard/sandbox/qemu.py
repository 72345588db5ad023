"""UEFI boots of a sandbox disk in QEMU through real rEFInd, read from the serial console.

The sandbox keeps its ESP as a directory (the wizard edits ``refind.conf``
there, and some kernels cannot mount vfat) and copies it into the disk
image's FAT partition with mtools before each boot.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import TextIO

from wizard.common.commands import run
from wizard.common.errors import SandboxError
from wizard.loaders.refind_install import REFIND_DIR

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
OVMF_CODE_SB = Path("/usr/share/OVMF/OVMF_CODE_4M.ms.fd")
"""OVMF as a PC ships it: Secure Boot enforced (SMM), Microsoft's keys in the variables."""
OVMF_VARS_SB = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
ESP_OFFSET = "1M"
"""Offset of the ESP in a sandbox disk (partition 1, see ``parts.loop_disk``)."""

USER_REFIND_CONF = """\
# refind.conf of the user's own (the wizard must keep every byte of this)
timeout 2
textonly
scanfor manual

menuentry "My own OS" {
    loader /EFI/myos/grubx64.efi
    # a comment inside the user's entry
}
"""
"""A refind.conf as a user might have it: the wizard adds its entry and keeps the rest.

Like rEFInd's stock ``refind.conf-sample`` it has no ``default_selection``: rEFInd
boots the entry booted last unless the wizard's block names its default entry."""


def make_esp(esp: Path, refind_conf: str = USER_REFIND_CONF) -> Path:
    """Lay out rEFInd as the removable-media loader in the directory ``esp``.

    Args:
        esp: directory standing for the ESP (created if missing).
        refind_conf: content of ``EFI/BOOT/refind.conf``.

    Returns:
        The path of ``refind.conf``.

    Raises:
        SandboxError: rEFInd is not installed.

    """
    if not (REFIND_DIR / "refind_x64.efi").is_file():
        raise SandboxError(f"rEFInd is not installed ({REFIND_DIR} is missing)",
                           "install it: `apt-get install refind` (or `sudo make setup`)")
    boot = esp / "EFI" / "BOOT"
    (boot / "drivers_x64").mkdir(parents=True, exist_ok=True)
    shutil.copy(REFIND_DIR / "refind_x64.efi", boot / "BOOTX64.EFI")
    shutil.copy(REFIND_DIR / "drivers_x64" / "btrfs_x64.efi", boot / "drivers_x64")
    conf = boot / "refind.conf"
    conf.write_text(refind_conf)
    return conf


SDBOOT_EFI = Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
"""Debian's systemd-boot (``systemd-boot-efi``; unsigned: Secure Boot off)."""
STOCK_LOADER_CONF = "#timeout 3\n#console-mode keep\n"
"""The loader.conf ``bootctl install`` (systemd 252) writes."""


def make_sdboot_esp(esp: Path) -> Path:
    """Lay out systemd-boot as ``bootctl install`` does, with the removable path; its loader.conf.

    Raises:
        SandboxError: systemd-boot is not installed here.

    """
    if not SDBOOT_EFI.is_file():
        raise SandboxError(f"systemd-boot is not installed ({SDBOOT_EFI} is missing)",
                           "install it: `apt-get install systemd-boot-efi` (or `sudo make setup`)")
    for d in ("EFI/systemd", "EFI/BOOT", "loader/entries"):
        (esp / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(SDBOOT_EFI, esp / "EFI/systemd/systemd-bootx64.efi")
    shutil.copy(SDBOOT_EFI, esp / "EFI/BOOT/BOOTX64.EFI")
    conf = esp / "loader/loader.conf"
    conf.write_text(STOCK_LOADER_CONF)
    return conf


def mirror_esp(esp: Path, disk_image: Path) -> None:
    """Make the disk's FAT ESP hold exactly the ESP directory (what is gone there goes)."""
    target = f"{disk_image}@@{ESP_OFFSET}"
    listing = run("mdir", "-b", "-i", target, "::/", check=False).stdout.split()
    for item in listing:
        run("mdeltree" if item.endswith("/") else "mdel", "-i", target, item.rstrip("/"))
    sync_esp(esp, disk_image)


def read_esp(disk_image: Path, esp: Path) -> None:
    """Make the ESP directory hold exactly what the disk's FAT ESP holds (after a boot)."""
    shutil.rmtree(esp)
    esp.mkdir()
    run("mcopy", "-s", "-n", "-m", "-i", f"{disk_image}@@{ESP_OFFSET}", "::/*", esp)


def sync_esp(esp: Path, disk_image: Path) -> None:
    """Copy the ESP directory into the FAT partition at 1 MiB of ``disk_image``."""
    target = f"{disk_image}@@{ESP_OFFSET}"
    for item in sorted(esp.iterdir()):
        run("mcopy", "-o", "-s", "-Q", "-i", target, item, "::/")


def qemu_missing() -> SandboxError:
    """The error for a machine without QEMU (every boot raises the same one)."""
    return SandboxError("qemu-system-x86_64 is not installed",
                        "install it: `apt-get install qemu-system-x86 ovmf`")


def ovmf_vars_copy(log: Path, keep: Path | None = None, *, secure_boot: bool = False) -> Path:
    """The writable OVMF variable store (NVRAM) of a boot.

    Without ``keep``: a fresh copy beside ``log`` (the boot starts from defaults).
    With ``keep``: that file, made from the defaults the first time and kept
    between boots as a real machine keeps its NVRAM (rEFInd remembers the entry
    booted last there).  ``secure_boot``: the variables of ``OVMF_CODE_SB`` (the
    keys enrolled, Secure Boot on, no boot entry: a new PC's NVRAM).
    """
    template = OVMF_VARS_SB if secure_boot else OVMF_VARS
    if keep is not None:
        if not keep.exists():
            shutil.copy(template, keep)
        return keep
    vars_copy = log.with_suffix(".vars.fd")
    shutil.copy(template, vars_copy)
    return vars_copy


def qemu_command(disk_image: Path, vars_copy: Path, memory: str,
                 serial_args: list[str], *, accel: str = "tcg", cpus: int = 1,
                 network: str = "none", extra: tuple[str, ...] = (),
                 secure_boot: bool = False) -> list[str]:
    """The one QEMU command line of every boot: q35, TCG, OVMF, the disk on virtio.

    No display, no monitor, no network; ``-no-reboot`` makes a guest reboot
    end the process like a power-off.

    Args:
        disk_image: raw GPT disk image.
        vars_copy: writable OVMF variable store (``ovmf_vars_copy``).
        memory: guest RAM in MiB.
        serial_args: where the serial console goes (e.g. ``["-serial", "file:…"]``).
        accel: ``tcg`` or ``kvm`` (``dockerboot-wizard try`` where ``/dev/kvm`` works).
        cpus: guest CPUs.
        network: ``none``, or ``user`` (QEMU's user-mode NAT on virtio-net).
        extra: more arguments (``try``'s direct kernel boot: ``-kernel``, ``-initrd``, …).
        secure_boot: ``OVMF_CODE_SB`` with Secure Boot enforced (SMM, a secure
            flash), its variables in ``vars_copy`` (``ovmf_vars_copy(secure_boot=True)``).

    """
    nic = "none" if network == "none" else f"{network},model=virtio-net-pci"
    machine = ["-machine", "q35,smm=on", "-global", "driver=cfi.pflash01,property=secure,"
               "value=on"] if secure_boot else ["-machine", "q35"]
    return [
        "qemu-system-x86_64", *machine, "-accel", accel, "-m", memory,
        "-smp", str(cpus),
        "-drive", f"if=pflash,format=raw,readonly=on,file="
                  f"{OVMF_CODE_SB if secure_boot else OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={vars_copy}",
        "-drive", f"file={disk_image},format=raw,if=virtio",
        "-display", "none", *serial_args, "-monitor", "none", "-no-reboot", "-nic", nic,
        *extra,
    ]


def boot(disk_image: Path, log: Path, *, timeout: float = 900, memory: str = "1536",
         echo: TextIO | None = None, nvram: Path | None = None) -> str:
    """Boot ``disk_image`` with OVMF; return the serial log once the guest powers off.

    The guest is expected to power off by itself (the sample image's init
    does); a guest that hangs is killed after ``timeout`` seconds and its log
    returned, so the caller sees what happened.  The disk must not be attached
    to a loop device meanwhile (its cache would hide QEMU's writes).

    Args:
        disk_image: raw GPT disk image.
        log: file the serial console is written to.
        timeout: seconds before the guest is killed.
        memory: guest RAM in MiB.
        echo: stream that receives the console live (the demo shows the boot).
        nvram: OVMF variable store kept between boots (``ovmf_vars_copy``); None: fresh.

    Returns:
        The serial log plus a last line with QEMU's run time and exit code.

    """
    cmd = qemu_command(disk_image, ovmf_vars_copy(log, nvram), memory,
                       ["-serial", f"file:{log}"])
    started = time.monotonic()
    errors = log.with_suffix(".qemu-stderr.log")
    try:
        # stderr goes to a file: an unread pipe could fill up and stall QEMU.
        with open(errors, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    except FileNotFoundError as e:
        raise qemu_missing() from e
    shown = 0
    try:
        while proc.poll() is None:
            if time.monotonic() - started > timeout:
                proc.kill()
                break
            shown = _echo_new(log, shown, echo)
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    _echo_new(log, shown, echo)
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace") if log.exists() else ""
    if proc.returncode:
        text += errors.read_text(errors="replace")
    return text + f"\n[sandbox: qemu ran {elapsed:.0f}s, exit {proc.returncode}]\n"


def _echo_new(log: Path, shown: int, echo: TextIO | None) -> int:
    """Write the part of ``log`` past ``shown`` bytes to ``echo``; return the new offset."""
    if echo is None or not log.exists():
        return shown
    with open(log, "rb") as f:
        f.seek(shown)
        data = f.read()
    if data:
        # Firmware output is full of escape sequences and CRs: show it as text.
        echo.write(data.decode(errors="replace").replace("\r", ""))
        echo.flush()
    return shown + len(data)


def facts(serial: str) -> dict[str, str]:
    """``DBW-FACT key=value`` lines printed by the sample image's init, as a dict."""
    out: dict[str, str] = {}
    for line in serial.splitlines():
        if "DBW-FACT " in line:
            key, _, value = line.split("DBW-FACT ", 1)[1].strip().partition("=")
            out[key] = value.strip()
    return out
