"""systemd-boot's entries written by the booted system's ``dockerboot-update``, against the Python.

The lab of ``test_selfupdate`` (a real dockerd on a loop btrfs, the
debootstrapped sample image) with an ESP directory laid out as ``bootctl
install`` leaves it, plus an entry of the user's own; ``apply --bootloader
systemd-boot --default-entry yes``.  The command's generation is made without
an initramfs build: the wizard's ``rollback`` pins the newest generation to
the image before, and the command run by hand goes back to the tag by copying
the newest pair (``assets/selfupdate/sdboot.sh`` writes the entries and the
kernel copies).  Every result is checked against the Python: its own plan
and ``write_chain`` on a copy of the ESP change no byte, ``owned`` is what it
writes, and the wizard's ``update`` then finds nothing to do and changes
nothing.  Each shell (busybox sh, dash) runs one such cycle; then the dry run
and the hostile cases.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration import test_update
from tests.integration.test_cli_apply import Env, cli, snapshot
from tests.integration.test_selfupdate import left_in_run
from tests.lab import lab, qemu, scenario
from wizard.boot import generations
from wizard.flows import sdboot
from wizard.loaders import esp_files, esp_plan, systemd_boot
from wizard.settings import config
from wizard.store.images import resolve_subvolume
from wizard.toplayer import machine, selfupdate

pytestmark = pytest.mark.lab

IMAGE = "dbw-sdself/debian:12"
TINY = "dbw-sdself/tiny:1"
SHELLS = ["busybox sh", "dash"]
USER_ENTRY = b"title Debian GNU/Linux 12\r\nlinux /vmlinuz-6.1\r\noptions root=/dev/sda2\r\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("sdself")
    with lab.cli_lab(work, IMAGE, TINY) as (dd, _):
        esp = work / "sdboot-esp"
        qemu.make_sdboot_esp(esp)
        (esp / systemd_boot.ENTRIES_DIR / "debian-6.1.conf").write_bytes(USER_ENTRY)
        e = Env(dd.disk, dd.top, dd.daemon, esp)
        r = cli(e, "apply", "--esp", str(esp), "--label", dd.disk.label, "--image", IMAGE,
                "--bootloader", "systemd-boot", "--default-entry", "yes", "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        (work / "cmdline").write_text(
            f"root=LABEL=x docker_image={IMAGE} dockerboot.generation=1\n")
        yield e


def run(env: Env, *args: str, shell: str = "dash",
        esp: Path | None = None) -> subprocess.CompletedProcess:
    """The top layer's command, its ESP the lab's systemd-boot directory (no refind.conf)."""
    return scenario.self_update(env.daemon, env.top, env.esp / "no-refind.conf", *args,
                                shell=shell, cmdline=env.esp.parent / "cmdline",
                                esp=esp or env.esp)


def wizard(env: Env, *args: str) -> subprocess.CompletedProcess:
    r = cli(env, args[0], "--label", env.disk.label, "--esp", str(env.esp), *args[1:])
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def settings(env: Env) -> config.Settings:
    saved = config.load(env.top)
    assert saved is not None
    return replace(saved, image=IMAGE)


def tree(root: Path) -> dict[str, str]:
    """Every name under ``root``: a file's SHA-256, a link's target, ``dir``."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = (f"-> {p.readlink()}" if p.is_symlink()
                    else hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
    return out


def entries_dir(env: Env) -> Path:
    return env.esp / systemd_boot.ENTRIES_DIR


def tok(env: Env) -> str:
    return systemd_boot.token(env.disk.label)


def inventory(env: Env) -> generations.Inventory:
    return generations.load(env.top / "boot_docker")


def counting(env: Env) -> bool:
    """The wizard's rule for the newest generation's image (``machine.has_systemd``)."""
    newest = inventory(env).newest
    assert newest is not None and newest.image_id is not None
    return machine.has_systemd(resolve_subvolume(env.top / "docker", newest.image_id))


def expected_owned(env: Env, extra: bytes = b"") -> bytes:
    """``owned`` as the Python writes it: the copies of the two generations in the menu."""
    inv = inventory(env)
    owned: dict[str, set[str]] = {}
    for gen in (inv.newest, inv.previous):
        assert gen is not None
        for name in (gen.kernel, gen.initrd):
            data = (env.top / "boot_docker" / f"gen/{gen.number}" / name).read_bytes()
            owned[f"EFI/dockerboot/{tok(env)}/{gen.number}/{name}"] = {esp_files.digest(data)}
    for line in extra.decode().splitlines():
        digest, _, rel = line.partition(" ")
        owned.setdefault(rel, set()).add(digest)
    return esp_files.owned_bytes(owned)


def assert_same_as_python(env: Env, tmp_path: Path) -> None:
    """The Python's own plan and write on a copy of the ESP change no byte; then its update."""
    copy = tmp_path / "python-esp"
    shutil.copytree(env.esp, copy, symlinks=True)
    chain, _ = sdboot.plan(copy, env.top, settings(env), None, counting=counting(env))
    assert not chain.changed and not chain.removes, [w.rel for w in chain.changed]
    assert chain.custom is None  # loader.conf as the Python writes it
    assert list(esp_plan.write_chain(chain)) == []
    assert tree(copy) == tree(env.esp)
    shutil.rmtree(copy)
    before = tree(env.esp)
    r = wizard(env, "update", "--yes")
    assert "up to date" in r.stdout, r.stdout
    assert tree(env.esp) == before
    # The booted system's status reads the entries and their counts as the wizard's.
    mine = run(env, "status", "--json")
    assert mine.returncode == 0, mine.stderr
    doc = json.loads(mine.stdout)
    status = cli(env, "status", "--label", env.disk.label, "--json")
    assert status.returncode == 0, status.stderr
    py = json.loads(status.stdout)
    assert (doc["entries"], doc["assessment"]) == (py["entries"], py["assessment"])
    assert py["assessment"]["systemd_boot"]["entries"], py["assessment"]


def test_apply_wrote_systemd_boots_entries(env: Env) -> None:
    conf = (env.top / "boot_docker/toplayer" / selfupdate.CONF).read_text()
    assert "bootloader=systemd-boot\n" in conf and "default_entry=yes\n" in conf
    assert systemd_boot.ours(env.esp, env.disk.label) == {1: f"dockerboot-{tok(env)}-1.conf"}


@pytest.mark.parametrize("shell", SHELLS)
def test_back_to_the_tag_writes_the_wizards_entries(env: Env, shell: str, tmp_path: Path) -> None:
    if inventory(env).newest.number == 1:
        # The tag moved (same kernel): the wizard's update makes generation 2 (a copy).
        test_update.move_tag(env, "sd-v2", IMAGE)
        wizard(env, "update", "--yes")
    wizard(env, "rollback", "--yes")
    inv = inventory(env)
    n, gone = inv.newest.number, inv.previous.number
    assert inv.newest.pinned
    conf = env.esp / systemd_boot.LOADER_CONF
    conf_before = conf.read_bytes()
    assert conf_before == (qemu.STOCK_LOADER_CONF + systemd_boot.OURS
                           + f"\ndefault dockerboot-{tok(env)}-*\n").encode()
    rollback_entry = systemd_boot.ours(env.esp, env.disk.label)[n]

    runs_before = set(Path("/run").glob("dockerboot-update.*"))
    r = run(env, shell=shell)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not left_in_run(runs_before)  # its temp files ($run/sd.*) went with it
    assert "is a rollback to @" in r.stdout and "no build needed" in r.stdout, r.stdout
    inv = inventory(env)
    assert [g.number for g in inv.generations] == [n, n + 1]
    assert not inv.newest.pinned
    own = env.esp / f"EFI/dockerboot/{tok(env)}"
    for line in (f"wrote {own}/{n + 1}/vmlinuz", f"wrote {own}/{n + 1}/initrd.img",
                 f"removed {own}/{gone}/vmlinuz", f"removed {own}/{gone}/initrd.img"):
        assert f"dockerboot-update: {line}\n" in r.stdout, r.stdout
    # The new default is counted when the image marks its boots good; the
    # rollback's entry keeps its name (and so its count); generation `gone` left.
    new = f"{systemd_boot.entry_id(env.disk.label, n + 1)}" + (
        f"+{systemd_boot.TRIES}" if counting(env) else "") + ".conf"
    assert systemd_boot.ours(env.esp, env.disk.label) == {n: rollback_entry, n + 1: new}
    assert f"dockerboot-update: wrote {env.esp}/loader/entries/{new}\n" in r.stdout
    assert sorted(p.name for p in own.iterdir()) == [str(n), str(n + 1)]
    assert (env.esp / "EFI/dockerboot/owned").read_bytes() == expected_owned(env)
    # The user's own entry and loader.conf: every byte kept.
    assert (env.esp / systemd_boot.ENTRIES_DIR / "debian-6.1.conf").read_bytes() == USER_ENTRY
    assert conf.read_bytes() == conf_before
    assert not list(own.rglob("*.bak")) and not list(entries_dir(env).glob("*.bak"))
    assert_same_as_python(env, tmp_path)
    # Run again: up to date, nothing to repair, no byte changed.
    before = tree(env.esp)
    r = run(env, shell=shell)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr
    assert "do not name" not in r.stdout and tree(env.esp) == before


def test_dry_run_changes_nothing(env: Env, tmp_path: Path) -> None:
    wizard(env, "rollback", "--yes")
    before, esp_before = snapshot(env), tree(env.esp)
    # An ESP without systemd-boot: one line, before anything is made.
    (tmp_path / "EFI/BOOT").mkdir(parents=True)
    for args in ((), ("--dry-run",)):
        r = run(env, *args, esp=tmp_path)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stdout + r.stderr
        assert "no systemd-boot on any FAT filesystem" in r.stderr, r.stderr
        assert snapshot(env) == before
    r = run(env, "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"would make generation {inventory(env).newest.number + 1}" in r.stdout, r.stdout
    assert "systemd-boot" in r.stdout
    assert snapshot(env) == before and tree(env.esp) == esp_before


def test_a_copy_place_holding_a_users_file_is_refused(env: Env, tmp_path: Path) -> None:
    """Refused in one line, nothing on the ESP changed; once moved away, the next run names
    the newest generation (if the refused run made it: a generation no entry names)."""
    inv = inventory(env)
    assert inv.newest.pinned  # the dry run's rollback still holds
    planted = env.esp / f"EFI/dockerboot/{tok(env)}/{inv.newest.number + 1}/initrd.img"
    planted.parent.mkdir()
    planted.write_bytes(b"the user's own initrd\n")
    before = tree(env.esp)
    for shell in SHELLS:
        r = run(env, shell=shell)
        assert r.returncode == 1, r.stdout + r.stderr
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert f"{planted} was not written by dockerboot-wizard" in r.stderr, r.stderr
        assert tree(env.esp) == before
    assert planted.read_bytes() == b"the user's own initrd\n"
    numbers = [g.number for g in inventory(env).generations]
    assert numbers[:2] == [inv.previous.number, inv.newest.number] and len(numbers) <= 3
    planted.unlink()
    r = run(env)
    assert r.returncode == 0, r.stdout + r.stderr
    if len(numbers) == 3:  # made by the refused run: named now, as after a kill
        assert f"do not name generation {numbers[-1]} yet" in r.stdout, r.stdout
    newest = inventory(env).newest
    assert not newest.pinned and newest.number == inv.newest.number + 1
    assert (env.esp / "EFI/dockerboot/owned").read_bytes() == expected_owned(env)
    assert_same_as_python(env, tmp_path)


def test_links_and_planted_owned_lines_are_never_followed(env: Env, tmp_path: Path) -> None:
    """A symlink named like an old generation's entry, lines in ``owned`` naming files
    outside the wizard's directory (one walking out with ``..``): none is touched."""
    wizard(env, "rollback", "--yes")
    inv = inventory(env)
    victim = tmp_path / "precious"
    victim.write_bytes(b"keep me\n")
    entries = env.esp / systemd_boot.ENTRIES_DIR
    link = entries / f"{systemd_boot.entry_id(env.disk.label, inv.previous.number - 1)}.conf"
    link.symlink_to(victim)
    other = env.esp / "EFI/other/7/grubx64.efi"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another system's loader\n")
    digest = esp_files.digest(other.read_bytes())
    extra = (f"{digest} EFI/dockerboot/{tok(env)}/{inv.previous.number}/../../../other/7/"
             f"grubx64.efi\n{digest} EFI/other/7/grubx64.efi\n"
             f"- EFI/dockerboot/{tok(env)}/1/..\n").encode()
    owned = env.esp / "EFI/dockerboot/owned"
    owned.write_bytes(owned.read_bytes() + extra)
    r = run(env, shell="busybox sh")
    assert r.returncode == 0, r.stdout + r.stderr
    assert link.is_symlink() and victim.read_bytes() == b"keep me\n"
    assert other.read_bytes() == b"another system's loader\n"
    assert str(other) not in r.stdout and str(link) not in r.stdout
    assert [g.number for g in inventory(env).generations] == [inv.newest.number,
                                                              inv.newest.number + 1]
    # The planted lines stay in owned, sorted in as the Python sorts them.
    assert owned.read_bytes() == expected_owned(env, extra)
    assert_same_as_python(env, tmp_path)
