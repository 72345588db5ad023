"""``dockerboot_main late``: the partition's top level stays mounted for the root mount.

The adapters of initramfs-tools, dracut and mkinitcpio (busybox) call the
core with ``late``: after a success the top level stays mounted so the
generator's root mount shares the filesystem (no unmount, which commits and
closes it, then a fresh open); ``dockerboot_finish`` unmounts it once the
root is mounted.  A failure unmounts everything as without ``late``.
Under busybox ash and dash on the real loop btrfs and docker store.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import SINGLE, HookEnv

pytestmark = pytest.mark.lab

SHELLS = [("busybox", "sh"), ("dash",)]
RW = "rw_late"


def _mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def _cmdline(env: HookEnv, image: str) -> str:
    return (f"root=LABEL={env.disk.label} rootflags=subvol={RW} docker_image={image} "
            "dockerboot.tries=0")


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_late_keeps_the_top_level_until_finish(env: HookEnv, shell: tuple[str, ...]) -> None:
    top = env.workdir / "run" / "root"
    r = env.run_core(_cmdline(env, SINGLE), args=("late",), shell=shell)
    try:
        assert r.returncode == 0, r.stderr
        assert "is now a fresh snapshot" in r.stderr
        assert _mounted(top), "late: the top level stays mounted"
        assert (top / RW / "etc/dbw-image-marker").exists()
        # The root mount shares it: a subvolume mount of the same filesystem.
        sysroot = env.workdir / "sysroot"
        sysroot.mkdir(exist_ok=True)
        subprocess.run(["mount", "-o", f"subvol={RW}", env.disk.btrfs_dev, sysroot], check=True)
        try:
            f = env.run_core("", func="dockerboot_finish", shell=shell)
            assert f.returncode == 0 and f.stderr == "", f.stderr
            assert not _mounted(top) and not top.exists()
            assert (sysroot / "etc/dbw-image-marker").exists()
        finally:
            subprocess.run(["umount", sysroot], check=True)
    finally:
        subprocess.run(["umount", top], capture_output=True)
    # Nothing left to unmount: finish says nothing and succeeds.
    f = env.run_core("", func="dockerboot_finish", shell=shell)
    assert f.returncode == 0 and f.stderr == ""


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_late_failure_unmounts_everything(env: HookEnv, shell: tuple[str, ...]) -> None:
    r = env.run_core(_cmdline(env, "nosuch:1"), args=("late",), shell=shell)
    assert r.returncode != 0
    assert "dockerboot: image nosuch:1 is not in" in r.stderr
    assert str(env.workdir / "run") not in Path("/proc/self/mounts").read_text()


def test_without_late_nothing_stays_mounted(env: HookEnv) -> None:
    r = env.run_core(_cmdline(env, SINGLE))
    assert r.returncode == 0, r.stderr
    assert str(env.workdir / "run") not in Path("/proc/self/mounts").read_text()
