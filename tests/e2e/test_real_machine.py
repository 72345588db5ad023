"""A real machine after the first boot, proven with the image's own systemd and a real login.

One headless ``apply`` (two users, alice an administrator; everything else
default), then two UEFI boots through rEFInd of the sample image with
systemd, sudo and docker.io, for initramfs-tools and for dracut.  On the
serial console, as the wizard's users:

- boot 1: bob (a plain user) is refused by sudo; alice's ``HOME`` is
  ``/home/alice`` with the image's skel files, owned by her; sudo works and
  never says "unable to resolve host"; ``/var/lib/docker``, ``/home`` and
  ``/var/log/journal`` are the partition's subvolumes; ``docker info`` says
  btrfs; no failed unit; the machine-id is the one apply made.  Then a file
  in ``$HOME``, one in ``/``, a journal line, and ``docker commit`` of a new
  image to the configured tag, inside the VM: the top layer's
  ``dockerboot-update.path`` starts the booted system's own update, which
  finds the same kernel (nothing to deploy), and ``dockerboot-update status
  --json`` there shows the boot (generation 1, as the hook recorded it) and the
  pending tag move.
- boot 2: the committed image boots (nothing added by hand) on a fresh rw
  layer and its own ``status --json`` names it; ``$HOME``'s file and the
  journal line of boot 1 are there, the file in ``/`` is not.

Around the boots, on the host: apply keeps the user's own refind.conf
entry and comments byte for byte (and a backup), saves its configuration
0600 without the passwords, writes crypt hashes; the boots write nothing
to refind.conf; boot 2's hook kept boot 1's root read-only as
``docker_rwlayer.previous`` (the file written in ``/`` there); a later
``apply --dry-run`` needs no ``--image`` (the saved configuration).  With
dracut, systemd runs in the initramfs.  (This was test_boot.py's pair of
boots with a test init: the same assertions, on these boots.)

The top layer also holds files where the image has symlinks (issue "never
harm"): ``etc/resolv.conf`` (a dangling relative symlink in the image),
``etc/localtime`` (absolute), ``lib/dbw-test/marker.conf`` (``lib -> usr/lib``)
and a ``tmp/`` directory of mode 0700: apply's plan says where each lands,
the booted system has them in place, ``/tmp`` keeps 1777, and the image's own
subvolume is unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import time
from pathlib import Path

import pytest

from tests.lab import lab, qemu, scenario
from wizard.sandbox.console import Console, booted
from wizard.store import images

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}
HOSTNAME = "lifemachine"
ZONE = Path("/usr/share/zoneinfo/Europe/Berlin")
TOP_FILES = {"etc/resolv.conf": b"nameserver 192.0.2.53\n",
             "etc/localtime": ZONE.read_bytes() if ZONE.exists() else b"TZif-test\n",
             "lib/dbw-test/marker.conf": b"from the top layer\n"}


def with_symlinks(daemon, image: str, workdir: Path) -> None:
    """``image`` again, with ``etc/resolv.conf`` a (dangling) symlink as systemd-resolved has it.

    ``ADD`` of a tar: a ``RUN ln`` cannot replace the file docker bind-mounts there.
    """
    ctx = workdir / "ctx"
    ctx.mkdir()
    with tarfile.open(ctx / "links.tar", "w") as tf:
        link = tarfile.TarInfo("etc/resolv.conf")
        link.type, link.linkname = tarfile.SYMTYPE, "../run/systemd/resolve/stub-resolv.conf"
        tf.addfile(link)
    (ctx / "Dockerfile").write_text(f"FROM {image}\nADD links.tar /\n")
    daemon.docker("build", "--network", "none", "-t", image, ctx, timeout=600)


def fill_toplayer(toplayer: Path) -> None:
    toplayer.mkdir(mode=0o700, parents=True)
    for rel, data in TOP_FILES.items():
        (toplayer / rel).parent.mkdir(parents=True, exist_ok=True)
        (toplayer / rel).write_bytes(data)
    (toplayer / "tmp").mkdir(mode=0o700)


def image_unchanged(root: Path) -> None:
    """What the hook must never write through: the image's own subvolume."""
    assert os.readlink(root / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Etc/UTC"
    assert os.readlink(root / "lib") == "usr/lib"
    assert not (root / "usr/lib/dbw-test").exists()
    assert (root / "tmp").stat().st_mode & 0o7777 == 0o1777


def sudo(console: Console, command: str, user: str = "alice",
         timeout: float = 120) -> tuple[int, str]:
    return console.run(f"echo {PASSWORDS[user]} | sudo -S -p '' {command}", timeout=timeout)


def ok(console: Console, command: str, timeout: float = 120) -> str:
    status, out = console.run(command, timeout=timeout)
    assert status == 0, f"{command}: exit {status}: {out}"
    return out


def self_status(console: Console) -> dict:
    """``dockerboot-update status --json`` in the booted system (the top layer's command)."""
    status, out = sudo(console, "dockerboot-update status --json | tr -d '\\n'", timeout=300)
    assert status == 0, out
    return json.loads(out[out.index("{"):])


@pytest.mark.parametrize("generator", ["initramfs-tools", "dracut"])
def test_real_machine_two_boots(generator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"machine-{generator}")
    machine = scenario.new_machine(workdir)
    image = f"dbw-machine/{generator}:desk"
    user_conf_before = machine.refind_conf.read_text()
    args = ["--image", image, "--hostname", HOSTNAME, "--admin", "alice",
            "--kernel-options", "console=ttyS0", "--yes"]
    for user, password in PASSWORDS.items():
        pw = workdir / f"pw-{user}"
        pw.write_text(password + "\n")
        os.chmod(pw, 0o600)
        args += ["--user", user, "--password-file", str(pw)]
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, generator, image, marker=f"{generator}-v1", systemd=True)
        with_symlinks(daemon, image, workdir)
        toplayer = machine.workdir / "mnt/boot_docker/toplayer"
        fill_toplayer(toplayer)
        result = scenario.run_apply(daemon, machine, *args)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        for line in ("etc/resolv.conf: replaces the image's symlink (-> ../run/systemd/",
                     "etc/localtime: replaces the image's symlink (-> /usr/share/zoneinfo/",
                     "lib/dbw-test/marker.conf: lands at usr/lib/dbw-test/marker.conf"):
            assert line in result.stdout, result.stdout[-4000:]
        machine_id = (toplayer / "etc/machine-id").read_text().strip()
        assert all(pw not in result.stdout + result.stderr for pw in PASSWORDS.values())
        hashes = dict(line.split(":")[:2] for line in
                      (toplayer / "etc/shadow").read_text().splitlines())
        assert re.match(r"^\$(y|6|gy|7)\$", hashes["alice"]), hashes["alice"]
        saved = machine.workdir / "mnt/boot_docker/dockerboot-wizard.toml"
        assert saved.stat().st_mode & 0o777 == 0o600
        assert "alice" in saved.read_text()
        assert all(pw not in saved.read_text() for pw in PASSWORDS.values())
    conf = machine.refind_conf.read_text()
    # The user's own entry and comments survive byte for byte, before our block.
    assert conf.startswith(user_conf_before) and 'menuentry "My own OS"' in conf
    assert f"volume {machine.label}" in conf
    assert list(machine.refind_conf.parent.glob("refind.conf.dockerboot-*.bak"))
    qemu.sync_esp(machine.esp, machine.image)

    with booted(machine.image, workdir / "boot1.serial.log") as console:
        console.expect(f"{HOSTNAME} login: ", timeout=900)
        print(f"\n{generator}: login prompt after {time.monotonic() - console.started:.0f}s")
        if generator == "dracut":
            # systemd ran in the initramfs (dracut's systemd module, from the image's config).
            serial = (workdir / "boot1.serial.log").read_text(errors="replace")
            assert re.search(r"systemd\[1\]|Welcome to .*dracut", serial), serial[-5000:]
        console.login("bob", PASSWORDS["bob"])
        status, out = sudo(console, "true", user="bob")
        assert status != 0 and "not in the sudoers file" in out, out
        console.logout()

        console.login("alice", PASSWORDS["alice"])
        assert ok(console, "echo $HOME; id -un; stat -c '%U %a' $HOME") in (
            "/home/alice\nalice\nalice 700", "/home/alice\nalice\nalice 755")
        skel = ok(console, "ls -A /etc/skel").split()
        home = ok(console, "ls -A $HOME").split()
        assert ".bashrc" in skel and set(skel) <= set(home), (skel, home)
        status, out = sudo(console, "id -un")
        assert (status, out) == (0, "root"), out  # no "unable to resolve host" either
        assert ok(console, "findmnt -n -o FSROOT /var/lib/docker") == "/docker"
        assert ok(console, "findmnt -n -o FSROOT /home") == "/home"
        assert ok(console, "findmnt -n -o FSROOT /var/log/journal") == "/journal"
        assert ok(console, "findmnt -n -o FSROOT /") == "/docker_rwlayer"
        cmdline = ok(console, "cat /proc/cmdline")
        assert f"docker_image={image}" in cmdline and "init=" not in cmdline  # its own init
        state = console.run("systemctl is-system-running --wait", timeout=600)[1]
        failed = ok(console, "systemctl --failed --no-legend --plain")
        assert (state, failed) == ("running", ""), f"{state}: {failed}"
        assert sudo(console, "docker info --format '{{.Driver}}'") == (0, "btrfs")
        assert ok(console, "cat /etc/machine-id") == machine_id
        assert ok(console, "cat /etc/dbw-image-marker") == f"{generator}-v1"
        # The top layer laid over the image's symlinks, never through them.
        assert ok(console, "cat /etc/resolv.conf; test ! -L /etc/resolv.conf && echo file") == \
            "nameserver 192.0.2.53\nfile"
        assert ok(console, "test ! -L /etc/localtime && md5sum < /etc/localtime").split()[0] \
            == hashlib.md5(TOP_FILES["etc/localtime"]).hexdigest()
        assert ok(console, "test -L /lib && cat /usr/lib/dbw-test/marker.conf") == \
            "from the top layer"
        assert ok(console, "stat -c %a /tmp") == "1777"
        assert ok(console, "stat -c %a /") == "755"  # the top layer's 0700 stays on it

        ok(console, "echo kept > $HOME/kept.txt")
        assert sudo(console, "touch /dbw-root-file")[0] == 0
        ok(console, "logger -t dbwtest journal-line-of-boot-1")
        # The booted system's docker moves the configured tag: what the next boot takes.
        ok(console, f"echo {generator}-v2-committed > /tmp/marker")
        assert sudo(console, f"docker create --name dbwnext {image} /bin/true")[0] == 0
        assert sudo(console, "docker cp /tmp/marker dbwnext:/etc/dbw-image-marker")[0] == 0
        status, out = sudo(console, f"docker commit dbwnext {image}", timeout=300)
        assert status == 0 and re.search(r"sha256:[0-9a-f]{64}", out), out
        # The booted system's own update saw the tag move (the path unit on docker's
        # tag file started it): same kernel, so nothing to deploy.
        committed = re.search(r"sha256:[0-9a-f]{64}", out).group(0)  # type: ignore[union-attr]
        status, out = sudo(console, "sh -c 'for i in $(seq 60); do journalctl -b -o cat "
                                    "-u dockerboot-update.service | grep nothing.to.deploy "
                                    "&& exit 0; sleep 2; done; exit 1'", timeout=240)
        assert status == 0 and f"the next boot snapshots @{committed[7:19]}" in out, \
            sudo(console, "systemctl status --no-pager dockerboot-update.path "
                          "dockerboot-update.service; journalctl -b --no-pager -o cat "
                          "-u dockerboot-update.service | tail -n 20")[1]
        before = self_status(console)
        assert before["booted"]["ref"] == image and before["booted"]["fallback"] is False
        assert (before["booted"]["generation"], before["booted"]["generation_source"]) == \
            (1, "state")  # the hook's record of the entry's dockerboot.generation=
        assert before["pending"]["tag_id"] == committed
        assert (before["pending"]["image_changed"], before["pending"]["build_needed"]) == \
            (True, False)
        # Boot assessment: the hook's record, and the unit that marks this image good.
        assert f"ref={image}" in ok(console, "cat /etc/dockerboot/boot")
        assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "success"
        assert sudo(console, "journalctl --sync")[0] == 0
        console.poweroff(PASSWORDS["alice"])

    with booted(machine.image, workdir / "boot2.serial.log") as console:
        console.login("alice", PASSWORDS["alice"], timeout=900)
        assert ok(console, "cat /etc/dbw-image-marker") == f"{generator}-v2-committed"
        assert ok(console, "cat $HOME/kept.txt") == "kept"
        assert console.run("test -e /dbw-root-file")[0] == 1  # the root is reset at boot
        # The committed image booted by the tag, on a fresh rw layer; its own status says so.
        after = self_status(console)
        assert (after["booted"]["ref"], after["booted"]["id"]) == (image, committed)
        assert after["booted"]["configured_id"] == committed
        assert after["booted"]["fallback"] is False and after["booted"]["generation"] == 1
        assert after["generation"]["image_id"] == before["booted"]["id"]  # no build was needed
        status, out = sudo(console, "journalctl -b -1 -t dbwtest --no-pager -o cat")
        assert status == 0 and "journal-line-of-boot-1" in out, out
        assert ok(console, "cat /etc/machine-id") == machine_id
        # Up, so its own unit marks the committed image good before the power-off.
        assert console.run("systemctl is-system-running --wait", timeout=600)[1] == "running"
        assert ok(console, "systemctl show -p Result --value dockerboot-mark-good") == "success"
        console.poweroff(PASSWORDS["alice"])

    assert machine.refind_conf.read_text() == conf  # the boots wrote nothing there
    with scenario.docker_on(machine) as daemon:
        top = machine.workdir / "mnt"
        # Boot 2's hook kept boot 1's root, read-only: the file written there, its image.
        prev = top / "docker_rwlayer.previous"
        assert (prev / "dbw-root-file").is_file()
        assert (prev / "etc/dbw-image-marker").read_text().strip() == f"{generator}-v1"
        assert lab.run("btrfs", "property", "get", "-ts", prev, "ro").stdout.strip() == "ro=true"
        # The saved config is the input of a later apply: no --image needed.
        again = scenario.run_apply(daemon, machine, "--dry-run")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr
        assert f"docker_image={image}" in again.stdout and "console=ttyS0" in again.stdout
        assert "dry run: nothing was changed" in again.stdout
        data_root = machine.workdir / "mnt/docker"
        image_unchanged(images.resolve_subvolume(data_root, image))
        # The committed image booted and its own systemd marked it good.
        committed = daemon.docker("inspect", "-f", "{{.Id}}", image).stdout.strip()
        state = machine.workdir / "mnt/boot_docker/state"
        assert (state / "good").read_text().split() == [committed]
        assert f"id={committed}" in (state / "boot").read_text()
        for rel, data in TOP_FILES.items():
            assert (toplayer / rel).read_bytes() == data  # the top layer itself untouched
