"""Pins against a real dockerd (btrfs driver): what survives the user's clean-ups.

This is the measurement behind ``wizard/pins.py``'s table: a pin tag alone
does not survive ``docker image prune -a``; a never-started container alone
makes the user's ``docker rmi <tag>`` fail; the two together keep the image
through a tag move, both prunes and ``rmi`` of the tag, and the hook's
by-ID resolution (``images.resolve_subvolume``) still finds its subvolume.
GC over real generation directories on the loop btrfs releases exactly the
images no kept generation uses.
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.lab import lab
from tests.unit.genhelp import make_gen
from wizard import generations, leftovers, pins
from wizard.generations_gc import collect, plan_gc
from wizard.images import resolve_subvolume

pytestmark = pytest.mark.lab

LABEL = "PinLab+1"  # a label docker names cannot carry as it is
_seq = itertools.count()


@dataclass
class Env:
    dd: lab.DockerDisk
    client: docker.DockerClient
    work: Path

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.dd.daemon.docker(*args, check=check)

    def image(self, tag: str) -> str:
        """Import a new tiny image (unique content, so a unique ID) as ``tag``; its ID."""
        n = next(_seq)
        tar = lab.tar_of(self.work / f"img{n}.tar", {"etc/which": f"image {n} {tag}\n"})
        self.docker("import", str(tar), tag)
        return str(self.client.images.get(tag).id)

    def exists(self, image_id: str) -> bool:
        try:
            self.client.images.get(image_id)
        except docker.errors.ImageNotFound:
            return False
        return True


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pins")
    with lab.docker_disk(work, size="2G") as dd:
        client = docker.DockerClient(base_url=dd.daemon.host)
        try:
            yield Env(dd, client, work)
        finally:
            client.close()


def test_a_tag_alone_does_not_survive_image_prune_all(env: Env) -> None:
    old = env.image("tagonly:cur")
    env.docker("tag", old, "dockerboot-pin/tagonly:gen-1")
    env.image("tagonly:cur")  # the tag moves
    env.docker("image", "prune", "-f")
    assert env.exists(old)  # not dangling: the pin tag holds it
    env.docker("image", "prune", "-a", "-f")
    assert not env.exists(old)  # unused = no container, tags or not


def test_a_container_alone_makes_the_users_rmi_of_the_tag_fail(env: Env) -> None:
    image = env.image("cont-only:cur")
    env.docker("create", "--name", "cont-only-pin", "--network", "none",
               "--entrypoint", pins.NEVER_STARTED, image)
    r = env.docker("rmi", "cont-only:cur", check=False)
    assert r.returncode != 0 and "must force" in r.stderr
    env.docker("rm", "cont-only-pin")
    env.docker("rmi", "cont-only:cur")


def test_pin_survives_tag_move_prunes_and_rmi(env: Env) -> None:
    old = env.image("desk:cur")
    pins.pin(env.client, old, LABEL, 1)
    new = env.image("desk:cur")  # docker pull/build moved the tag
    env.docker("image", "prune", "-f")
    env.docker("image", "prune", "-a", "-f")
    assert env.exists(old)
    r = env.docker("rmi", old, check=False)
    assert r.returncode != 0 and env.exists(old)
    # The hook boots the "previous" entry by ID: the store still resolves it.
    assert resolve_subvolume(env.dd.top / "docker", old).is_dir()
    assert env.exists(new) is False  # prune -a took the unpinned new one: nothing else uses it
    found = pins.pins(env.client, LABEL)[1]
    assert found.image_id == old and found.tag and len(found.containers) == 1
    c = env.client.containers.get(found.containers[0])
    assert c.status == "created" and c.name == pins.pin_container_name(LABEL, 1)
    pins.unpin(env.client, LABEL, 1, old)


def test_rmi_of_the_tag_still_on_a_pinned_image_just_untags(env: Env) -> None:
    image = env.image("both:cur")
    pins.pin(env.client, image, LABEL, 2)
    env.docker("rmi", "both:cur")
    assert env.exists(image)
    pins.unpin(env.client, LABEL, 2, image)
    assert not env.exists(image)  # the pin tag was its last reference


def test_unpin_keeps_an_image_the_user_tags(env: Env) -> None:
    image = env.image("kept:cur")
    pins.pin(env.client, image, LABEL, 3)
    done = pins.unpin(env.client, LABEL, 3, image)
    assert done.tag and done.notes == () and env.exists(image)
    assert env.client.images.get(image).tags == ["kept:cur"]


def test_unpin_never_forces_past_the_users_container(env: Env) -> None:
    image = env.image("users:cur")
    pins.pin(env.client, image, LABEL, 4)
    env.docker("rmi", "users:cur")
    env.docker("create", "--name", "users-own", "--network", "none", "--entrypoint", "/x", image)
    done = pins.unpin(env.client, LABEL, 4, image)
    assert not done.tag and "stays" in done.notes[0] and env.exists(image)
    env.docker("rm", "users-own")
    assert pins.unpin(env.client, LABEL, 4, image).tag and not env.exists(image)


def test_leftover_cleanup_never_removes_pins(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    image = env.image("left:cur")
    pins.pin(env.client, image, LABEL, 5)
    # A container a dead wizard left: the cleanup's own business.
    env.client.containers.create(image, entrypoint=["/x"], network_mode="none",
                                 labels={leftovers.LABEL: "probe",
                                         leftovers.OWNER_LABEL: "dead"})
    monkeypatch.setattr(leftovers, "owner_alive", lambda token: False)
    assert len(leftovers.remove_leftover_containers(env.client)) == 1
    assert len(pins.pins(env.client, LABEL)[5].containers) == 1
    pins.unpin(env.client, LABEL, 5, image)


def test_gc_releases_only_images_no_kept_generation_uses(env: Env) -> None:
    boot = env.dd.top / "boot_docker"
    boot.mkdir(exist_ok=True)
    a = env.image("gc:cur")
    b = env.image("gc:cur")
    c = env.image("gc:cur")
    ids = {"a": a, "b": b, "c": c}
    for n, seed in ((1, "b"), (2, "a"), (3, "b"), (4, "c")):
        gen = make_gen(boot, n, seed)
        generations.write_record(boot, generations.Generation(
            **{**gen.__dict__, "image_id": ids[seed]}))
        pins.pin(env.client, ids[seed], LABEL, n)
    env.docker("rmi", "gc:cur")
    inv = generations.load(boot)
    plan = plan_gc(inv)
    assert [g.number for g in plan.keep] == [3, 4] and plan.released == (a,)
    done = collect(boot, plan, client=env.client, label=LABEL, inventory=inv)
    assert done.problems == [] and set(done.removed) == {1, 2}
    env.docker("image", "prune", "-a", "-f")
    assert not env.exists(a) and env.exists(b) and env.exists(c)
    assert set(pins.pins(env.client, LABEL)) == {3, 4}
    assert sorted(p.name for p in (boot / "gen").iterdir()) == ["3", "4"]


def test_system_prune_is_the_limit(env: Env) -> None:
    """Documented limit: removing the pin containers themselves releases the image."""
    image = env.image("limit:cur")
    pins.pin(env.client, image, LABEL, 9)
    env.docker("rmi", "limit:cur")
    env.docker("container", "prune", "-f")
    env.docker("image", "prune", "-f")
    assert env.exists(image)  # the pin tag still holds it against the dangling prune
    env.docker("system", "prune", "-a", "-f")
    assert not env.exists(image)
