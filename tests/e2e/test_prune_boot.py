"""End to end: a failed health check falls back; docker deletes every image, the machine
still boots one it booted before.

Issue 17, points 4 and 1, with the image's own systemd and a real login
(UEFI, rEFInd, initramfs-tools, QEMU):

- boot 1: the applied image v1 boots, reaches boot-complete.target with no
  failed unit, and its systemd marks it good; inside the VM ``docker
  commit`` moves the configured tag to v-bad: v1 plus a check
  (``dbw-check.service``: ``/bin/false``, required by and before
  boot-complete.target, enabled by a link in its ``.requires``), same
  kernel: nothing to deploy.
- boot 2: v-bad boots; its check fails, so boot-complete.target does, and
  dockerboot-mark-good marks it bad (the unit fails, one line in the
  journal names the target and the unit; ``state/failed`` names v-bad).
- boot 3: the configured tag still names v-bad: the hook boots the last
  good image v1 instead, with one line repeating the reason; ``status``
  says which image is bad and why, and that rEFInd counts no boots.
  Inside the VM ``docker commit`` moves the tag to v2 (v1 plus a marker).
- boot 4: v2 boots and is marked good.  Inside the VM ``docker image prune
  -a -f`` and ``docker system prune -a -f`` (which also removes the wizard's
  pins): docker's store keeps no image at all.
- boot 5: no image of docker's can boot, yet the machine comes up, on
  dockerboot's own copy of an image it booted before (``boot_docker/roots``:
  generation 1's image, made by apply and by the hook; v2's copy is made at
  the first boot after its mark, which a prune in that same boot precedes),
  with one line saying which and why; ``dockerboot-update status --json``
  there names it (``booted.source``) and lists the copies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.lab import qemu, scenario
from wizard.sandbox.console import Console, booted

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

PASSWORD = "alice-pw-1"
HOSTNAME = "prunemachine"


def login_and_fallback_line(console: Console, log: Path) -> str:
    """Log alice in; the hook's one line of this boot saying what it booted instead."""
    console.login("alice", PASSWORD, timeout=900)
    fell_back = [ln.strip() for ln in log.read_text(errors="replace").splitlines()
                 if "instead" in ln and "dockerboot: " in ln]
    assert len(fell_back) == 1, fell_back
    return fell_back[0]


def ok(console: Console, command: str, timeout: float = 120) -> str:
    status, out = console.run(command, timeout=timeout)
    assert status == 0, f"{command}: exit {status}: {out}"
    return out


def sudo(console: Console, command: str, timeout: float = 300) -> tuple[int, str]:
    return console.run(f"echo {PASSWORD} | sudo -S -p '' {command}", timeout=timeout)


def marked_good(console: Console) -> None:
    assert console.run("systemctl is-system-running --wait", timeout=600)[1] == "running"
    assert ok(console, "systemctl is-active boot-complete.target") == "active"
    assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "success"
    said = journal(console)
    assert "marked good" in said, said


def journal(console: Console) -> str:
    """dockerboot-mark-good's line in this boot's journal (read as root)."""
    status, out = sudo(console, "journalctl -b -o cat -u dockerboot-mark-good | grep 'image '")
    assert status == 0, out
    return out


# v-bad's health check, the systemd way: required by boot-complete.target, ordered before it.
CHECK_UNIT = ("[Unit]\\nDescription=dbw: a health check that fails\\n"
              "Before=boot-complete.target\\n[Service]\\nType=oneshot\\nExecStart=/bin/false\\n"
              "[Install]\\nRequiredBy=boot-complete.target\\n")
CHECK_WHY = re.compile(r"boot-complete\.target inactive, \d+ failed unit\(s\):[ a-z@.-]*"
                       r" dbw-check\.service\b[ a-z@.-]*")


def commit_bad(console: Console, image: str) -> str:
    """v-bad: the tag's image plus dbw-check.service, enabled; committed to the tag."""
    ok(console, f"printf '{CHECK_UNIT}' > /tmp/dbw-check.service && mkdir -p "
                "/tmp/req/boot-complete.target.requires && ln -sfn "
                "/etc/systemd/system/dbw-check.service "
                "/tmp/req/boot-complete.target.requires/dbw-check.service")
    assert sudo(console, f"docker create --name dbwbad {image} /bin/true")[0] == 0
    for src, dst in (("/tmp/dbw-check.service", "/etc/systemd/system/dbw-check.service"),
                     ("/tmp/req/boot-complete.target.requires", "/etc/systemd/system/")):
        status, out = sudo(console, f"docker cp {src} dbwbad:{dst}")
        assert status == 0, out
    status, out = sudo(console, f"docker commit dbwbad {image}")
    assert status == 0, out
    assert sudo(console, "docker rm dbwbad")[0] == 0
    return re.search(r"sha256:[0-9a-f]{64}", out).group(0)  # type: ignore[union-attr]


def test_after_every_prune_the_machine_boots_an_image_it_booted_before(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e-prune")
    machine = scenario.new_machine(workdir)
    image = "dbw-e2e/prune:desk"
    pw = workdir / "pw-alice"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", image, marker="prune-v1", systemd=True)
        result = scenario.run_apply(daemon, machine, "--image", image, "--hostname", HOSTNAME,
                                    "--admin", "alice", "--user", "alice", "--password-file",
                                    str(pw), "--kernel-options", "console=ttyS0", "--yes")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        v1 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        # apply's copy of generation 1's image (the partition is mounted here).
        assert (machine.workdir / "mnt/boot_docker/roots" / v1[7:]).is_dir()
    qemu.sync_esp(machine.esp, machine.image)

    with booted(machine.image, workdir / "boot1.serial.log") as console:
        console.login("alice", PASSWORD, timeout=900)
        marked_good(console)
        vbad = commit_bad(console, image)
        console.poweroff(PASSWORD)

    with booted(machine.image, workdir / "boot2-bad.serial.log") as console:
        console.login("alice", PASSWORD, timeout=900)
        assert console.run("systemctl is-system-running --wait", timeout=600)[1] == "degraded"
        assert console.run("systemctl is-active boot-complete.target")[1] == "inactive"
        assert ok(console, "systemctl show -p Result --value dbw-check") == "exit-code"
        # The verdict: the mark-good unit fails, its one line says why.
        assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "exit-code"
        status, out = sudo(console, "dockerboot-update status --json | tr -d '\\n'")
        assert status == 0, out
        doc = json.loads(out[out.index("{"):])
        why = doc["failed"]["reason"]           # the target, and the units that failed
        assert CHECK_WHY.fullmatch(why), why
        assert doc["failed"] == {"id": vbad, "tries": 2, "reason": why}
        assert doc["last_good"] == {"id": v1}
        assert f"image {vbad[7:19]} ({image}) marked bad ({why}): the next boot falls back " \
            f"to the last good image {v1[7:19]}" in journal(console)
        console.poweroff(PASSWORD)

    with booted(machine.image, workdir / "boot3-fallback.serial.log") as console:
        fell_back = login_and_fallback_line(console, workdir / "boot3-fallback.serial.log")
        assert f"dockerboot: {image}: was marked bad ({why}) — booting the last good image " \
            f"{v1[7:19]} instead" in fell_back, fell_back
        assert ok(console, "cat /etc/dbw-image-marker") == "prune-v1"
        marked_good(console)
        status, out = sudo(console, "dockerboot-update status --json | tr -d '\\n'")
        assert status == 0, out
        doc = json.loads(out[out.index("{"):])
        assert doc["booted"]["id"] == v1 and doc["booted"]["source"] == "good"
        assert doc["booted"]["fallback_reason"] == f"was marked bad ({why})"
        assert doc["failed"] == {"id": vbad, "tries": 2, "reason": why}
        assert doc["assessment"]["bootloader_counts"] is False
        status, out = sudo(console, "dockerboot-update status")
        assert f"image @{vbad[7:19]} is not booted while configured: marked bad" in out, out
        # v2: v1 (by ID: the tag names v-bad) plus a marker.
        ok(console, "echo prune-v2 > /tmp/marker")
        assert sudo(console, f"docker create --name dbwnext {v1} /bin/true")[0] == 0
        assert sudo(console, "docker cp /tmp/marker dbwnext:/etc/dbw-image-marker")[0] == 0
        status, out = sudo(console, f"docker commit dbwnext {image}")
        assert status == 0, out
        v2 = re.search(r"sha256:[0-9a-f]{64}", out).group(0)  # type: ignore[union-attr]
        assert sudo(console, "docker rm dbwnext")[0] == 0
        console.poweroff(PASSWORD)

    with booted(machine.image, workdir / "boot4.serial.log") as console:
        console.login("alice", PASSWORD, timeout=900)
        assert ok(console, "cat /etc/dbw-image-marker") == "prune-v2"
        marked_good(console)
        for command in ("docker image prune -a -f", "docker system prune -a -f"):
            status, out = sudo(console, command)
            assert status == 0, out
        status, out = sudo(console, "docker images -a -q | wc -l")
        assert (status, out.strip()) == (0, "0"), out   # docker has nothing left
        console.poweroff(PASSWORD)

    with booted(machine.image, workdir / "boot5.serial.log") as console:
        fell_back = login_and_fallback_line(console, workdir / "boot5.serial.log")
        assert fell_back.endswith(f"booting dockerboot's copy of the image of generation 1 "
                                  f"{v1[7:19]} instead"), fell_back
        assert f"dockerboot: {image}: is not in the docker store" in fell_back
        assert ok(console, "cat /etc/dbw-image-marker") == "prune-v1"   # booted before
        marked_good(console)     # v1, booted from the copy, is the last good image again
        status, out = sudo(console, "dockerboot-update status --json | tr -d '\\n'")
        assert status == 0, out
        doc = json.loads(out[out.index("{"):])
        assert doc["booted"]["id"] == v1 and doc["booted"]["source"] == "generation-root"
        assert doc["booted"]["fallback"] is True
        assert doc["booted"]["fallback_reason"] == "is not in the docker store"
        assert doc["last_good"] == {"id": v1} and v2 != v1
        assert [(r["id"], r["kept"]) for r in doc["roots"]] == [(v1, True)]
        status, out = sudo(console, "dockerboot-update status")
        assert "booted from dockerboot's own copy" in out, out
        console.poweroff(PASSWORD)

    state = machine.workdir / "mnt/boot_docker/state"
    with scenario.docker_on(machine):
        boot = (state / "boot").read_text()
        assert f"id={v1}\n" in boot and "source=generation-root\n" in boot
