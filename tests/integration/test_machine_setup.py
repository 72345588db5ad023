"""A real machine from one headless ``apply``, against the real lab (two loop disks, dockerd).

Persistent ``/home`` and journal subvolumes, homes made from the image's own
``/etc/skel`` with the image's tools, administrators in the image's ``sudo``
group, the machine files (fstab, daemon.json, machine-id, hosts) — and what
must never change: a machine-id on reconfigure, an existing home, another
disk's identity.  The booted result is proven in tests/e2e/test_real_machine.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import lab, qemu, scenario
from wizard.store import images
from wizard.toplayer import machine

pytestmark = pytest.mark.lab

IMAGE = "dbw-machine/debian:12"
NO_SUDO = "dbw-machine/nosudo:1"
ROOT_0700 = "dbw-machine/root0700:1"
PASSWORDS = {"alice": "alice pw 1", "bob": "bob pw 2"}


@dataclass
class Disk:
    label: str
    top: Path
    esp: Path
    daemon: lab.Dockerd
    work: Path

    @property
    def toplayer(self) -> Path:
        return self.top / "boot_docker/toplayer"

    def apply(self, *args: str, passwords: dict[str, str] | None = None,
              image: str | None = IMAGE) -> subprocess.CompletedProcess:
        cmd = [scenario.wizard_command(), "apply", "--label", self.label]
        if "--toplayer-only" not in args:
            cmd += ["--esp", str(self.esp)] + (["--image", image] if image else [])
        for user, password in (passwords or {}).items():
            pw = self.work / f"pw-{user}"
            pw.write_text(password + "\n")
            os.chmod(pw, 0o600)
            cmd += ["--user", user, "--password-file", str(pw)]
        return subprocess.run([*cmd, *args], env=self.daemon.env(), capture_output=True,
                              text=True, timeout=900)


@contextlib.contextmanager
def machine_disk(work: Path) -> Iterator[Disk]:
    with lab.docker_disk(work) as dd:
        lab.import_rootfs(dd.daemon, IMAGE)
        esp = work / "esp"
        qemu.make_esp(esp)
        yield Disk(dd.disk.label, dd.top, esp, dd.daemon, work)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Disk]:
    """A disk set up by one full apply: two users, alice an administrator."""
    with machine_disk(tmp_path_factory.mktemp("machine-a")) as disk:
        r = disk.apply("--hostname", "lifemachine", "--admin", "alice", "--yes",
                       passwords=PASSWORDS)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr
        assert "alice pw" not in r.stdout + r.stderr and "bob pw" not in r.stdout + r.stderr
        disk.work.joinpath("apply.out").write_text(r.stdout)
        yield disk


def is_subvolume(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and path.stat().st_ino == 256


def passwd_entry(disk: Disk, user: str) -> list[str]:
    for line in (disk.toplayer / "etc/passwd").read_text().splitlines():
        if line.startswith(f"{user}:"):
            return line.split(":")
    raise AssertionError(f"{user} not in the top layer's passwd")


def test_plan_names_subvolumes_homes_and_machine_files(first: Disk) -> None:
    out = first.work.joinpath("apply.out").read_text()
    for text in ("home: created now, mounted at /home", "journal: created now, mounted at "
                 "/var/log/journal", "/home/alice of alice: made from the image's /etc/skel",
                 "etc/machine-id", "etc/docker/daemon.json"):
        assert text in out, out[-4000:]


def test_homes_on_a_persistent_subvolume_from_the_images_skel(first: Disk) -> None:
    assert is_subvolume(first.top / "home") and is_subvolume(first.top / "journal")
    image_root = images.resolve_subvolume(first.top / "docker", IMAGE)
    skel = sorted(p.name for p in (image_root / "etc/skel").iterdir())
    assert ".bashrc" in skel and ".profile" in skel
    for user in PASSWORDS:
        entry = passwd_entry(first, user)
        assert entry[5] == f"/home/{user}"
        home = first.top / "home" / user
        st = home.stat()
        assert (st.st_uid, st.st_gid) == (int(entry[2]), int(entry[3]))
        assert st.st_mode & 0o777 in (0o700, 0o750, 0o755)  # as the image's useradd made it
        assert sorted(p.name for p in home.iterdir()) == skel
        assert (home / ".bashrc").read_bytes() == (image_root / "etc/skel/.bashrc").read_bytes()
        assert (home / ".bashrc").stat().st_uid == int(entry[2])
    assert not list((first.top / "home").glob(".dockerboot-new-*"))  # no scratch left


def test_administrator_in_the_images_sudo_group(first: Disk) -> None:
    group = (first.toplayer / "etc/group").read_bytes()
    assert machine.members(group, "sudo") == {"alice"}  # bob is a plain user


def test_machine_files(first: Disk) -> None:
    fstab = (first.toplayer / "etc/fstab").read_text()
    label = first.label
    assert f"LABEL={label} /var/lib/docker btrfs subvol=docker 0 0\n" in fstab
    assert f"LABEL={label} /home btrfs subvol=home,nofail 0 0\n" in fstab
    assert f"LABEL={label} /var/log/journal btrfs subvol=journal,nofail 0 0\n" in fstab
    daemon = json.loads((first.toplayer / "etc/docker/daemon.json").read_text())
    assert daemon["storage-driver"] == "btrfs"
    assert daemon["features"]["containerd-snapshotter"] is False
    mid = first.toplayer / "etc/machine-id"
    assert machine.has_machine_id(mid.read_bytes()) and mid.stat().st_mode & 0o777 == 0o444
    assert "127.0.1.1\tlifemachine" in (first.toplayer / "etc/hosts").read_text()


def test_reconfigure_keeps_machine_id_and_homes(first: Disk) -> None:
    mid = (first.toplayer / "etc/machine-id").read_bytes()
    own = first.top / "home/alice/keep.txt"
    own.write_text("mine\n")
    bashrc = (first.top / "home/alice/.bashrc").read_bytes() + b"# my own alias\n"
    (first.top / "home/alice/.bashrc").write_bytes(bashrc)
    r = first.apply("--toplayer-only", "--hostname", "renamed", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert (first.toplayer / "etc/machine-id").read_bytes() == mid
    assert own.read_text() == "mine\n"
    assert (first.top / "home/alice/.bashrc").read_bytes() == bashrc
    hosts = (first.toplayer / "etc/hosts").read_text()
    assert "127.0.1.1\trenamed" in hosts and "lifemachine" not in hosts
    assert "created now" not in r.stdout  # nothing was missing any more


def test_admin_who_is_no_user_is_one_line(first: Disk) -> None:
    before = (first.toplayer / "etc/group").read_bytes()
    r = first.apply("--toplayer-only", "--admin", "carol", "--yes")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "carol cannot be an administrator" in r.stderr and "--user carol" in r.stderr
    assert (first.toplayer / "etc/group").read_bytes() == before


def build(disk: Disk, tag: str, run: str) -> str:
    ctx = disk.work / f"ctx-{tag.replace('/', '_').replace(':', '_')}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN {run}\n")
    disk.daemon.docker("build", "--network", "none", "-t", tag, ctx, timeout=600)
    return tag


def import_with_root_mode(disk: Disk, tag: str, mode: int) -> str:
    """The sample rootfs imported with its ``/`` at ``mode`` (a ``mktemp -d`` rootfs has 0700)."""
    proc = subprocess.Popen(["docker", "import", "-", tag], stdin=subprocess.PIPE,
                            env=disk.daemon.env(), stdout=subprocess.DEVNULL)
    assert proc.stdin is not None
    with tarfile.open(lab.rootfs_tarball("initramfs-tools")) as src, \
            tarfile.open(fileobj=proc.stdin, mode="w|") as dst:
        for member in src:
            if member.name in (".", "./"):
                member.mode = mode
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    proc.stdin.close()
    assert proc.wait(600) == 0
    return tag


def test_image_with_a_0700_root_is_warned_about(first: Disk) -> None:
    r = first.apply("--dry-run", image=import_with_root_mode(first, ROOT_0700, 0o700))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "/ is 0700 0:0, not 0755 root:root" in r.stdout


def test_two_machines_from_one_image_get_two_identities(first: Disk,
                                                        tmp_path: Path) -> None:
    with machine_disk(tmp_path) as second:
        # A fresh machine whose image has no administrators' group: one line, nothing made.
        nosudo = build(second, NO_SUDO, "sed -i '/^sudo:/d;/^wheel:/d' /etc/group")
        r = second.apply("--admin", "alice", "--yes", passwords={"alice": "pw"}, image=nosudo)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "neither a sudo nor a wheel group" in r.stderr and "sudo package" in r.stderr
        assert not (second.top / "boot_docker").exists() and not (second.top / "home").exists()

        r = second.apply("--yes")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        ids = {(d.toplayer / "etc/machine-id").read_bytes() for d in (first, second)}
        assert len(ids) == 2 and all(machine.has_machine_id(i) for i in ids)
