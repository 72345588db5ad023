"""What ``dockerboot-wizard try`` boots, decided without touching anything.

The generation (the default entry's, the "previous" entry's, or one named
by number that one of those entries boots), its kernel and initramfs, and
the kernel command line exactly as ``wizard.boot.bootloader`` renders the
rEFInd entry; the VM's size from the host's; the accelerator; what is
missing on the host (QEMU, OVMF).  Also the reading of the serial log:
the hook's ``dockerboot:`` lines, systemd's failures, emergency mode.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from wizard.boot import bootloader
from wizard.boot.generations import Generation, Inventory
from wizard.common.errors import WizardError
from wizard.settings.config import Settings

SERIAL_CONSOLE = "console=ttyS0"
"""Added to the command line when it has no serial console: the try reads the serial line."""
ACCELS = ("auto", "kvm", "tcg")
NETWORKS = ("none", "user")
MIN_MEMORY_MIB = 1024
MAX_MEMORY_MIB = 4096
_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01


class TrialError(WizardError):
    """The try cannot start: no generation, no QEMU/OVMF, not enough disk or memory."""


@dataclass(frozen=True)
class Target:
    """What the next real boot would boot: a generation, its files, its command line."""

    generation: Generation
    entry: str
    """``default`` or ``previous``: the rEFInd entry that boots it."""
    kernel: str
    """The kernel's path relative to the partition's top level."""
    initrd: str
    """The initramfs's path relative to the top level."""
    cmdline: str
    """The entry's command line, as rEFInd passes it."""
    added: tuple[str, ...]
    """Parameters the try adds for itself (only ``console=ttyS0``, when absent)."""
    image: str
    """``docker_image=`` of the command line: what the hook resolves."""

    @property
    def boot_cmdline(self) -> str:
        """The command line the VM gets: the entry's, plus ``added``."""
        return " ".join([self.cmdline, *self.added])


def choose(settings: Settings, inventory: Inventory, which: str | None) -> Target:
    """The generation and command line of the entry the try boots.

    Args:
        settings: the partition's saved config.
        inventory: its generations (``wizard.boot.generations.load``).
        which: None (the default entry), ``previous``, or a generation number.

    Raises:
        TrialError: no generation was built, or none of the entries boots the one asked for.

    """
    newest, previous = inventory.newest, inventory.previous
    if newest is None:
        raise TrialError(f"no generation built yet on LABEL={settings.label}",
                         "run `dockerboot-wizard apply` (or `update`) first")
    wanted: Generation | None
    if which is None:
        wanted = newest
    elif which == "previous":
        wanted = previous
        if wanted is None:
            raise TrialError("there is no previous generation (only one was built)",
                             "try the default one: leave out --generation")
    else:
        if not which.isdigit():
            raise TrialError(f"invalid generation {which!r}", "give a number or `previous`")
        wanted = inventory.get(int(which))
        if wanted is None:
            have = ", ".join(str(g.number) for g in inventory.generations)
            raise TrialError(f"generation {which} does not exist (there are: {have})",
                             "`dockerboot-wizard status --label LABEL` lists them")
    if wanted is newest:
        entry, cmdline = "default", bootloader.default_cmdline(settings, newest)
    elif wanted is previous and wanted.image_id is not None:
        entry = "previous"
        cmdline = bootloader.generation_cmdline(settings, wanted.image_id, wanted.number)
    else:
        raise TrialError(f"no boot entry boots generation {wanted.number}: only the newest "
                         f"({newest.number}) and the previous one have entries",
                         "try one of those, or roll back first")
    boot = settings.boot_dir.strip("/")
    image = next(p.partition("=")[2] for p in cmdline.split() if p.startswith("docker_image="))
    return Target(generation=wanted, entry=entry, kernel=f"{boot}/{wanted.loader}",
                  initrd=f"{boot}/{wanted.initrd_path}", cmdline=cmdline,
                  added=() if SERIAL_CONSOLE in cmdline.split() else (SERIAL_CONSOLE,),
                  image=image)


@dataclass(frozen=True)
class Machine:
    """The VM's size and accelerator, chosen from the host's."""

    memory_mib: int
    cpus: int
    accel: str
    why: str
    """One line: why this accelerator (``/dev/kvm`` works, or why not)."""

    def line(self) -> str:
        """The one line the try prints about its VM."""
        return f"VM: {self.memory_mib} MiB, {self.cpus} CPU(s), {self.accel.upper()} ({self.why})"


def kvm_usable(device: str = "/dev/kvm") -> tuple[bool, str]:
    """Whether QEMU can use KVM here: ``device`` opens and creates a VM; and why not."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, f"{device}: {e.strerror}"
    try:
        if fcntl.ioctl(fd, _KVM_GET_API_VERSION) != 12:
            return False, f"{device}: unknown KVM API version"
        vm = fcntl.ioctl(fd, _KVM_CREATE_VM, 0)
        os.close(vm)
    except OSError as e:
        return False, f"{device} cannot create a VM: {e.strerror}"
    finally:
        os.close(fd)
    return True, f"{device} works"


def machine(total_mib: int, available_mib: int, host_cpus: int, accel: str = "auto",
            kvm: tuple[bool, str] | None = None) -> Machine:
    """The VM for a host with this memory and these CPUs (an eighth of the RAM, half the CPUs).

    Raises:
        TrialError: less memory available than the smallest VM needs, or KVM asked
            for and not usable.

    """
    if accel not in ACCELS:
        raise TrialError(f"unknown accelerator {accel!r}", f"give one of {', '.join(ACCELS)}")
    memory = max(MIN_MEMORY_MIB, min(MAX_MEMORY_MIB, total_mib // 8))
    if available_mib < memory + 256:
        raise TrialError(f"not enough memory for the VM: {available_mib} MiB available, "
                         f"{memory + 256} MiB needed", "close programs or try on a bigger host")
    cpus = max(1, min(4, host_cpus // 2))
    ok, why = kvm if kvm is not None else (
        kvm_usable() if accel != "tcg" else (False, "asked for"))
    if accel == "kvm" and not ok:
        raise TrialError(f"KVM is not usable: {why}", "leave out --accel kvm (TCG is slower)")
    if accel == "tcg" or not ok:
        return Machine(memory, cpus, "tcg", f"no KVM: {why}; a boot takes minutes"
                       if accel != "tcg" else "asked for")
    return Machine(memory, cpus, "kvm", why)


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    """``MemTotal`` and ``MemAvailable`` in MiB."""
    values = {}
    for line in meminfo.read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.split():
            values[key] = int(rest.split()[0]) // 1024
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))


def tools_missing(ovmf: tuple[Path, ...]) -> TrialError | None:
    """The error for a host without QEMU, OVMF or what the scratch disk needs; None: all there."""
    if shutil.which("qemu-system-x86_64") is None:
        return TrialError("qemu-system-x86_64 is not installed",
                          "install the Debian package qemu-system-x86 (`apt-get install "
                          "qemu-system-x86`)")
    missing = [str(p) for p in ovmf if not p.is_file()]
    if missing:
        return TrialError(f"the OVMF firmware is missing ({', '.join(missing)})",
                          "install the Debian package ovmf (`apt-get install ovmf`)")
    for tool, package in (("mkfs.btrfs", "btrfs-progs"), ("btrfs", "btrfs-progs"),
                          ("losetup", "mount")):
        if shutil.which(tool) is None:
            return TrialError(f"{tool} is not installed",
                              f"install the Debian package {package}")
    return None
