"""A real kernel update: the tag moves from Debian's 6.1 kernel to bookworm-backports 6.12.

v1 is the cached debootstrapped rootfs (``initramfs-tools`` or ``dracut``), v2
the same after a Dockerfile switched to backports (``<generator>-bpo``: only
the 6.12 kernel, the 6.1 package purged), imported under the same tag on a
loop btrfs with a private dockerd.  Generation 1 is built from v1 as
``test_generations_build`` does; then ``initramfs.detect`` must see the new
kernel, the fingerprint must name the kernel change, and the build of v2
becomes generation 2 with the 6.12 kernel and an initramfs carrying its btrfs
module.  No boot here (the e2e tests boot).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.generation_builds import BuildLab as Env
from tests.integration.generation_builds import build_generation, build_lab
from tests.lab import lab
from wizard.boot import generations, initramfs
from wizard.boot.fingerprint import fingerprint, kernel_version_of

# Side by side with the boots, its module fixture on one worker (one build lab).
pytestmark = [pytest.mark.lab, pytest.mark.side_by_side,
              pytest.mark.xdist_group("kernel_update_build")]

IMAGE = "dbw-ku/desk:latest"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with build_lab(tmp_path_factory.mktemp("kernel-update")) as e:
        yield e


def _initrd_files(env: Env, initrd: Path) -> list[str]:
    """The initramfs's file list, read by the image's own lsinitramfs (both images have it)."""
    out = env.dd.daemon.docker("run", "--rm", "--network", "none", "-v", f"{initrd}:/initrd:ro",
                               IMAGE, "lsinitramfs", "/initrd", timeout=300).stdout
    return out.splitlines()


@pytest.mark.parametrize("generator", ["initramfs-tools", "dracut"])
def test_kernel_update_under_the_same_tag_becomes_generation_two(env: Env,
                                                                 generator: str) -> None:
    boot = env.dd.top / generator / "boot_docker"
    boot.mkdir(parents=True)
    lab.import_rootfs(env.dd.daemon, IMAGE, generator)
    first = build_generation(env.client, boot, IMAGE)
    assert first.number == 1 and first.inputs is not None
    assert first.inputs.generator == generator
    assert first.kernel_version is not None and first.kernel_version.startswith("6.1.")
    v1 = str(env.client.images.get(IMAGE).id)

    # The Dockerfile switched to backports: a fresh rebuild, the same tag.
    lab.import_rootfs(env.dd.daemon, IMAGE, f"{generator}-bpo")
    assert str(env.client.images.get(IMAGE).id) != v1
    target = initramfs.detect(env.client, IMAGE)
    assert target.generator == generator
    assert target.kver.startswith("6.12.") and target.kver != first.kernel_version
    assert target.kernel_path == f"/boot/vmlinuz-{target.kver}"
    inputs = fingerprint(target.generator, target.kver)
    assert inputs.kernel_version != first.inputs.kernel_version
    assert inputs.changes(first.inputs) == [f"kernel {first.kernel_version} -> {target.kver}"]

    second = build_generation(env.client, boot, IMAGE)
    inv = generations.load(boot)
    assert second.number == 2 and (inv.newest, inv.previous) == (second, first)
    assert second.inputs == inputs and second.kernel_version == target.kver
    assert kernel_version_of(boot / second.loader) == target.kver
    assert kernel_version_of(boot / first.loader) == first.kernel_version  # untouched
    initrd = boot / second.initrd_path
    assert initrd.stat().st_size > 1 << 20
    # The new initramfs carries the new kernel's btrfs module (6.12's are .ko.xz),
    # and nothing of the old kernel's.
    files = _initrd_files(env, initrd)
    assert any(re.search(rf"modules/{re.escape(target.kver)}/.*/btrfs\.ko", f) for f in files)
    assert not any(f"modules/{first.kernel_version}/" in f for f in files)
