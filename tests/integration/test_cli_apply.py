"""The installed CLI against the real lab: udev labels, a private dockerd, real images.

Every user mistake ends in exactly one line on stderr, exit status 1, and no
change on disk; ``--dry-run`` prints the plan and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import lab, scenario

pytestmark = pytest.mark.lab

IMAGE = "dbw-cli/debian:12"
TINY = "dbw-cli/tiny:1"


@dataclass
class Env:
    disk: lab.Disk
    top: Path
    daemon: lab.Dockerd
    esp: Path


def snapshot(env: Env) -> dict[str, bytes]:
    """Every file the tool could write: the ESP and the partition's boot_docker/."""
    files = {}
    for root in (env.esp, env.top / "boot_docker"):
        if root.exists():
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    files[str(p)] = p.read_bytes()
    return files


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("cli")
    with lab.cli_lab(work, IMAGE, TINY) as (dd, esp):
        yield Env(dd.disk, dd.top, dd.daemon, esp)


def cli(env: Env, *args: str, docker_host: str | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    e = env.daemon.env()
    if docker_host:
        e["DOCKER_HOST"] = docker_host
    return subprocess.run([scenario.wizard_command(), *args], env=e, capture_output=True,
                          text=True, input=stdin, timeout=600)


def apply(env: Env, *args: str, **kw) -> subprocess.CompletedProcess:
    return cli(env, "apply", "--esp", str(env.esp), *args, **kw)


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_partitions_lists_the_label_from_udev(env: Env) -> None:
    r = cli(env, "partitions", "--json")
    assert r.returncode == 0, r.stderr
    found = {p["label"]: p for p in json.loads(r.stdout)}
    assert env.disk.label in found
    assert found[env.disk.label]["device"] == env.disk.btrfs_dev
    plain = cli(env, "partitions")
    assert env.disk.label in plain.stdout


def test_images_lists_the_daemons_images(env: Env) -> None:
    r = cli(env, "images", "--json")
    assert r.returncode == 0, r.stderr
    refs = {i["ref"] for i in json.loads(r.stdout)}
    assert {IMAGE, TINY} <= refs


def test_dry_run_prints_the_plan_and_changes_nothing(env: Env) -> None:
    before = snapshot(env)
    r = apply(env, "--label", env.disk.label, "--image", IMAGE, "--hostname", "box",
              "--kernel-options", "quiet", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"root=LABEL={env.disk.label} rootflags=subvol=docker_rwlayer" in r.stdout
    assert f"docker_image={IMAGE}" in r.stdout and r.stdout.count(" quiet") >= 1
    assert "+box" in r.stdout  # etc/hostname diff
    assert "+# >>> dockerboot-wizard" in r.stdout  # refind.conf diff
    assert "docker_rwlayer" in r.stdout and "initramfs-tools" in r.stdout
    assert "nothing was changed" in r.stdout
    assert snapshot(env) == before
    assert not (env.top / "boot_docker").exists()


def test_without_yes_and_terminal_it_refuses(env: Env) -> None:
    before = snapshot(env)
    r = apply(env, "--label", env.disk.label, "--image", IMAGE, stdin="")
    assert_one_line_error(r, "confirmation", "--yes")
    assert snapshot(env) == before


def test_no_such_label(env: Env) -> None:
    r = apply(env, "--label", "no-such-label-xyz", "--image", IMAGE, "--yes")
    assert_one_line_error(r, "no-such-label-xyz")


def test_no_such_image(env: Env) -> None:
    before = snapshot(env)
    r = apply(env, "--label", env.disk.label, "--image", "nope/missing:9", "--yes")
    assert_one_line_error(r, "nope/missing:9")
    assert snapshot(env) == before


def test_image_that_cannot_be_booted_is_named(env: Env) -> None:
    # (The kernel/btrfs-progs/generator messages are covered in test_initramfs_build.)
    r = apply(env, "--label", env.disk.label, "--image", TINY, "--yes")
    assert_one_line_error(r, TINY, "/bin/sh")


def test_daemon_unreachable(env: Env, tmp_path: Path) -> None:
    r = apply(env, "--label", env.disk.label, "--image", IMAGE, "--yes",
              docker_host=f"unix://{tmp_path}/nothing.sock")
    assert_one_line_error(r, "DOCKER_HOST")


def test_no_refind_conf(env: Env, tmp_path: Path) -> None:
    r = cli(env, "apply", "--label", env.disk.label, "--image", IMAGE, "--esp", str(tmp_path),
            "--yes")
    assert_one_line_error(r, "refind.conf", "--refind-conf")


def test_grub_from_an_image_without_the_signed_pair(env: Env) -> None:
    # Secure Boot needs the image's own shim + GRUB: said in one line, nothing written.
    before = snapshot(env)
    r = apply(env, "--label", env.disk.label, "--image", IMAGE, "--bootloader", "grub", "--yes")
    assert_one_line_error(r, "carries no signed shim + GRUB",
                          "add `shim-signed grub-efi-amd64-signed` to its Dockerfile",
                          "--bootloader refind", "Secure Boot must be off")
    assert snapshot(env) == before


def test_bad_hostname(env: Env) -> None:
    r = apply(env, "--label", env.disk.label, "--image", IMAGE, "--hostname", "bad_host!",
              "--yes")
    assert_one_line_error(r, "hostname")


def test_data_root_on_another_partition(env: Env, tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="1G") as other:
        r = apply(env, "--label", other.label, "--image", IMAGE, "--yes")
    assert_one_line_error(r, "data-root")


def test_wrong_storage_driver(env: Env, tmp_path: Path) -> None:
    with lab.dockerd(env.top / "vfs-root", storage_driver="vfs") as vfs:
        r = apply(env, "--label", env.disk.label, "--image", IMAGE, "--yes",
                  docker_host=vfs.host)
    assert_one_line_error(r, "storage-driver")
    lab.run("rm", "-rf", env.top / "vfs-root")
