"""The whole user story on a disposable disk: shared by the e2e tests, the demo and the
benchmark.

A GPT disk image (ESP + btrfs) holds docker's data-root; a private dockerd
builds a debootstrapped Debian image with a test init; the *installed*
``dockerboot-wizard apply`` configures the disk; QEMU boots it through rEFInd.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.lab import lab, qemu

HERE = Path(__file__).parent
SYSTEMD_DRACUT_CONF = 'add_dracutmodules+=" systemd "\n'


@dataclass
class Machine:
    """A disposable disk image plus the ESP directory that is copied into it."""

    workdir: Path
    label: str
    esp: Path

    @property
    def image(self) -> Path:
        """The raw disk image file."""
        return self.workdir / "disk.img"

    @property
    def refind_conf(self) -> Path:
        """The ESP's refind.conf (in the directory copy of the ESP)."""
        return self.esp / "EFI" / "BOOT" / "refind.conf"


def new_machine(workdir: Path, size: str = "8G") -> Machine:
    """Create the GPT disk (FAT ESP + btrfs with a ``docker`` subvolume) and a rEFInd ESP."""
    workdir.mkdir(parents=True, exist_ok=True)
    with lab.loop_disk(workdir, gpt=True, size=size) as disk, \
            lab.mounted(disk.btrfs_dev, workdir / "mnt") as top:
        lab.run("btrfs", "subvolume", "create", top / "docker")
    machine = Machine(workdir=workdir, label=disk.label, esp=workdir / "esp")
    qemu.make_esp(machine.esp)
    return machine


@contextlib.contextmanager
def docker_on(machine: Machine) -> Iterator[lab.Dockerd]:
    """Attach the disk, mount its top level and run a private dockerd on ``docker/``."""
    with lab.attach_disk(machine.image, label=machine.label, gpt=True) as disk, \
            lab.mounted(disk.btrfs_dev, machine.workdir / "mnt") as top, \
            lab.dockerd(top / "docker") as daemon:
        yield daemon


def build_image(daemon: lab.Dockerd, generator: str, tag: str, marker: str) -> str:
    """Build a bootable test image (base rootfs + test init + marker) tagged ``tag``."""
    client = docker.DockerClient(base_url=daemon.host, timeout=600)
    base = f"dbw-base/{generator}:latest"
    if not client.images.list(name=base):
        tarball = lab.rootfs_tarball(generator)
        daemon.docker("import", "--change", 'CMD ["/bin/sh"]', tarball, base, timeout=900)
    ctx = daemon.data_root.parent / f".ctx-{generator}"
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir()
    shutil.copy(HERE / "test-init.sh", ctx / "dbw-test-init")
    (ctx / "dbw-image-marker").write_text(marker + "\n")
    lines = [f"FROM {base}",
             "COPY dbw-test-init /usr/local/sbin/dbw-test-init",
             "COPY dbw-image-marker /etc/dbw-image-marker"]
    if generator == "dracut":
        # The image's own dracut config asks for systemd in the initramfs.
        (ctx / "50-systemd.conf").write_text(SYSTEMD_DRACUT_CONF)
        lines.append("COPY 50-systemd.conf /etc/dracut.conf.d/50-systemd.conf")
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    client.images.build(path=str(ctx), tag=tag, network_mode="none", rm=True)
    shutil.rmtree(ctx)
    client.close()
    return tag


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
