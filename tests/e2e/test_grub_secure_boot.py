"""Secure Boot on, the image's own signed shim + GRUB, a new PC's firmware: real boots.

The sample image with systemd plus Debian's ``shim-signed`` and
``grub-efi-amd64-signed`` (nothing else added); a disk whose ESP is empty;
``apply --bootloader grub``.  The firmware is OVMF as a PC ships it
(``OVMF_CODE_4M.ms.fd``, a copy of ``OVMF_VARS_4M.ms.fd``: Secure Boot
enforced, Microsoft's keys, no boot entry), so it starts the removable path
apply wrote, where nothing was.

- Boot 1: shim (Microsoft-signed) → GRUB (Debian-signed) → Debian's signed
  kernel → the hook → the image's own systemd; as the wizard's user on the
  serial console: ``mokutil --sb-state`` says enabled, the kernel is locked
  down (``[integrity]``), generation 1 booted, no failed unit, the good mark.
  Afterwards GRUB's count on the ESP went down by one (``save_env`` on FAT
  under Secure Boot) and the booted system's good mark for generation 1 is
  on the partition, where GRUB reads it.
- Negative control: generation 2 (a new image) whose kernel lost its
  signature (``sbattach --remove``): GRUB refuses it ("bad shim signature")
  and, with no key pressed, boots the previous entry: generation 1 with the
  first image, pinned by ID.  GRUB counted the try in its grubenv on the FAT
  ESP (``save_env`` under Secure Boot).
- Boot counting, and the booted system's own update: ``rollback`` makes
  generation 3 (generation 1's signed pair, the first image pinned by ID);
  the tag moves to a third image and ``dockerboot-update`` from the top layer
  goes back to it: generation 4, a copy of the newest pair, named in the
  grub.cfg it writes (the wizard's own ``update`` then finds every byte on
  the ESP in place).  Generation 4's initramfs is broken, so its signed
  kernel panics before the hook: switched off and on after each panic, GRUB
  counts the tries, and after ``grub.TRIES`` it boots generation 3 with the
  first image by itself, no key pressed.
- The ESP holds only what apply wrote; an update with nothing to do changes
  none of its bytes; ``status`` reads GRUB's count and the good mark back.
- A dracut image (systemd in the initramfs) with the same chain, chosen with
  no ``--bootloader`` (an empty ESP, an image with the signed pair), boots
  with Secure Boot on to its own systemd: ``tests/e2e/test_install_boot.py``,
  on a disk ``install`` made from nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.lab import lab, qemu, scenario
from wizard.loaders import grub
from wizard.sandbox.console import Console, booted

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

USER, PASSWORD = "sam", "sam-pw-7"
IMAGE = "dbw-sb/debian:desk"
OWN = {"shimx64.efi", "grubx64.efi", "mmx64.efi", "grub.cfg", "grubenv", "owned"}
REMOVABLE = {"BOOTX64.EFI", "grubx64.efi", "mmx64.efi", "grub.cfg"}


def ok(console: Console, command: str, timeout: float = 120) -> str:
    status, out = console.run(command, timeout=timeout)
    assert status == 0, f"{command}: exit {status}: {out}"
    return out


def esp_tree(esp: Path) -> dict[str, str]:
    """Every file on the ESP directory and the SHA-256 of its bytes."""
    return {str(p.relative_to(esp)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(esp.rglob("*")) if p.is_file()}


def fat_file(machine: scenario.Machine, rel: str) -> bytes:
    """A file of the disk's FAT ESP as the boot left it (mtools: no vfat mount here)."""
    out = machine.workdir / "fat-copy"
    lab.run("mcopy", "-o", "-n", "-i", f"{machine.image}@@{qemu.ESP_OFFSET}", f"::/{rel}", out)
    return out.read_bytes()


def new_pc(workdir: Path) -> tuple[scenario.Machine, Path]:
    """A disk whose ESP is empty, as a new PC's, and the wizard user's password file."""
    machine = scenario.new_machine(workdir, refind=False)
    pw = workdir / "pw"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    return machine, pw


def test_secure_boot_through_the_images_grub_and_its_fallback(tmp_path_factory):
    machine, pw = new_pc(tmp_path_factory.mktemp("grub-sb"))
    workdir = machine.workdir
    args = ("--image", IMAGE, "--bootloader", "grub", "--user", USER, "--password-file",
            str(pw), "--admin", USER, "--hostname", "sbbox", "--kernel-options",
            "console=ttyS0", "--yes")
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="sb-v1", systemd=True,
                             secure_boot=True)
        v1 = daemon.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        result = scenario.run_apply(daemon, machine, *args)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        assert "GRUB entries" in result.stdout and "/EFI/BOOT/BOOTX64.EFI: new" in result.stdout
        assert "through the image's GRUB" in result.stdout
    tree = esp_tree(machine.esp)
    assert set(tree) == {f"EFI/dockerboot/{n}" for n in OWN} | {f"EFI/BOOT/{n}"
                                                                 for n in REMOVABLE}
    assert tree["EFI/BOOT/BOOTX64.EFI"] == tree["EFI/dockerboot/shimx64.efi"]
    assert (machine.esp / "EFI/dockerboot/grubx64.efi").read_bytes()[:2] == b"MZ"
    cfg = (machine.esp / "EFI/dockerboot/grub.cfg").read_text()
    assert "/boot_docker/gen/1/vmlinuz" in cfg and "dockerboot.generation=1" in cfg
    qemu.sync_esp(machine.esp, machine.image)

    with booted(machine.image, workdir / "boot1.serial.log", secure_boot=True) as console:
        console.login(USER, PASSWORD, timeout=900)
        assert "SecureBoot enabled" in ok(console, "mokutil --sb-state")
        assert "[integrity]" in ok(console, "cat /sys/kernel/security/lockdown")
        cmdline = ok(console, "cat /proc/cmdline")
        assert "dockerboot.generation=1" in cmdline and f"docker_image={IMAGE}" in cmdline
        assert ok(console, "cat /etc/dbw-image-marker") == "sb-v1"
        state = console.run("systemctl is-system-running --wait", timeout=600)[1]
        failed = ok(console, "systemctl --failed --no-legend --plain")
        assert (state, failed) == ("running", ""), f"{state}: {failed}"
        assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "success"
        console.poweroff(PASSWORD)
    serial = (workdir / "boot1.serial.log").read_text(errors="replace")
    assert "EFI stub: UEFI Secure Boot is enabled." in serial, serial[-3000:]
    # One generation: nothing to fall back to, so GRUB counts nothing.
    assert read_env(machine) == {"dockerboot_trying": "1", "dockerboot_tries": str(grub.TRIES)}

    with scenario.docker_on(machine) as daemon:
        top = machine.workdir / "mnt"
        good = (top / "boot_docker/state" / grub.GOOD_FILE).read_bytes()
        assert grub.read_envblock(good) == {"dockerboot_good": "1"}
        # Up to date: an update changes no byte on the ESP (its repair finds nothing).
        before = esp_tree(machine.esp)
        again = wizard(daemon, "update", "--label", machine.label, "--yes")
        assert "up to date" in again.stdout, again.stdout
        assert esp_tree(machine.esp) == before
        # Generation 2: a new image, its kernel's signature removed.
        v2 = new_generation(daemon, machine, "sb-v2")
        lab.run("sbattach", "--remove", kernel(top, 2))
    cfg = (machine.esp / "EFI/dockerboot/grub.cfg").read_text()
    assert "/boot_docker/gen/2/vmlinuz" in cfg and f"docker_image={v1}" in cfg
    qemu.sync_esp(machine.esp, machine.image)

    with booted(machine.image, workdir / "boot2.serial.log", secure_boot=True) as console:
        console.login(USER, PASSWORD, timeout=900)
        cmdline = ok(console, "cat /proc/cmdline")
        assert "dockerboot.generation=1" in cmdline and f"docker_image={v1}" in cmdline
        assert ok(console, "cat /etc/dbw-image-marker") == "sb-v1"
        assert "SecureBoot enabled" in ok(console, "mokutil --sb-state")
        console.poweroff(PASSWORD)
    serial = (workdir / "boot2.serial.log").read_text(errors="replace")
    assert "bad shim signature" in serial, serial[-4000:]
    # GRUB counted the try on the ESP (save_env on FAT, under Secure Boot).
    assert read_env(machine) == {"dockerboot_trying": "2",
                                 "dockerboot_tries": str(grub.TRIES - 1)}

    # Generation 4 (a third image) whose initramfs is broken: its signed kernel panics
    # before the hook.  First a rollback (generation 3: generation 1's signed pair, the
    # first image pinned by ID), then the tag moves and the booted system's own
    # dockerboot-update goes back to it: a copy of the newest pair as generation 4,
    # whose entries it writes into GRUB's grub.cfg (the previous one: generation 3).
    with scenario.docker_on(machine) as daemon:
        top = machine.workdir / "mnt"
        rollback = wizard(daemon, "rollback", "--label", machine.label, "--yes")
        assert "new generation 3" in rollback.stdout, rollback.stdout
        scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="sb-v3", systemd=True,
                             secure_boot=True)
        v3 = daemon.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        update = self_update(daemon, machine, top)
        assert update.returncode == 0, update.stdout + update.stderr
        assert "generation 4: boot_docker/gen/4" in update.stdout, update.stdout
        assert "EFI/dockerboot/grub.cfg: the entries name generation 4" in update.stdout
        cfg = (machine.esp / "EFI/dockerboot/grub.cfg").read_text()
        assert "/boot_docker/gen/4/vmlinuz" in cfg and f"docker_image={IMAGE}" in cfg
        assert "/boot_docker/gen/3/vmlinuz" in cfg and f"docker_image={v1}" in cfg
        assert f"is a rollback to @{v1[7:19]}: back to {IMAGE} @{v3[7:19]}" in update.stdout
        assert "gen/2/" not in cfg and v2 not in cfg
        # What the wizard itself writes: its update finds every byte on the ESP in place,
        # and so does the command run again (no probe, nothing written).
        before = esp_tree(machine.esp)
        again = self_update(daemon, machine, top)
        assert again.returncode == 0 and "up to date" in again.stdout, again.stdout + again.stderr
        assert "writing them" not in again.stdout and esp_tree(machine.esp) == before
        again = wizard(daemon, "update", "--label", machine.label, "--yes")
        assert "up to date" in again.stdout, again.stdout
        assert esp_tree(machine.esp) == before
        initrd = next((top / "boot_docker/gen/4").glob("initrd*"))
        initrd.write_bytes(b"\0" * 4096)
    qemu.sync_esp(machine.esp, machine.image)
    for n in range(grub.TRIES):  # the machine is switched off and on after each panic
        with booted(machine.image, workdir / f"panic{n}.serial.log",
                    secure_boot=True) as console:
            console.expect("Kernel panic", 600, "the kernel of generation 4 panicking")
    with booted(machine.image, workdir / "boot3.serial.log", secure_boot=True) as console:
        console.login(USER, PASSWORD, timeout=900)
        cmdline = ok(console, "cat /proc/cmdline")
        assert "dockerboot.generation=3" in cmdline and f"docker_image={v1}" in cmdline
        assert ok(console, "cat /etc/dbw-image-marker") == "sb-v1"
        # Up: its good mark names generation 3 for GRUB (status reads it below).
        assert console.run("systemctl is-system-running --wait", timeout=600)[1] == "running"
        assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "success"
        console.poweroff(PASSWORD)
    serial = (workdir / "boot3.serial.log").read_text(errors="replace")
    assert f"generation 4 did not come up in {grub.TRIES} tries" in serial, serial[-4000:]
    assert read_env(machine) == {"dockerboot_trying": "4", "dockerboot_tries": "0"}
    # status reads the same off the disk (the ESP's count copied back into the directory).
    lab.run("mcopy", "-o", "-n", "-i", f"{machine.image}@@{qemu.ESP_OFFSET}",
            "::/EFI/dockerboot/grubenv", machine.esp / "EFI/dockerboot/grubenv")
    with scenario.docker_on(machine) as daemon:
        out = json.loads(wizard(daemon, "status", "--label", machine.label, "--json").stdout)
        assert out["entries"] == {"default": 4, "previous": 3}
        assert out["assessment"]["bootloader_counts"] is True
        assert out["assessment"]["grub"] == {"esp": str(machine.esp), "trying": 4,
                                             "tries_left": 0, "good_generation": 3}
        text = wizard(daemon, "status", "--label", machine.label).stdout
        assert "GRUB: generation 4, 0 tries left; marked good: generation 3" in text
        # The booted system's own status reads the same off the ESP and the partition.
        top = machine.workdir / "mnt"
        mine = self_update(daemon, machine, top, "status", "--json")
        assert mine.returncode == 0, mine.stderr
        doc = json.loads(mine.stdout)
        assert (doc["entries"], doc["assessment"]) == (out["entries"], out["assessment"])
        text = self_update(daemon, machine, top, "status").stdout
        assert "GRUB: generation 4, 0 tries left; marked good: generation 3" in text


def self_update(daemon: lab.Dockerd, machine: scenario.Machine, top: Path,
                *args: str) -> subprocess.CompletedProcess:
    """The booted system's own ``dockerboot-update``, by hand, from the top layer apply wrote."""
    return scenario.self_update(daemon, top, machine.esp / "none", *args, esp=machine.esp)


def wizard(daemon: lab.Dockerd, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([scenario.wizard_command(), *args], env=daemon.env(),
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result


def kernel(top: Path, number: int) -> Path:
    return next((top / f"boot_docker/gen/{number}").glob("vmlinuz*"))


def new_generation(daemon: lab.Dockerd, machine: scenario.Machine, marker: str) -> str:
    """The image rebuilt with ``marker`` and applied: a new generation (same kernel: a copy)."""
    scenario.build_image(daemon, "initramfs-tools", IMAGE, marker=marker, systemd=True,
                         secure_boot=True)
    result = scenario.run_apply(daemon, machine, "--yes")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return daemon.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()


def read_env(machine: scenario.Machine) -> dict[str, str]:
    """GRUB's count as the last boot left it on the disk's ESP."""
    return grub.read_envblock(fat_file(machine, "EFI/dockerboot/grubenv"))


HOST_GRUB_CFG = """\
# What grub-mkconfig generates on the system that was installed first (abridged)
set default="0"
set timeout=5
menuentry 'Debian GNU/Linux' --class debian --id gnulinux-simple-host {
\tsearch --no-floppy --fs-uuid --set=root {uuid}
\tlinux /@host/boot/vmlinuz-6.1.0-host root=UUID={uuid} ro rootflags=subvol=@host quiet
}
### BEGIN /etc/grub.d/41_custom ###
if [ -f  ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z "${config_directory}" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
### END /etc/grub.d/41_custom ###
"""
USER_CUSTOM_CFG = "# my own entries\nmenuentry 'Firmware setup' {\n\tfwsetup\n}\n"


def install_host_debian(daemon: lab.Dockerd, machine: scenario.Machine, top: Path) -> None:
    """The machine as a Debian installed on the same btrfs (subvolume ``@host``) leaves it.

    Its ``grub-install`` put the signed shim + GRUB in ``EFI/debian`` and the
    removable path, and a stub ``EFI/debian/grub.cfg`` that reads
    ``/@host/boot/grub/grub.cfg``, which ``grub-mkconfig`` generated; the user
    has a ``custom.cfg`` of their own.  The signed files are the image's
    (the same Debian packages).
    """
    uuid = lab.run("findmnt", "-n", "-o", "UUID", "--mountpoint", top).stdout.strip()
    lab.run("btrfs", "subvolume", "create", top / "@host")
    grubdir = top / "@host/boot/grub"
    grubdir.mkdir(parents=True)
    (grubdir / "grub.cfg").write_text(HOST_GRUB_CFG.replace("{uuid}", uuid))
    (grubdir / "custom.cfg").write_text(USER_CUSTOM_CFG)
    box = daemon.docker("create", IMAGE).stdout.strip()
    signed = {"shimx64.efi": "/usr/lib/shim/shimx64.efi.signed",
              "mmx64.efi": "/usr/lib/shim/mmx64.efi.signed",
              "grubx64.efi": "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"}
    for vendor_dir, shim_name in (("EFI/debian", "shimx64.efi"), ("EFI/BOOT", "BOOTX64.EFI")):
        (machine.esp / vendor_dir).mkdir(parents=True, exist_ok=True)
        for name, src in signed.items():
            dest = machine.esp / vendor_dir / (shim_name if name == "shimx64.efi" else name)
            daemon.docker("cp", "-L", f"{box}:{src}", dest)
    daemon.docker("rm", box)
    (machine.esp / "EFI/debian/grub.cfg").write_text(
        f"search.fs_uuid {uuid} root hd0,gpt2 \nset prefix=($root)'/@host/boot/grub'\n"
        "configfile $prefix/grub.cfg\n")


def test_entries_in_the_grub_its_distribution_set_up(tmp_path_factory):
    # Way (b): a Debian already boots this PC with its signed GRUB (Secure Boot on); the
    # wizard's entries go into that GRUB's custom.cfg and the ESP keeps every byte of its.
    machine, pw = new_pc(tmp_path_factory.mktemp("grub-distro"))
    workdir = machine.workdir
    with scenario.docker_on(machine) as daemon:
        top = workdir / "mnt"
        scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="distro-v1",
                             systemd=True, secure_boot=True)
        v1 = daemon.docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()
        install_host_debian(daemon, machine, top)
        theirs = esp_tree(machine.esp)
        host_cfg = (top / "@host/boot/grub/grub.cfg").read_bytes()
        # Never asked, no terminal: the question is refused in one line, nothing written.
        refused = scenario.run_apply(daemon, machine, "--image", IMAGE, "--user", USER,
                                     "--password-file", str(pw), "--kernel-options",
                                     "console=ttyS0", "--yes")
        assert refused.returncode != 0 and "--default-entry yes" in refused.stderr
        assert esp_tree(machine.esp) == theirs
        result = scenario.run_apply(daemon, machine, "--image", IMAGE, "--user", USER,
                                    "--password-file", str(pw), "--admin", USER,
                                    "--kernel-options", "console=ttyS0", "--default-entry",
                                    "yes", "--yes")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        assert "the wizard's entries go to custom.cfg" in result.stdout, result.stdout[-4000:]
        custom = (top / "@host/boot/grub/custom.cfg").read_text()
        assert custom.startswith(USER_CUSTOM_CFG) and "set default=dockerboot-default" in custom
        assert (top / "@host/boot/grub/grub.cfg").read_bytes() == host_cfg
        # One generation, nothing to count: the ESP is as it was, byte for byte (no
        # second shim or GRUB: Debian's boots the entries).
        assert esp_tree(machine.esp) == theirs
    qemu.sync_esp(machine.esp, machine.image)
    with booted(machine.image, workdir / "boot1.serial.log", secure_boot=True) as console:
        console.login(USER, PASSWORD, timeout=900)
        assert "SecureBoot enabled" in ok(console, "mokutil --sb-state")
        assert "[integrity]" in ok(console, "cat /sys/kernel/security/lockdown")
        assert "dockerboot.generation=1" in ok(console, "cat /proc/cmdline")
        assert ok(console, "cat /etc/dbw-image-marker") == "distro-v1"
        assert console.run("systemctl is-system-running --wait", timeout=600)[1] == "running"
        console.poweroff(PASSWORD)

    # Generation 2 with a broken initramfs: after grub.TRIES panics, Debian's GRUB boots
    # the previous entry by itself (the count on the ESP, found by `search --file`).
    with scenario.docker_on(machine) as daemon:
        top = workdir / "mnt"
        new_generation(daemon, machine, "distro-v2")
        next((top / "boot_docker/gen/2").glob("initrd*")).write_bytes(b"\0" * 4096)
        out = json.loads(wizard(daemon, "status", "--label", machine.label, "--json").stdout)
        assert out["entries"] == {"default": 2, "previous": 1}
        assert out["assessment"]["grub"]["trying"] == 2
        assert out["assessment"]["grub"]["good_generation"] == 1
        # Ours on the ESP: the count only; theirs byte for byte.
        after = esp_tree(machine.esp)
        assert set(after) - set(theirs) == {"EFI/dockerboot/grubenv", "EFI/dockerboot/owned"}
        assert {k: v for k, v in after.items() if k in theirs} == theirs
        assert f"docker_image={v1}" in (top / "@host/boot/grub/custom.cfg").read_text()
    qemu.sync_esp(machine.esp, machine.image)
    for n in range(grub.TRIES):
        with booted(machine.image, workdir / f"panic{n}.serial.log",
                    secure_boot=True) as console:
            console.expect("Kernel panic", 600, "the kernel of generation 2 panicking")
    with booted(machine.image, workdir / "boot2.serial.log", secure_boot=True) as console:
        console.login(USER, PASSWORD, timeout=900)
        assert "dockerboot.generation=1" in ok(console, "cat /proc/cmdline")
        assert ok(console, "cat /etc/dbw-image-marker") == "distro-v1"
        assert f"docker_image={v1}" in ok(console, "cat /proc/cmdline")  # pinned by ID
        console.poweroff(PASSWORD)
    serial = (workdir / "boot2.serial.log").read_text(errors="replace")
    assert f"generation 2 did not come up in {grub.TRIES} tries" in serial, serial[-4000:]
    assert read_env(machine) == {"dockerboot_trying": "2", "dockerboot_tries": "0"}
    for rel, digest in theirs.items():  # every file of theirs, as the boots left the FAT
        assert hashlib.sha256(fat_file(machine, rel)).hexdigest() == digest, rel
