"""systemd-boot as ``bootctl install`` leaves it: the wizard's entries, real UEFI boots.

A disk whose ESP holds systemd-boot (Debian 12's ``systemd-boot-efi``, also in
the removable path, the stock ``loader.conf``); OVMF with empty NVRAM and
Secure Boot off (Debian 12's systemd-boot is unsigned).  ``apply`` with no
``--bootloader`` finds systemd-boot on the ESP and writes its entries (BLS
Type #1) and the kernel copies; ``--default-entry yes`` adds one ``default``
line to ``loader.conf``, every other byte kept.

- Generation 2 (a second image, moved to dracut) is built and written by the
  booted system's own ``dockerboot-update`` (``assets/selfupdate/sdboot.sh``),
  counted (``+3``), as the wizard writes it: systemd-boot
  counts the try, the image's own systemd comes up, the wizard's user logs
  in, and the good mark drops the counter, as ``systemd-bless-boot`` does.
- Generation 3 (a third image) whose initramfs copy is broken, so its kernel
  panics before the hook: switched off and on after each panic, systemd-boot
  counts the tries; after ``TRIES`` it boots generation 2 by itself, no key
  pressed.  ``status`` reads the counts back; generation 1's files left the ESP
  with it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.lab import lab, qemu, scenario
from wizard.loaders import systemd_boot
from wizard.sandbox.console import Console, booted

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

USER, PASSWORD = "kim", "kim-pw-5"
IMAGE = "dbw-sd/debian:desk"


def ok(console: Console, command: str, timeout: float = 120) -> str:
    status, out = console.run(command, timeout=timeout)
    assert status == 0, f"{command}: exit {status}: {out}"
    return out


def wizard(daemon: lab.Dockerd, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([scenario.wizard_command(), *args], env=daemon.env(),
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result


def generation(daemon: lab.Dockerd, machine: scenario.Machine, marker: str,
               *args: str) -> subprocess.CompletedProcess:
    """The image rebuilt with ``marker`` and applied: a new generation."""
    scenario.build_image(daemon, "initramfs-tools", IMAGE, marker=marker, systemd=True)
    result = scenario.run_apply(daemon, machine, *args, "--yes")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    return result


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def entries(machine: scenario.Machine) -> list[str]:
    return sorted(p.name for p in (machine.esp / systemd_boot.ENTRIES_DIR).iterdir())


def test_systemd_boot_entries_counting_and_fallback(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sdboot")
    # Room for two generations' kernel + initramfs copies and the one being added.
    machine = scenario.new_machine(workdir, refind=False, esp_size="256M")
    conf = qemu.make_sdboot_esp(machine.esp)
    tok = systemd_boot.token(machine.label)
    pw = workdir / "pw"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    with scenario.docker_on(machine) as daemon:
        first = generation(daemon, machine, "sd-v1", "--image", IMAGE, "--user", USER,
                           "--password-file", str(pw), "--admin", USER, "--kernel-options",
                           "console=ttyS0", "--default-entry", "yes")
        assert "written: systemd-boot (systemd-boot is on the ESP" in first.stdout, first.stdout
        assert entries(machine) == [f"dockerboot-{tok}-1.conf"]  # one: nothing to count
        # loader.conf: the stock lines byte for byte, then the wizard's default.
        assert conf.read_text() == (qemu.STOCK_LOADER_CONF + systemd_boot.OURS
                                    + f"\ndefault dockerboot-{tok}-*\n")
        # Generation 2 by the booted system's own dockerboot-update (sdboot.sh): the
        # image moved to dracut, so the command builds it and writes its entry and copies.
        scenario.build_image(daemon, "dracut", IMAGE, marker="sd-v2", systemd=True)
        second = scenario.self_update(daemon, machine.workdir / "mnt",
                                      machine.esp / "no-refind.conf", shell="dash",
                                      esp=machine.esp)
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr
        assert "generator initramfs-tools -> dracut" in second.stdout, second.stdout[-4000:]
        assert (f"wrote {machine.esp}/{systemd_boot.ENTRIES_DIR}/dockerboot-{tok}-2+3.conf"
                in second.stdout), second.stdout[-4000:]
        assert conf.read_text() == (qemu.STOCK_LOADER_CONF + systemd_boot.OURS
                                    + f"\ndefault dockerboot-{tok}-*\n")
        # What the wizard writes: its own update has nothing to do and changes no byte.
        before = tree(machine.esp)
        again = wizard(daemon, "update", "--label", machine.label, "--esp", str(machine.esp),
                       "--yes")
        assert "up to date" in again.stdout and tree(machine.esp) == before, again.stdout
    assert entries(machine) == [f"dockerboot-{tok}-1.conf", f"dockerboot-{tok}-2+3.conf"]
    text = (machine.esp / systemd_boot.ENTRIES_DIR / f"dockerboot-{tok}-2+3.conf").read_text()
    assert f"linux /EFI/dockerboot/{tok}/2/vmlinuz" in text and "dockerboot.generation=2" in text
    qemu.mirror_esp(machine.esp, machine.image)

    with booted(machine.image, workdir / "boot2.serial.log") as console:
        console.login(USER, PASSWORD, timeout=900)
        assert "dockerboot.generation=2" in ok(console, "cat /proc/cmdline")
        assert ok(console, "cat /etc/dbw-image-marker") == "sd-v2"
        state = console.run("systemctl is-system-running --wait", timeout=600)[1]
        assert state == "running", ok(console, "systemctl --failed --no-legend --plain")
        assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "success"
        console.poweroff(PASSWORD)
    qemu.read_esp(machine.image, machine.esp)  # the FAT as the boot left it
    assert entries(machine) == [f"dockerboot-{tok}-1.conf", f"dockerboot-{tok}-2.conf"]

    # Generation 3 whose initramfs copy on the ESP is broken: its kernel panics.
    with scenario.docker_on(machine) as daemon:
        generation(daemon, machine, "sd-v3")
    assert entries(machine) == [f"dockerboot-{tok}-2.conf", f"dockerboot-{tok}-3+3.conf"]
    assert not (machine.esp / f"EFI/dockerboot/{tok}/1").exists()  # left with generation 1
    (machine.esp / f"EFI/dockerboot/{tok}/3/initrd.img").write_bytes(b"\0" * 4096)
    qemu.mirror_esp(machine.esp, machine.image)
    for n in range(systemd_boot.TRIES):  # switched off and on after each panic
        with booted(machine.image, workdir / f"panic{n}.serial.log") as console:
            console.expect("Kernel panic", 600, "the kernel of generation 3 panicking")
    with booted(machine.image, workdir / "boot3.serial.log") as console:
        console.login(USER, PASSWORD, timeout=900)
        assert "dockerboot.generation=2" in ok(console, "cat /proc/cmdline")
        assert ok(console, "cat /etc/dbw-image-marker") == "sd-v2"
        console.poweroff(PASSWORD)
    qemu.read_esp(machine.image, machine.esp)
    assert entries(machine) == [f"dockerboot-{tok}-2.conf",
                                f"dockerboot-{tok}-3+0-{systemd_boot.TRIES}.conf"]
    with scenario.docker_on(machine) as daemon:
        out = json.loads(wizard(daemon, "status", "--label", machine.label, "--json").stdout)
    assert out["entries"] == {"default": 3, "previous": 2}
    assert out["assessment"]["systemd_boot"]["entries"]["3"] == {
        "file": f"dockerboot-{tok}-3+0-{systemd_boot.TRIES}.conf", "tries_left": 0,
        "tries_done": systemd_boot.TRIES}
    assert conf.read_text().startswith(qemu.STOCK_LOADER_CONF)


def test_esp_helpers_mirror_the_fat(tmp_path: Path) -> None:
    # The lab's two-way copy (this kernel cannot mount vfat): what the boot renamed comes back.
    machine = scenario.new_machine(tmp_path / "m", size="1G", refind=False)
    (machine.esp / "loader/entries").mkdir(parents=True)
    (machine.esp / "loader/entries/a+3.conf").write_text("x\n")
    (machine.esp / "gone.txt").write_text("y\n")
    qemu.mirror_esp(machine.esp, machine.image)
    (machine.esp / "gone.txt").unlink()
    (machine.esp / "loader/entries/a+3.conf").rename(machine.esp / "loader/entries/a+2-1.conf")
    qemu.mirror_esp(machine.esp, machine.image)
    qemu.read_esp(machine.image, machine.esp)
    assert sorted(str(p.relative_to(machine.esp)) for p in machine.esp.rglob("*")) == [
        "loader", "loader/entries", "loader/entries/a+2-1.conf"]
