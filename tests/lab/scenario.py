"""The whole user story on a disposable disk: shared by the e2e tests and the benchmarks.

The disk, its private dockerd and the sample image come from the product's
``wizard.sandbox`` (what ``dockerboot-wizard sandbox`` runs); the *installed*
``dockerboot-wizard apply`` configures the disk; QEMU boots it through rEFInd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.lab import lab, qemu
from wizard.sandbox import (
    SYSTEMD_DRACUT_CONF,
    Machine,
    build_image,
    console,
    docker_on,
    new_machine,
)
from wizard.toplayer import selfupdate

__all__ = ["DOWN", "ENTER", "SYSTEMD_DRACUT_CONF", "Machine", "boot", "boot_picking",
           "build_image", "docker_on", "new_machine", "nvram", "run_apply", "self_update",
           "wizard_command"]


def wizard_command() -> str:
    """The installed ``dockerboot-wizard`` executable, as a user would run it."""
    exe = shutil.which("dockerboot-wizard")
    assert exe, "dockerboot-wizard is not installed (pip install -e .)"
    return exe


def run_apply(daemon: lab.Dockerd, machine: Machine, *args: str,
              password: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``dockerboot-wizard apply`` against ``machine``'s disk."""
    cmd = [wizard_command(), "apply", "--label", machine.label, "--esp", str(machine.esp),
           *args]
    if password is not None:
        pw = machine.workdir / "password"
        pw.write_text(password + "\n")
        os.chmod(pw, 0o600)
        cmd += ["--password-file", str(pw)]
    return subprocess.run(cmd, env=daemon.env(), capture_output=True, text=True,
                          timeout=1800)


def nvram(machine: Machine) -> Path:
    """The machine's OVMF variable store, kept between its boots as a real machine's NVRAM."""
    return machine.workdir / "ovmf-nvram.fd"


def boot(machine: Machine, name: str, timeout: float = 900) -> tuple[str, dict[str, str]]:
    """Copy the ESP into the disk and boot it with no key pressed; the serial log and facts."""
    qemu.sync_esp(machine.esp, machine.image)
    serial = qemu.boot(machine.image, machine.workdir / f"{name}.serial.log", timeout=timeout,
                       nvram=nvram(machine))
    return serial, qemu.facts(serial)


DOWN, ENTER = "\x1b[B", "\r"
"""Keys as a VT100 terminal sends them: OVMF's serial console feeds them to rEFInd."""


def boot_picking(machine: Machine, name: str, shown: str, keys: str,
                 timeout: float = 900) -> tuple[str, dict[str, str]]:
    """Boot, and once rEFInd's menu shows ``shown`` type ``keys`` on the serial console.

    As a user picks an entry by hand (rEFInd remembers it in NVRAM, ``nvram``);
    returns the serial log and its facts like ``boot``.
    """
    qemu.sync_esp(machine.esp, machine.image)
    log = machine.workdir / f"{name}.serial.log"
    with console.booted(machine.image, log, timeout=timeout, nvram=nvram(machine)) as con:
        con.expect(shown, 600, f"rEFInd's menu showing {shown!r}")
        con.child.send(keys[:-1])
        time.sleep(1)
        con.child.send(keys[-1])
        con.wait_exit(timeout)
    serial = log.read_text(errors="replace")
    return serial, qemu.facts(serial)


def self_update(daemon: lab.Dockerd, top: Path, refind_conf: Path, *args: str,
                shell: str = "sh", mount: bool = False, cmdline: Path | None = None,
                esp: Path | None = None) -> subprocess.CompletedProcess:
    """Run the booted system's ``dockerboot-update`` from the top layer apply wrote.

    The very files the booted system gets, run by ``shell`` on this host with
    its test hooks: the partition mounted at ``top`` (unless ``mount``: then
    it mounts it by label itself), ``refind_conf`` (the lab's ESP is a
    directory), ``cmdline`` for ``/proc/cmdline``, ``esp`` the ESP directory
    where GRUB's or systemd-boot's files are, and the lab's dockerd.
    """
    layer = top / "boot_docker/toplayer"
    env = {**daemon.env(), "DOCKERBOOT_UPDATE_CONF": str(layer / selfupdate.CONF),
           "DOCKERBOOT_REFIND_CONF": str(refind_conf)}
    if cmdline is not None:
        env["DOCKERBOOT_CMDLINE"] = str(cmdline)
    if esp is not None:
        env["DOCKERBOOT_ESP"] = str(esp)
    if not mount:
        env["DOCKERBOOT_TOP"] = str(top)
    return subprocess.run([*shell.split(), str(layer / selfupdate.COMMAND), *args], env=env,
                          capture_output=True, text=True, timeout=1800)
