"""The booted system's ``dockerboot-update`` against the wizard's own Python, on the real lab.

A real dockerd on a loop btrfs, the debootstrapped sample image, a rEFInd
ESP directory.  ``apply`` puts the command, its settings and units into the top
layer, its parts and the build assets onto the partition; here the command runs from there
(``sh``, as the booted system runs it; busybox and dash) with the test hooks
pointing it at the mounted partition, the ESP's refind.conf and the lab's
dockerd.  Every result is checked against what the Python core computes
from the same disk: the records it writes validate and encode byte for
byte as the wizard's, the rEFInd block is ``bootset.current_block``'s, the
status document equals ``status --json``'s, and afterwards the wizard's own
``update`` finds nothing to do.  One real kernel update (6.1 -> 6.12) is
built by the command in a container of the new image.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.integration import test_update
from tests.integration.test_cli_apply import Env, cli, snapshot
from tests.lab import lab, scenario
from wizard.boot import bootloader, bootset, generations
from wizard.boot.fingerprint import assets_hash
from wizard.boot.generation_record import encode
from wizard.settings import config
from wizard.toplayer import selfupdate

pytestmark = pytest.mark.lab

IMAGE = "dbw-self/debian:12"
TINY = "dbw-self/tiny:1"
SHELLS = ["busybox sh", "dash"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("selfupdate")
    with lab.cli_lab(work, IMAGE, TINY) as (dd, esp):
        e = Env(dd.disk, dd.top, dd.daemon, esp)
        r = cli(e, "apply", "--esp", str(esp), "--label", dd.disk.label, "--image", IMAGE,
                "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        (work / "cmdline").write_text(
            "root=LABEL=x docker_image=dbw-self/debian:12 dockerboot.generation=1\n")
        yield e


def toplayer(env: Env) -> Path:
    return env.top / "boot_docker/toplayer"


def settings(env: Env) -> config.Settings:
    saved = config.load(env.top)
    assert saved is not None
    return replace(saved, image="dbw-self/debian:12")


def run(env: Env, *args: str, shell: str = "dash",
        mount: bool = False) -> subprocess.CompletedProcess:
    """The top layer's command; with ``mount`` it mounts the partition by label itself."""
    return scenario.self_update(env.daemon, env.top, refind_conf(env), *args, shell=shell,
                                mount=mount, cmdline=env.esp.parent / "cmdline")


def refind_conf(env: Env) -> Path:
    return env.esp / "EFI/BOOT/refind.conf"


def image_id(env: Env) -> str:
    return test_update.image_id(env, IMAGE)


def commit(env: Env, marker: str) -> str:
    return test_update.move_tag(env, marker, IMAGE)


def python_status(env: Env) -> dict:
    r = cli(env, "status", "--label", env.disk.label, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def assert_same_as_python(env: Env, with_generation: bool = False) -> None:
    """The records, the rEFInd block and the status are what the wizard itself makes."""
    boot = env.top / "boot_docker"
    inv = generations.load(boot)
    assert not inv.problems
    for gen in inv.generations:
        if not gen.legacy:
            assert (boot / f"gen/{gen.number}/generation.json").read_bytes() == encode(gen)
    old, new = bootloader.plan_refind(refind_conf(env), bootset.current_block(env.top,
                                                                            settings(env)))
    assert old == new, "the command's block differs from the wizard's"
    for shell in SHELLS:
        r = run(env, "status", "--json", shell=shell)
        assert r.returncode == 0, r.stderr
        mine = json.loads(r.stdout)
        py = python_status(env)
        # The CLI has no /proc/cmdline of the booted system: compare like with like
        # (the hook's own record of the generation is read by both).
        for doc in (mine, py):
            booted = doc["booted"]
            if booted and not (with_generation and booted["generation_source"] == "state"):
                booted.pop("generation"), booted.pop("generation_source")
        # The same things are problems (each tool words its own lines).
        assert bool(mine.pop("problems")) == bool(py.pop("problems")), (mine, py)
        assert mine == py


def test_apply_puts_the_command_into_the_top_layer(env: Env) -> None:
    tl = toplayer(env)
    command = tl / selfupdate.COMMAND
    assert os.stat(command).st_mode & 0o777 == 0o755
    conf = (tl / selfupdate.CONF).read_text()
    assert f"image={IMAGE}\n" in conf and "auto=1\n" in conf
    assert "docker_image=@IMAGE@ " in conf
    # The shipped assets are the ones a build from the wizard installs.
    for generator in ("initramfs-tools", "dracut"):
        key = f"assets_{generator.replace('-', '_')}="
        parts = env.top / "boot_docker" / selfupdate.PARTS_DIR
        assert f"{key}{assets_hash(generator, parts / 'assets')}\n" in conf
    assert (tl / "etc/systemd/system/dockerboot-update.path").is_file()
    # A second apply has nothing to write there, nor on the partition.
    s = settings(env)
    assert selfupdate.plan(tl, s) == [] and selfupdate.install_parts(env.top, s) == []
    # Only the command, its settings and units are in the top layer (the hook copies it
    # at every boot); the parts are on the partition.
    assert sorted(str(p.relative_to(tl)) for p in tl.rglob("*") if p.is_file()
                  and "dockerboot" in str(p)) == sorted(selfupdate.top_files(s))


def store_listing(env: Env) -> list[str]:
    """Every name on the partition but the docker store's own churn: what must survive."""
    return sorted(str(p.relative_to(env.top)) for p in env.top.rglob("*")
                  if not str(p.relative_to(env.top)).startswith(("docker/containers",
                                                                 "docker/network")))


def test_its_own_mount_of_the_partition_leaves_every_file(env: Env) -> None:
    # Found by the real boot: the mount was still busy (the lock's descriptor)
    # when the clean-up removed its run directory, and a recursive delete there
    # went through the mount into the whole partition.  Now nothing recursive.
    def mounts_of_the_partition() -> list[str]:
        # Only this partition's: other tests' disks may come and go meanwhile.
        return [line for line in Path("/proc/mounts").read_text().splitlines()
                if line.split()[0] == env.disk.btrfs_dev]

    listing, mounts = store_listing(env), mounts_of_the_partition()
    runs_before = set(Path("/run").glob("dockerboot-update.*"))
    for args in (("status", "--json"), (), ("--dry-run",)):
        for shell in SHELLS:
            r = run(env, *args, shell=shell, mount=True)
            assert r.returncode == 0, r.stdout + r.stderr
            assert mounts_of_the_partition() == mounts  # its mount is gone
    assert store_listing(env) == listing
    assert not left_in_run(runs_before)


def left_in_run(before: set[Path], timeout: float = 30) -> set[Path]:
    """``/run/dockerboot-update.*`` made since ``before`` and still there after ``timeout``.

    Another module's test may run the script meanwhile (make test runs two
    modules at a time): its directory goes when its run ends, while one this
    test's runs left stays.
    """
    deadline = time.monotonic() + timeout
    while ((new := set(Path("/run").glob("dockerboot-update.*")) - before)
           and time.monotonic() < deadline):
        time.sleep(0.5)
    return new


def test_status_json_is_the_wizards(env: Env) -> None:
    assert_same_as_python(env)
    r = run(env, "status", "--json")
    doc = json.loads(r.stdout)
    assert doc["generation"]["number"] == 1 and doc["pending"]["update"] is False


@pytest.mark.parametrize("boot", [
    "ref={image}\nid={id}\nconfigured_id={id}\nfallback=\nkernel={kver}\ntries=1\ngeneration=1\n",
    "ref={image}\nid={id}\nconfigured_id=\nfallback={image} has no /lib/modules/9.9 for "
    "the running kernel \"x\" \\ y\nkernel={kver}\ntries=2\n",
    "ref=sha256:{hex}\nid={id}\nconfigured_id={id}\nfallback=\nkernel={kver}\ntries=0\n"
    "generation=99\n",
    "ref=\nid=nonsense\n",
    "id={id}\nkernel=../../x\ntries=x\ngeneration=1;rm\n",
    "ref={image}\nid={id}\nconfigured_id=\nfallback={image} is not in the docker store\n"
    "kernel={kver}\ntries=1\ngeneration=1\nsource=good-root\n",
    "ref={image}\nid={id}\nconfigured_id={id}\nfallback=\nkernel={kver}\ntries=1\n"
    "generation=1\nsource=x;rm\n"])
def test_status_reads_the_hooks_state_like_the_wizard(env: Env, boot: str) -> None:
    gen = generations.load(env.top / "boot_docker").newest
    state = env.top / "boot_docker/state"
    state.mkdir(exist_ok=True)
    values = {"image": IMAGE, "id": gen.image_id, "hex": gen.image_id[7:],
              "kver": gen.kernel_version}
    try:
        (state / "boot").write_text(boot.format(**values))
        (state / "good").write_text(f"{gen.image_id}\n")
        (state / "failed").write_text(f"sha256:{'e' * 64} 2\n")
        assert_same_as_python(env, with_generation=True)
    finally:
        for name in ("boot", "good", "failed"):
            (state / name).unlink()


def test_status_lists_dockerboots_copies_like_the_wizard(env: Env) -> None:
    """apply made the copy of generation 1's image (``boot_docker/roots``); what is
    not dockerboot's there is a problem for both, and both measure the space alike."""
    from wizard.boot import roots
    from wizard.store.images import resolve_subvolume
    gen = generations.load(env.top / "boot_docker").newest
    d = env.top / roots.ROOTS_DIR
    assert roots.is_ours(d / gen.image_id[7:])
    tiny = test_update.image_id(env, TINY)
    assert roots.make(env.top, resolve_subvolume(env.top / "docker", tiny), tiny) is None
    hostile = d / ("f" * 64)
    hostile.mkdir()
    (hostile / ".dockerboot-rwlayer").symlink_to("/etc/hostname")
    try:
        doc = json.loads(run(env, "status", "--json").stdout)
        assert [(r["id"], r["kept"]) for r in doc["roots"]] == sorted(
            [(gen.image_id, True), (tiny, False)])
        assert all(isinstance(r["exclusive_bytes"], int) for r in doc["roots"])
        assert any("f" * 64 in p for p in doc["problems"])
        assert_same_as_python(env)
    finally:
        hostile.joinpath(".dockerboot-rwlayer").unlink()
        hostile.rmdir()
        assert roots.delete(d / tiny[7:])


def test_up_to_date_changes_nothing(env: Env) -> None:
    before = snapshot(env)
    r = run(env)
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr
    assert snapshot(env) == before


def test_tag_moved_same_kernel_nothing_to_deploy(env: Env) -> None:
    v2 = commit(env, "v2")
    before = snapshot(env)
    for shell in SHELLS:
        r = run(env, shell=shell)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "nothing to deploy, the next boot snapshots @" + v2[7:19] in r.stdout
    assert snapshot(env) == before
    doc = json.loads(run(env, "status", "--json").stdout)
    assert doc["pending"]["image_changed"] is True and doc["pending"]["build_needed"] is False
    assert_same_as_python(env)


def test_after_a_rollback_the_newest_pair_is_copied(env: Env) -> None:
    # The wizard's update (a copy: generation 2), then its rollback (generation 3, pinned).
    for args in (("update", "--esp", str(env.esp), "--yes"),
                 ("rollback", "--esp", str(env.esp), "--yes")):
        r = cli(env, *args[:1], "--label", env.disk.label, *args[1:])
        assert r.returncode == 0, r.stdout + r.stderr
    inv = generations.load(env.top / "boot_docker")
    assert inv.newest.pinned and inv.newest.number == 3
    conf_before = refind_conf(env).read_bytes()
    r = run(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "is a rollback to @" in r.stdout and "(run by hand)" in r.stdout, r.stdout
    assert "no build needed" in r.stdout
    inv = generations.load(env.top / "boot_docker")
    assert [g.number for g in inv.generations] == [3, 4]  # 2 went, with its pin
    assert not inv.newest.pinned and inv.newest.image_id == image_id(env)
    backups = sorted(refind_conf(env).parent.glob("refind.conf.dockerboot-*.bak"))
    assert backups and backups[-1].read_bytes() == conf_before
    gone = env.daemon.docker("ps", "-a", "-q", "--filter",
                             "label=dockerboot-wizard.pin.generation=2").stdout.strip()
    assert gone == ""
    for n in (3, 4):
        assert env.daemon.docker("ps", "-a", "-q", "--filter",
                                 f"label=dockerboot-wizard.pin.generation={n}").stdout.strip()
    assert_same_as_python(env)


def test_a_kernel_update_is_built_by_the_command(env: Env) -> None:
    old_kernel = generations.load(env.top / "boot_docker").newest.kernel_version
    lab.import_rootfs(env.daemon, IMAGE, "initramfs-tools-bpo")
    v3 = image_id(env)
    dry_before = snapshot(env)
    dry = run(env, "--dry-run")
    assert dry.returncode == 0 and "would make generation 5" in dry.stdout, dry.stdout + dry.stderr
    assert snapshot(env) == dry_before
    # Settings that say GRUB or systemd-boot, on an ESP where neither is (rEFInd's):
    # where the entries go is looked for first, so one line and nothing changed
    # (the writes themselves: tests/unit/test_selfupdate_grub.py, the e2e GRUB boot,
    # tests/integration/test_selfupdate_sdboot.py).
    conf = toplayer(env) / selfupdate.CONF
    saved = conf.read_bytes()
    for loader, says in (("grub", "no EFI/dockerboot/grub.cfg for LABEL="),
                         ("systemd-boot", "no systemd-boot")):
        conf.write_text("".join(line for line in conf.read_text().splitlines(keepends=True)
                                if not line.startswith("bootloader=")) + f"bootloader={loader}\n")
        refused = scenario.self_update(env.daemon, env.top, refind_conf(env), esp=env.esp)
        assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert says in refused.stderr
        conf.write_bytes(saved)
        assert snapshot(env) == dry_before
    r = run(env, shell="busybox sh")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"kernel {old_kernel} -> 6.12." in r.stdout and "mkinitramfs" in r.stdout
    inv = generations.load(env.top / "boot_docker")
    assert [g.number for g in inv.generations] == [4, 5]
    assert inv.newest.image_id == v3 and inv.newest.kernel_version.startswith("6.12.")
    assert_same_as_python(env)
    # As if it had been killed before the entries were written: the next run names it.
    named = refind_conf(env).read_bytes()
    backup = sorted(refind_conf(env).parent.glob("refind.conf.dockerboot-*.bak"))[-1]
    refind_conf(env).write_bytes(backup.read_bytes())
    r = run(env)
    assert r.returncode == 0 and "do not name generation 5 yet" in r.stdout, r.stdout + r.stderr
    assert refind_conf(env).read_bytes() == named
    # The wizard's own update agrees: nothing left to do.
    r = cli(env, "update", "--label", env.disk.label, "--esp", str(env.esp), "--yes")
    assert r.returncode == 0 and "up to date" in r.stdout, r.stdout + r.stderr


def test_collection_never_deletes_what_a_record_does_not_own(env: Env, tmp_path: Path) -> None:
    boot = env.top / "boot_docker"
    # An old generation whose record is valid, but whose kernel is a symlink to a
    # file outside and whose directory holds a file of the user's.
    victim = tmp_path / "precious"
    victim.write_bytes(b"keep me\n")
    old = boot / "gen/1"
    old.mkdir()
    four = generations.load(boot).get(4)
    rec = (boot / "gen/4/generation.json").read_text().replace('"number": 4', '"number": 1')
    rec = rec.replace(four.image_id, "sha256:" + "a" * 64)
    (old / "generation.json").write_text(rec)
    (old / "vmlinuz").symlink_to(victim)
    (old / "initrd.img").write_bytes(b"x")
    (old / "notes.txt").write_bytes(b"the user's\n")
    # Generation 4's image is the hook's last good one: it stays, whatever its age.
    state = boot / "state"
    state.mkdir(exist_ok=True)
    (state / "good").write_text(f"{four.image_id}\n")
    lab.import_rootfs(env.daemon, IMAGE, "initramfs-tools")  # back to 6.1: a build
    r = run(env)
    (state / "good").unlink()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kept generation 4: the hook boots its image" in r.stdout
    assert victim.read_bytes() == b"keep me\n" and (old / "vmlinuz").is_symlink()
    assert (old / "notes.txt").read_bytes() == b"the user's\n"
    assert "left boot_docker/gen/1: it holds files the wizard did not make" in r.stdout
    assert [g.number for g in generations.load(boot).generations][-3:] == [4, 5, 6]
