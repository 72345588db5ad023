"""A disposable machine to try the wizard on: ``dockerboot-wizard sandbox``.

A sparse GPT disk image on a loop device (partition 1: FAT ESP, partition
2: btrfs labelled uniquely, with a ``docker`` subvolume), a private dockerd
with the classic btrfs driver on that subvolume, and a small bootable sample
image built from a debootstrapped Debian rootfs (cached in
``/var/cache/dockerboot-wizard``; Docker Hub is never contacted).  rEFInd is
laid out in a directory standing for the ESP, which is copied into the disk
before a QEMU boot.  Leaving the ``sandbox()`` block removes all of it.

The e2e tests, the demo and the benchmarks use the same functions through
``tests/lab/scenario.py``.  The pieces live beside this module: ``parts``
(loop disks, udev, mounts, a private dockerd), ``qemu`` (UEFI boots through
rEFInd), ``console`` (a booted disk's serial console through pexpect) and
``cli`` (the ``sandbox`` subcommand).  None of it is a boot step, and no
boot step imports it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from wizard.common.commands import run
from wizard.common.errors import SandboxError
from wizard.common.resources import asset
from wizard.disk.partitions import mounted
from wizard.sandbox import qemu
from wizard.sandbox.console import Console, booted
from wizard.sandbox.parts import attach_disk, loop_disk, rootfs_tarball
from wizard.settings.config import Settings
from wizard.store.private_daemon import Dockerd, dockerd

SAMPLE_IMAGE = "dockerboot/sample:latest"
"""Tag of the sample image the sandbox builds."""
SAMPLE_KERNEL_OPTIONS = "console=ttyS0"
"""Kernel options of the demo: the image's own init, its console (and login) on the serial line."""
TEST_INIT_KERNEL_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10"
"""The fast test init instead: it prints ``DBW-FACT`` lines and powers off (``qemu.facts``)."""
SYSTEMD_DRACUT_CONF = 'add_dracutmodules+=" systemd "\n'
GENERATORS = ("initramfs-tools", "dracut")


@dataclass
class Machine:
    """A disposable disk image plus the directory that stands for its ESP."""

    workdir: Path
    label: str
    """Label of the btrfs partition (unique per machine)."""
    esp: Path

    @property
    def image(self) -> Path:
        """The raw disk image file."""
        return self.workdir / "disk.img"

    @property
    def refind_conf(self) -> Path:
        """The ESP's refind.conf (in the directory copy of the ESP)."""
        return self.esp / "EFI" / "BOOT" / "refind.conf"


def new_machine(workdir: Path, size: str = "8G", *, refind: bool = True,
                esp_size: str = "64M") -> Machine:
    """Create the GPT disk (FAT ESP + btrfs with a ``docker`` subvolume) and a rEFInd ESP.

    ``refind=False``: the ESP is empty, as on a new PC (apply puts GRUB there).
    ``esp_size``: the FAT ESP's size (systemd-boot keeps kernel copies there).

    The disk is detached again afterwards; ``docker_on`` attaches it.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    with loop_disk(workdir, gpt=True, size=size, esp_size=esp_size) as disk, \
            mounted(disk.btrfs_dev, workdir / "mnt") as top:
        run("btrfs", "subvolume", "create", top / "docker")
    machine = Machine(workdir=workdir, label=disk.label, esp=workdir / "esp")
    if refind:
        qemu.make_esp(machine.esp)
    else:
        machine.esp.mkdir()
    return machine


@contextlib.contextmanager
def docker_on(machine: Machine) -> Iterator[Dockerd]:
    """Attach the disk, mount its top level and run a private dockerd on ``docker/``."""
    with attach_disk(machine.image, label=machine.label, gpt=True) as disk, \
            mounted(disk.btrfs_dev, machine.workdir / "mnt") as top, \
            dockerd(top / "docker") as daemon:
        yield daemon


def build_image(daemon: Dockerd, generator: str, tag: str, marker: str, *,
                systemd: bool = False, backports: bool = False,
                secure_boot: bool = False) -> str:
    """Build a bootable sample image (base rootfs + the sample init + a marker file).

    The base is the cached debootstrapped rootfs imported once per daemon;
    the build only COPYs files, so it needs no network.  Every flavour has
    the test init (``init=/usr/local/sbin/dbw-test-init``).

    Args:
        daemon: the sandbox's dockerd.
        generator: ``initramfs-tools`` or ``dracut`` (dracut with systemd inside).
        tag: name:tag of the result.
        marker: text of ``/etc/dbw-image-marker`` (the boot prints it).
        systemd: the base with systemd, dbus, sudo and docker.io, whose own
            init boots to a login prompt on the serial console.
        backports: the base with only bookworm-backports' kernel (6.12) instead
            of bookworm's (6.1): a real kernel update of the same Dockerfile.
        secure_boot: the systemd base plus Debian's signed shim and GRUB
            (``shim-signed``, ``grub-efi-amd64-signed``).

    Returns:
        ``tag``.

    """
    import docker  # the SDK is heavy; only building needs it

    client = docker.DockerClient(base_url=daemon.host, timeout=600)
    try:
        variant = (f"{generator}-systemd-sb" if secure_boot else f"{generator}-systemd"
                   if systemd else f"{generator}-bpo" if backports else generator)
        base = f"dbw-base/{variant}:latest"
        if not client.images.list(name=base):
            tarball = rootfs_tarball(variant)
            daemon.docker("import", "--change", 'CMD ["/bin/sh"]', tarball, base, timeout=900)
        ctx = daemon.data_root.parent / f".ctx-{generator}"
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir()
        shutil.copy(asset("sandbox/test-init.sh"), ctx / "dbw-test-init")
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
    finally:
        client.close()
    return tag


@dataclass
class Sandbox:
    """A running sandbox: what the wizard needs to be pointed at it."""

    machine: Machine
    daemon: Dockerd
    image: str
    """The sample image's name:tag."""
    generator: str
    systemd: bool = True
    """Whether the sample image has systemd (and boots to a login prompt)."""
    _stack: contextlib.ExitStack = field(repr=False, default_factory=contextlib.ExitStack)

    @property
    def label(self) -> str:
        """Label of the sandbox's btrfs partition (``root=LABEL=…``)."""
        return self.machine.label

    @property
    def docker_host(self) -> str:
        """``DOCKER_HOST`` of the sandbox's dockerd."""
        return self.daemon.host

    @property
    def esp(self) -> Path:
        """Directory standing for the ESP, with rEFInd and its refind.conf."""
        return self.machine.esp

    def env(self) -> dict[str, str]:
        """Variables to export so docker clients (and the wizard) use the sandbox."""
        return {"DOCKER_HOST": self.docker_host}

    def settings(self) -> Settings:
        """Settings for the wizard: this partition, the sample image, the ESP directory.

        The kernel options boot the image's own init when it has systemd, else the test init.
        """
        options = SAMPLE_KERNEL_OPTIONS if self.systemd else TEST_INIT_KERNEL_OPTIONS
        return Settings(label=self.label, image=self.image, esp=str(self.esp),
                        kernel_options=options)

    def stop(self) -> None:
        """Stop dockerd, unmount and detach the disk (idempotent); the files stay."""
        self._stack.close()

    def boot(self, *, echo: TextIO | None = None, timeout: float = 900) -> str:
        """Stop the daemon, copy the ESP into the disk and boot it in QEMU.

        Args:
            echo: stream that shows the console live.
            timeout: seconds before a hanging guest is killed.

        Returns:
            The serial console log (``qemu.facts`` reads what the init printed).

        """
        self.stop()
        qemu.sync_esp(self.esp, self.machine.image)
        return qemu.boot(self.machine.image, self.machine.workdir / "boot.serial.log",
                         timeout=timeout, echo=echo)

    @contextlib.contextmanager
    def console(self, *, echo: TextIO | None = None,
                timeout: float = 900) -> Iterator[Console]:
        """Stop the daemon, copy the ESP into the disk, boot it and yield its serial console.

        Args:
            echo: stream that shows the console live (not while ``interact`` runs).
            timeout: seconds all waits on the console may take together.

        """
        self.stop()
        qemu.sync_esp(self.esp, self.machine.image)
        with booted(self.machine.image, self.machine.workdir / "console.serial.log",
                    timeout=timeout, echo=echo) as console:
            yield console


@contextlib.contextmanager
def sandbox(*, generator: str = "initramfs-tools", image: str = SAMPLE_IMAGE,
            workdir: Path | None = None, keep: bool = False, size: str = "8G",
            systemd: bool = True,
            log: Callable[[str], None] | None = None) -> Iterator[Sandbox]:
    """Create the sandbox, start its dockerd and build the sample image.

    Args:
        generator: initramfs generator inside the sample image.
        image: name:tag for the sample image.
        workdir: where the disk image and the ESP go (default: a new directory
            in ``/var/tmp``, which stays a real filesystem where ``/tmp`` may be RAM).
        keep: leave the disk image and ESP after the block (dockerd stops anyway).
        size: size of the sparse disk image.
        systemd: the sample image with systemd, booting to a login prompt (False:
            the smaller image, for boots with the test init only).
        log: called with one line per stage (the first run debootstraps: minutes).

    Yields:
        The running ``Sandbox``.

    Raises:
        SandboxError: not root, a tool is missing, or a stage failed.

    """
    say = log or (lambda _line: None)
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (loop devices, mounts, dockerd)",
                           "run it with sudo: `sudo dockerboot-wizard sandbox`")
    if generator not in GENERATORS:
        raise SandboxError(f"unknown generator {generator!r}",
                           f"use one of: {', '.join(GENERATORS)}")
    missing = tools_missing()
    if missing:
        raise SandboxError(f"the sandbox needs {', '.join(missing)}, not installed",
                           "run `sudo make setup` (installs everything the sandbox uses)")
    made = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="dockerboot-sandbox-", dir="/var/tmp"))
    try:
        say(f"creating the sandbox disk in {workdir} (GPT: ESP + btrfs)")
        machine = new_machine(workdir, size=size)
        with contextlib.ExitStack() as stack:
            say(f"starting a private dockerd on LABEL={machine.label}")
            daemon = stack.enter_context(docker_on(machine))
            say(f"building the sample image {image} (first run: debootstrap, minutes)")
            build_image(daemon, generator, image, marker=f"sandbox sample image ({generator})",
                        systemd=systemd)
            box = Sandbox(machine=machine, daemon=daemon, image=image, generator=generator,
                          systemd=systemd)
            box._stack = stack.pop_all()
            with box._stack:
                yield box
    finally:
        if os.path.ismount(workdir / "mnt"):
            # Never delete through a mount that failed to go away: leave it all.
            say(f"{workdir}/mnt is still mounted; left {workdir} in place")
        elif keep:
            say(f"kept the sandbox disk: {workdir}")
        elif made:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for name in ("disk.img", "esp", "mnt"):
                path = workdir / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def tools_missing() -> list[str]:
    """Programs the sandbox needs that are not on ``PATH`` (for a clear early error)."""
    tools = ("losetup", "partx", "sgdisk", "mkfs.vfat", "mkfs.btrfs", "btrfs", "udevadm",
             "dockerd", "docker", "debootstrap", "mcopy", "qemu-system-x86_64")
    return [t for t in tools if shutil.which(t) is None]
