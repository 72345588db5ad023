"""``update``, ``rollback`` and ``status`` through the installed CLI on the real lab.

A real dockerd on a loop btrfs, the debootstrapped sample image, a rEFInd
ESP: apply makes generation 1; the tag moves to a new image with the same
kernel and ``update`` copies the pair (no build) as generation 2 with the
"previous" entry pinned by ID; ``rollback`` makes the previous image the
default by ID; old generations go with their pins; a SIGKILL at every step
of ``update`` leaves entries that name complete generations, and the next
run converges.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cli_apply import Env, assert_one_line_error, cli, snapshot
from tests.lab import lab, scenario
from wizard.boot import generations
from wizard.store.images import resolve_subvolume

pytestmark = pytest.mark.lab

IMAGE = "dbw-up/debian:12"
TINY = "dbw-up/tiny:1"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("update")
    with lab.cli_lab(work, IMAGE, TINY) as (dd, esp):
        yield Env(dd.disk, dd.top, dd.daemon, esp)


def image_id(env: Env, ref: str = IMAGE) -> str:
    return env.daemon.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()


def move_tag(env: Env, marker: str, image: str = IMAGE) -> str:
    """Commit a new image (same kernel) under ``image``; its ID."""
    name = f"mv-{marker}"
    env.daemon.docker("create", "--name", name, "--network", "none", image, "/bin/true")
    env.daemon.docker("commit", "--change", f"LABEL marker={marker}", name, image)
    env.daemon.docker("rm", name)
    return image_id(env, image)


def entries(env: Env) -> list[dict[str, str]]:
    """The wizard's menuentries in refind.conf: title, loader, docker_image."""
    text = (env.esp / "EFI/BOOT/refind.conf").read_text()
    block = text[text.index("# >>> dockerboot-wizard"):text.index("# <<< dockerboot-wizard")]
    out = []
    for chunk in block.split("menuentry ")[1:]:
        opts = re.search(r'options "([^"]*)"', chunk)
        assert opts is not None
        out.append({"title": chunk.split('"')[1],
                    "loader": re.search(r"loader (\S+)", chunk).group(1),  # type: ignore[union-attr]
                    "image": re.search(r"docker_image=(\S+)", opts.group(1)).group(1)})  # type: ignore[union-attr]
    for e in out:
        assert (env.top / e["loader"]).is_file(), e  # every entry names a complete kernel
    return out


def status(env: Env) -> dict:
    r = cli(env, "status", "--label", env.disk.label, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def up(env: Env, *args: str) -> subprocess.CompletedProcess:
    return cli(env, "update", "--label", env.disk.label, "--esp", str(env.esp), *args)


def test_apply_makes_generation_one(env: Env) -> None:
    r = cli(env, "apply", "--esp", str(env.esp), "--label", env.disk.label, "--image", IMAGE,
            "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    inv = generations.load(env.top / "boot_docker")
    assert [g.number for g in inv.generations] == [1]
    assert inv.newest.image_id == image_id(env) and inv.newest.kernel_version
    assert not (env.top / "boot_docker/vmlinuz").exists()  # no flat pair any more
    [default] = entries(env)
    assert default["loader"] == "boot_docker/gen/1/vmlinuz" and default["image"] == IMAGE
    s = status(env)
    assert s["version"] == 1 and s["generation"]["number"] == 1
    assert s["pending"]["update"] is False


def test_update_when_nothing_moved_changes_nothing(env: Env) -> None:
    before = snapshot(env)
    r = up(env, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "up to date" in r.stdout
    assert snapshot(env) == before


def test_tag_moved_same_kernel_copies_the_pair_without_a_build(env: Env) -> None:
    v1 = image_id(env)
    v2 = move_tag(env, "v2")
    pending = status(env)["pending"]
    # The default entry boots the tag: the next boot takes v2 with generation 1 as it is.
    assert pending["update"] is False and pending["build_needed"] is False
    before = snapshot(env)
    dry = up(env, "--dry-run")
    assert dry.returncode == 0 and "copied from generation 1" in dry.stdout, dry.stdout
    assert snapshot(env) == before
    r = up(env, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Building" not in r.stdout  # no build container: the pair was copied
    boot = env.top / "boot_docker"
    assert (boot / "gen/2/vmlinuz").read_bytes() == (boot / "gen/1/vmlinuz").read_bytes()
    default, previous = entries(env)
    assert (default["loader"], default["image"]) == ("boot_docker/gen/2/vmlinuz", IMAGE)
    assert (previous["loader"], previous["image"]) == ("boot_docker/gen/1/vmlinuz", v1)
    assert previous["title"].startswith("Previous generation 1")
    # The previous image survives the clean-ups a user runs, by its pin.
    env.daemon.docker("image", "prune", "-a", "-f")
    assert resolve_subvolume(env.top / "docker", v1).is_dir()
    s = status(env)
    assert (s["generation"]["image_id"], s["previous"]["image_id"]) == (v2, v1)
    assert s["pending"]["update"] is False


def test_rollback_boots_the_previous_image_by_id(env: Env) -> None:
    v1 = generations.load(env.top / "boot_docker").previous.image_id
    r = cli(env, "rollback", "--label", env.disk.label, "--esp", str(env.esp), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    default, previous = entries(env)
    assert default["image"] == v1 and "rolled back" in default["title"]
    assert default["loader"] == "boot_docker/gen/3/vmlinuz"
    assert previous["loader"] == "boot_docker/gen/2/vmlinuz"
    s = status(env)
    assert s["generation"]["pinned"] is True and s["generation"]["image_id"] == v1
    # The tag still names the image rolled back from: the rollback holds, nothing is advised.
    assert s["rollback"]["holds"] is True and s["rollback"]["from"] == [image_id(env)]
    assert s["pending"]["update"] is False
    # Generation 1 is no entry's any more and was removed, files and pin.
    assert not (env.top / "boot_docker/gen/1").exists()
    names = env.daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not any(n.endswith("-1") and "pin" in n for n in names), names


def test_update_after_rollback_returns_to_the_tag(env: Env) -> None:
    r = up(env, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    default, _ = entries(env)
    assert default["image"] == IMAGE and default["loader"] == "boot_docker/gen/4/vmlinuz"


def test_rollback_refusals_are_one_line(env: Env, tmp_path: Path) -> None:
    r = cli(env, "rollback", "--label", "no-such-label-xyz", "--yes")
    assert_one_line_error(r, "no-such-label-xyz")
    r = cli(env, "status", "--label", "no-such-label-xyz")
    assert_one_line_error(r, "no-such-label-xyz")
    before = snapshot(env)
    r = up(env, "--yes", "--esp", str(tmp_path))  # no rEFInd there
    assert snapshot(env) == before
    assert r.returncode in (0, 1)  # up to date needs no ESP write; else one line
    if r.returncode == 1:
        assert_one_line_error(r, "refind.conf")


def test_a_copy_without_a_build_removes_an_earlier_runs_scratch(env: Env) -> None:
    # A killed run may leave a scratch directory; the next run that copies a pair (the
    # same kernel: no build) removes it, as a build does.
    left = env.top / "boot_docker" / ".build-leftover"
    left.mkdir()
    (left / "vmlinuz.new").write_bytes(b"half")
    move_tag(env, "scratch")
    r = up(env, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed .build-leftover, left by an earlier run" in r.stdout
    assert not left.exists()


def test_the_scratch_cleanup_never_follows_a_link_nor_touches_other_names(
        env: Env, tmp_path: Path) -> None:
    boot = env.top / "boot_docker"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep\n")
    (boot / ".build-link").symlink_to(victim)
    (boot / ".build-file").write_text("a file, not a scratch directory\n")
    (boot / "notes.build-x").mkdir()
    try:
        move_tag(env, "hostile-scratch")
        r = up(env, "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        assert (victim / "precious").read_text() == "keep\n"
        assert (boot / ".build-link").is_symlink() and (boot / ".build-file").is_file()
        assert (boot / "notes.build-x").is_dir()
    finally:
        for name in (".build-link", ".build-file"):
            (boot / name).unlink(missing_ok=True)
        (boot / "notes.build-x").rmdir()


def _run_killed(env: Env, boundary: str) -> int:
    cmd = [scenario.wizard_command(), "update", "--label", env.disk.label, "--esp",
           str(env.esp), "--yes"]
    with subprocess.Popen(cmd, env=env.daemon.env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if boundary in line:
                os.kill(proc.pid, signal.SIGKILL)
                break
        return proc.wait()


@pytest.mark.parametrize("boundary", ["==> [initramfs]", "done: generation",
                                      "==> [bootloader]", "removed generation",
                                      "[bootloader] done"])
def test_kill_at_every_step_of_update_leaves_a_bootable_set(env: Env, boundary: str) -> None:
    move_tag(env, "kill-" + re.sub(r"[^a-z]", "", boundary))
    code = _run_killed(env, boundary)
    # Every update here removes the oldest generation, so each boundary is reached.
    assert code == -signal.SIGKILL, f"never reached {boundary!r}"
    entries(env)  # every entry names a complete kernel, whatever was killed
    r = up(env, "--yes")  # the next run converges
    assert r.returncode == 0, r.stdout + r.stderr
    # A SIGKILL may land after a scratch directory was made (how soon depends on the
    # machine's load): the next run removes it, whatever it holds.
    assert not [p for p in (env.top / "boot_docker").iterdir() if p.name.startswith(".build-")]
    default, _ = entries(env)
    inv = generations.load(env.top / "boot_docker")
    assert default["loader"] == f"boot_docker/{inv.newest.loader}"
    assert inv.newest.image_id == image_id(env)
    assert status(env)["pending"]["update"] is False
