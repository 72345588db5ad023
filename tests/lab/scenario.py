"""The whole user story on a disposable disk: shared by the e2e tests and the benchmarks.

The disk, its private dockerd and the sample image come from the product's
``wizard.sandbox`` (what ``dockerboot-wizard sandbox`` runs); the *installed*
``dockerboot-wizard apply`` configures the disk; QEMU boots it through rEFInd.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.lab import lab, qemu
from wizard.sandbox import SYSTEMD_DRACUT_CONF, Machine, build_image, docker_on, new_machine

__all__ = ["SYSTEMD_DRACUT_CONF", "Machine", "boot", "build_image", "docker_on", "new_machine",
           "run_apply", "wizard_command"]


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


def boot(machine: Machine, name: str, timeout: float = 900) -> tuple[str, dict[str, str]]:
    """Copy the ESP into the disk and boot it; return the serial log and its facts."""
    qemu.sync_esp(machine.esp, machine.image)
    serial = qemu.boot(machine.image, machine.workdir / f"{name}.serial.log", timeout=timeout)
    return serial, qemu.facts(serial)
