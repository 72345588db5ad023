"""Generations from real builds: a real kernel + initramfs, two entries, the pin, status.

A real initramfs-tools image (the cached debootstrapped rootfs) on a loop
btrfs with a private dockerd: ``initramfs.build(stage_only=True)`` then
``generations.add``, twice (the second from an image the tag moved to), the
two rEFInd entries written into a real rEFInd layout, the previous
generation's image pinned and still resolvable by ID after
``docker image prune -a``, and the status JSON saying what is pending.
Nothing here is wired into apply yet; this proves the pieces fit.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.generation_builds import BuildLab as Env
from tests.integration.generation_builds import build_generation, build_lab
from wizard.boot import bootloader, generations
from wizard.boot.fingerprint import kernel_version_of
from wizard.boot.status import status
from wizard.loaders.esp import find_refind_conf
from wizard.settings.config import Settings
from wizard.store import pins
from wizard.store.images import resolve_subvolume

# Side by side with the boots, its module fixture on one worker (one build lab).
pytestmark = [pytest.mark.lab, pytest.mark.side_by_side,
              pytest.mark.xdist_group("generations_build")]

IMAGE = "dbw-gen/desk:latest"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with build_lab(tmp_path_factory.mktemp("genbuild"), IMAGE) as e:
        yield e


def test_real_builds_become_generations_with_two_entries(env: Env) -> None:
    first = build_generation(env.client, env.boot, IMAGE)
    assert first.number == 1
    kernel = env.boot / first.loader
    # The real Debian bzImage names the version it was built for.
    assert kernel_version_of(kernel) == first.kernel_version
    assert (env.boot / first.initrd_path).stat().st_size > 1 << 20
    assert not any(p.name.startswith(".build-") for p in env.boot.iterdir())

    # The tag moves to a new image with the same kernel: nothing to build.
    v1 = env.image_id(IMAGE)
    env.dd.daemon.docker("create", "--name", "v2", "--network", "none", IMAGE, "/bin/true")
    env.dd.daemon.docker("commit", "--change", "LABEL version=2", "v2", IMAGE)
    env.dd.daemon.docker("rm", "v2")
    v2 = env.image_id(IMAGE)
    assert v2 != v1
    settings = Settings(label=env.dd.disk.label, image=IMAGE)
    pending = status(env.dd.top, settings, tag_id=v2, tag_inputs=first.inputs)["pending"]
    assert (pending["image_changed"], pending["build_needed"]) == (True, False)

    # A build anyway (as after a hook change): generation 2, and the two entries.
    second = build_generation(env.client, env.boot, IMAGE, 2)
    inv = generations.load(env.boot)
    assert (inv.newest, inv.previous) == (second, first) and second.image_id == v2
    pins.pin(env.client, v1, settings.label, first.number)
    pins.pin(env.client, v2, settings.label, second.number)

    conf = find_refind_conf(env.esp)
    before = conf.read_bytes()
    block = bootloader.render_entries(settings, second, first)
    _, new = bootloader.plan_refind(conf, block)
    bootloader.write_refind(conf, new)
    text = conf.read_text()
    assert text.startswith(before.decode().rstrip("\n")) and text.count("menuentry ") >= 2
    for line in block.splitlines():
        word, _, path = line.strip().partition(" ")
        if word in ("loader", "initrd"):
            assert (env.dd.top / path).is_file(), path  # rEFInd reads these from the partition
    assert f"docker_image={v1} " in block

    # The previous entry's image survives the clean-ups and still resolves by ID.
    env.dd.daemon.docker("image", "prune", "-a", "-f")
    assert resolve_subvolume(env.dd.top / "docker", v1).is_dir()
    assert resolve_subvolume(env.dd.top / "docker", IMAGE).is_dir()
    out = status(env.dd.top, settings, tag_id=v2, tag_inputs=second.inputs)
    assert out["generation"]["number"] == 2 and out["previous"]["image_id"] == v1
    assert out["pending"]["update"] is False and out["problems"] == []
