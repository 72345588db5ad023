"""Pins against a real dockerd (btrfs driver): what survives the user's clean-ups.

This is the measurement behind ``wizard/store/pins.py``'s table: a pin tag alone
does not survive ``docker image prune -a``; a pin tag next to a container
makes ``prune -a`` strip one of the image's tags (maybe the user's); a
never-started container alone keeps the image and its tags through a tag
move and both prunes (and refuses ``docker rmi <tag>``), and the hook's
by-ID resolution (``images.resolve_subvolume``) still finds its subvolume.
GC over real generation directories on the loop btrfs releases exactly the
images no kept generation uses.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.lab import lab
from tests.unit.genhelp import make_gen
from wizard.boot import generations
from wizard.boot.generations_gc import collect, plan_gc
from wizard.common import leftovers
from wizard.store import pins
from wizard.store.images import resolve_subvolume

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


def _tag_pin(env: Env, image: str, name: str) -> None:
    env.docker("tag", image, f"dockerboot-pin/{name}:gen-1")


def _container_pin(env: Env, image: str, name: str) -> None:
    env.docker("create", "--name", f"{name}-pin", "--network", "none",
               "--entrypoint", pins.NEVER_STARTED, image)


# --- the measurement behind the choice (pins.py's table) ---

def test_a_tag_alone_does_not_survive_image_prune_all(env: Env) -> None:
    old = env.image("tagonly:cur")
    _tag_pin(env, old, "tagonly")
    env.image("tagonly:cur")  # the tag moves
    env.docker("image", "prune", "-f")
    assert env.exists(old)  # not dangling: the pin tag holds it
    env.docker("image", "prune", "-a", "-f")
    assert not env.exists(old)  # unused = no container, tags or not


def test_tag_and_container_make_prune_all_strip_the_users_tag(env: Env) -> None:
    image = env.image("both:cur")
    _tag_pin(env, image, "both")
    _container_pin(env, image, "both")
    env.docker("image", "prune", "-a", "-f")
    assert env.exists(image)
    tags = env.client.images.get(image).tags
    assert len(tags) == 1  # one of the two references went: which one is the daemon's pick
    env.docker("rm", "both-pin")
    env.docker("rmi", image)


def test_a_container_makes_the_users_rmi_of_the_tag_fail(env: Env) -> None:
    image = env.image("cont:cur")
    _container_pin(env, image, "cont")
    r = env.docker("rmi", "cont:cur", check=False)
    assert r.returncode != 0 and "must force" in r.stderr
    r = env.docker("rmi", image, check=False)
    assert r.returncode != 0 and env.exists(image)
    env.docker("rm", "cont-pin")
    env.docker("rmi", "cont:cur")


# --- the pin the wizard makes: a container, no tag ---

def test_pin_survives_tag_move_prunes_and_keeps_the_users_tags(env: Env) -> None:
    old = env.image("desk:cur")
    pins.pin(env.client, old, LABEL, 1)
    env.docker("tag", old, "desk:stable")
    new = env.image("desk:cur")  # docker pull/build moved the tag
    pins.pin(env.client, new, LABEL, 2)
    env.docker("image", "prune", "-f")
    env.docker("image", "prune", "-a", "-f")
    assert env.exists(old) and env.exists(new)
    assert env.client.images.get(old).tags == ["desk:stable"]
    assert env.client.images.get(new).tags == ["desk:cur"]
    r = env.docker("rmi", "desk:stable", check=False)  # its last tag: refused, it is pinned
    assert r.returncode != 0 and "must force" in r.stderr
    env.docker("tag", new, "desk:stable")
    env.docker("image", "prune", "-f")  # old is dangling now, and still pinned
    assert env.exists(old)
    # The hook boots the "previous" entry by ID: the store still resolves it.
    assert resolve_subvolume(env.dd.top / "docker", old).is_dir()
    found = pins.pins(env.client, LABEL)
    assert (found[1].image_id, found[2].image_id) == (old, new)
    c = env.client.containers.get(found[1].containers[0])
    assert c.status == "created" and c.name == pins.pin_container_name(LABEL, 1)
    assert not any(t.startswith("dockerboot-pin") for i in env.client.images.list()
                   for t in i.tags)
    assert pins.unpin(env.client, LABEL, 1, old).image_deleted and not env.exists(old)
    assert not pins.unpin(env.client, LABEL, 2, new).image_deleted and env.exists(new)


def test_unpin_keeps_an_image_the_user_tags(env: Env) -> None:
    image = env.image("kept:cur")
    pins.pin(env.client, image, LABEL, 3)
    done = pins.unpin(env.client, LABEL, 3, image)
    assert not done.image_deleted and done.notes == () and env.exists(image)
    assert env.client.images.get(image).tags == ["kept:cur"]


def test_unpin_never_deletes_an_image_the_users_container_uses(env: Env) -> None:
    image = env.image("users:cur")
    pins.pin(env.client, image, LABEL, 4)
    env.docker("create", "--name", "users-own", "--network", "none", "--entrypoint", "/x",
               "users:cur")
    env.image("users:cur")  # the tag moves on: only the two containers hold the image
    done = pins.unpin(env.client, LABEL, 4, image)
    assert not done.image_deleted and env.exists(image)
    env.docker("rm", "users-own")
    pins.pin(env.client, image, LABEL, 4)
    assert pins.unpin(env.client, LABEL, 4, image).image_deleted and not env.exists(image)


def test_pins_of_an_image_with_volumes_make_no_volumes(env: Env) -> None:
    n = next(_seq)
    tar = lab.tar_of(env.work / f"vol{n}.tar", {"etc/which": f"volumes {n}\n"})
    env.docker("import", "--change", "VOLUME /data", "--change", "VOLUME /var/lib/x",
               str(tar), "vol:cur")
    image = str(env.client.images.get("vol:cur").id)
    before = env.docker("volume", "ls", "-q").stdout.split()
    pins.pin(env.client, image, LABEL, 6)
    assert env.docker("volume", "ls", "-q").stdout.split() == before
    env.docker("image", "prune", "-a", "-f")
    assert env.exists(image)
    pins.unpin(env.client, LABEL, 6, image)
    assert env.docker("volume", "ls", "-q").stdout.split() == before


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
    env.image("gc:cur")  # the tag moves on: a, b, c are held by their pins alone
    inv = generations.load(boot)
    plan = plan_gc(inv)
    assert [g.number for g in plan.keep] == [3, 4] and plan.released == (a,)
    done = collect(boot, plan, client=env.client, label=LABEL, inventory=inv)
    assert done.problems == [] and set(done.removed) == {1, 2}
    assert done.unpinned[2].image_deleted and not env.exists(a)
    env.docker("image", "prune", "-a", "-f")
    assert env.exists(b) and env.exists(c)
    assert set(pins.pins(env.client, LABEL)) == {3, 4}
    assert sorted(p.name for p in (boot / "gen").iterdir()) == ["3", "4"]


def test_removing_the_pin_containers_is_the_limit(env: Env) -> None:
    """Documented limit: ``container prune`` removes the pins, then the image can go."""
    image = env.image("limit:cur")
    pins.pin(env.client, image, LABEL, 9)
    env.image("limit:cur")
    env.docker("image", "prune", "-f")
    assert env.exists(image)
    env.docker("container", "prune", "-f")
    env.docker("image", "prune", "-f")
    assert not env.exists(image)


# --- the booted system's pin (dockerboot-update) makes the pins the wizard makes ---

UPDATE = Path(__file__).resolve().parents[2] / "assets/selfupdate/dockerboot-update"
SHELLS = ["busybox sh", "dash"]
# Hostile VOLUME paths: a blank (word splitting dropped the pin), a comma
# (mount options injected into the pin), globs that match the host's /etc
# and /dev (the test runs in /).
HOSTILE_VOLUMES = ["/a b", "/c,readonly", "/c,tmpfs-mode=0", "/e*", "/d?v", "/plain"]


def _shell_pin(env: Env, shell: str, image: str, number: int) -> subprocess.CompletedProcess:
    """``pin NUMBER ID`` of the command itself, cut out of it, against the lab's dockerd."""
    text = UPDATE.read_text()
    body = text[text.index("\npin() {") + 1:]
    body = body[:body.index("\n}\n") + 3]
    script = (f"{body}\nsay() {{ printf '%s\\n' \"$*\"; }}\n"
              f"conf() {{ echo {pins.pin_name(LABEL)}; }}\n"
              f"label='{LABEL}' run={env.work}\ncd /\npin {number} {image}\n")
    return subprocess.run([*shell.split(), "-c", script], capture_output=True, text=True,
                          env=env.dd.daemon.env(), timeout=120)


def _pin_mounts(env: Env, number: int) -> list[tuple[str, str, str]]:
    [name] = pins.pins(env.client, LABEL)[number].containers
    c = env.client.containers.get(name)
    return sorted((m.get("Type", ""), m.get("Target", ""), str(m.get("TmpfsOptions")))
                  for m in c.attrs["HostConfig"].get("Mounts") or [])


@pytest.mark.parametrize("shell", SHELLS)
def test_the_commands_pin_takes_every_volume_path_as_it_is(env: Env, shell: str) -> None:
    n = next(_seq)
    tar = lab.tar_of(env.work / f"hvol{n}.tar", {"etc/which": f"hostile volumes {n}\n"})
    changes = [a for v in HOSTILE_VOLUMES for a in ("--change", f"VOLUME {json.dumps([v])}")]
    env.docker("import", *changes, str(tar), "hvol:cur")
    image = str(env.client.images.get("hvol:cur").id)
    volumes = sorted(env.client.images.get(image).attrs["Config"]["Volumes"])
    assert volumes == sorted(HOSTILE_VOLUMES)
    before = env.docker("volume", "ls", "-q").stdout.split()
    r = _shell_pin(env, shell, image, 20)
    assert r.returncode == 0 and not r.stdout and not r.stderr, r.stdout + r.stderr
    mine = _pin_mounts(env, 20)
    assert [t for _, t, _ in mine] == volumes
    assert all(typ == "tmpfs" and opts == "None" for typ, _, opts in mine), mine
    pins.pin(env.client, image, LABEL, 21)
    assert _pin_mounts(env, 21) == mine
    assert env.docker("volume", "ls", "-q").stdout.split() == before
    env.docker("image", "prune", "-a", "-f")
    assert env.exists(image)
    for number in (20, 21):
        pins.unpin(env.client, LABEL, number, image)
    env.docker("rmi", image)  # no pin container left to refuse it


@pytest.mark.parametrize("shell", SHELLS)
def test_a_volume_path_with_a_line_break_is_refused_by_both(env: Env, shell: str) -> None:
    n = next(_seq)
    tar = lab.tar_of(env.work / f"nvol{n}.tar", {"etc/which": f"line break {n}\n"})
    env.docker("import", "--change", 'VOLUME ["/x\\n/plain"]', str(tar), "nvol:cur")
    image = str(env.client.images.get("nvol:cur").id)
    assert list(env.client.images.get(image).attrs["Config"]["Volumes"]) == ["/x\n/plain"]
    r = _shell_pin(env, shell, image, 22)
    assert r.returncode == 0 and "line break" in r.stdout, r.stdout + r.stderr
    assert 22 not in pins.pins(env.client, LABEL)
    with pytest.raises(pins.PinError, match="line break"):
        pins.pin(env.client, image, LABEL, 22)
    env.docker("rmi", image)
