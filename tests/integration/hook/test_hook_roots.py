"""dockerboot's own copies of the fallback images (issue 17, point 1): ``boot_docker/roots``.

Whatever docker deletes (``image prune -a``, ``system prune -a``, ``rmi -f``:
the image's tag, config and layer go), the next boot comes up on the
configured image, else the last good one, else the image of the boot entry's
generation — from docker's store, else from the hook's read-only, marked
snapshot of it (assets/hook/dockerboot-roots.sh).  The core runs for real
under busybox ash and dash on a loop btrfs whose docker store a real (then
stopped) dockerd filled; the mark-good script runs for real too.  An image is
"pruned" as docker does it: its tags leave ``repositories.json``, its config
and its top layer's subvolume go (put back after the test: the module shares
the store).  Whatever stands at a root's name and is not the hook's is left
byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import (
    CORE,
    KVER,
    MARK_GOOD,
    MULTI,
    NOMODS,
    SINGLE,
    SYSTEMD,
    HookEnv,
    core_env,
    one_line_failure,
    own_state_dir,
    subvolume_field,
    subvolume_show,
)

pytestmark = pytest.mark.lab

RW = "docker_rwlayer"
ROOTS = "boot_docker/roots"
MARK = ".dockerboot-rwlayer"
MESSAGE = "etc/profile.d/dockerboot-fallback.sh"
SHELLS = [("busybox", "sh"), ("dash",)]


def _btrfs(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(["btrfs", *map(str, args)], capture_output=True, text=True)


def _clear_roots(env: HookEnv) -> None:
    """The roots the hook made (tests only: a fresh start for each)."""
    d = env.top / ROOTS
    if d.is_symlink() or not d.exists():
        with contextlib.suppress(FileNotFoundError):
            d.unlink()
        return
    for p in d.iterdir():
        if p.is_symlink():          # first: a link to an image's layer is no root to delete
            p.unlink()
        elif subvolume_show(p).returncode == 0:
            _btrfs("property", "set", "-ts", p, "ro", "false")
            assert _btrfs("subvolume", "delete", p).returncode == 0
        elif p.is_file():
            p.unlink()
        else:
            shutil.rmtree(p)
    d.rmdir()


@pytest.fixture
def st(env: HookEnv, request: pytest.FixtureRequest) -> Iterator[str]:
    """A state directory of this test's own; no roots before or after it."""
    _clear_roots(env)
    yield own_state_dir(request, "rt")
    _clear_roots(env)


def _boot(env: HookEnv, image: str, state: str, shell: tuple[str, ...] = SHELLS[0], *,
          extra_env: dict[str, str] | None = None, **extra: str) -> subprocess.CompletedProcess:
    params = {"root": f"LABEL={env.disk.label}", "rootflags": f"subvol={RW}",
              "docker_image": image, "dockerboot.state": state, **extra}
    return env.run_core(" ".join(f"{k}={v}" for k, v in params.items()), shell=shell,
                        extra_env=extra_env)


def _ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stderr
    return r.stderr


def _mark_good(env: HookEnv, state: str, shell: tuple[str, ...] = SHELLS[0]) -> None:
    cmdline = env.workdir / "roots-cmdline"
    cmdline.write_text(f"root=LABEL={env.disk.label} rootflags=subvol={RW} "
                       f"dockerboot.state={state}\n")
    e = {"PATH": os.environ["PATH"], "DOCKERBOOT_CMDLINE_FILE": str(cmdline),
         "DOCKERBOOT_BOOTFILE": str(env.top / RW / "etc/dockerboot/boot"),
         "DOCKERBOOT_MNT": str(env.workdir / "roots-mark-good-mnt"),
         "DOCKERBOOT_SYSTEMCTL": "none"}
    r = subprocess.run([*shell, str(MARK_GOOD)], env=e, text=True, capture_output=True,
                       timeout=60)
    assert r.returncode == 0 and "marked good" in r.stdout, r.stdout + r.stderr


def _kv(env: HookEnv, state: str) -> dict[str, str]:
    text = (env.top / state / "boot").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def _root(env: HookEnv, ref: str) -> Path:
    return env.top / ROOTS / env.ids[ref].removeprefix("sha256:")


def _id12(env: HookEnv, ref: str) -> str:
    return env.ids[ref].removeprefix("sha256:")[:12]


@contextlib.contextmanager
def pruned(env: HookEnv, ref: str) -> Iterator[None]:
    """``ref``'s image gone from the store as ``docker image prune -a`` leaves it:
    no tag in repositories.json, no config, no top-layer subvolume."""
    image_id = env.ids[ref]
    repos_path = env.data_root / "image/btrfs/repositories.json"
    repos_text = repos_path.read_text()
    repos = json.loads(repos_text)
    for tags in repos["Repositories"].values():
        for name in [n for n, i in tags.items() if i == image_id]:
            del tags[name]
    repos_path.write_text(json.dumps(repos))
    config = env.data_root / "image/btrfs/imagedb/content/sha256" / image_id.removeprefix(
        "sha256:")
    layer = env.subvolume(ref)
    aside = env.top / f"pruned-{layer.name}"
    config_bytes = config.read_bytes()
    config.unlink()
    layer.rename(aside)
    try:
        yield
    finally:
        aside.rename(layer)
        config.write_bytes(config_bytes)
        repos_path.write_text(repos_text)


def _generation(env: HookEnv, number: int, ref: str) -> None:
    """A generation record as the wizard writes it (JSON, two blanks, sorted keys)."""
    d = env.top / "boot_docker/gen" / str(number)
    d.mkdir(parents=True, exist_ok=True)
    record = {"schema": 1, "number": number, "kernel_version": KVER, "image_ref": ref,
              "image_id": env.ids[ref], "created": "2026-01-01T00:00:00Z",
              "inputs": {"kernel_version": KVER, "image_id": "sha256:" + "0" * 64},
              "files": ["vmlinuz", "initrd.img"], "kernel": "vmlinuz",
              "initrd": "initrd.img", "legacy": False, "pinned": False}
    (d / "generation.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def _assert_a_root_of(env: HookEnv, ref: str) -> None:
    """The hook's root of ``ref``: a read-only snapshot of its image, carrying the mark."""
    root = _root(env, ref)
    assert subvolume_field(root, "Parent UUID") == subvolume_field(env.subvolume(ref))
    assert subvolume_field(root, "Flags") == "readonly"
    svid = _btrfs("inspect-internal", "rootid", root).stdout.strip()
    assert (root / MARK).read_text() == f"dockerboot-rwlayer v2 {svid}\n"
    assert (root / "etc/dbw-image-marker").read_text() == \
        (env.subvolume(ref) / "etc/dbw-image-marker").read_text()
    assert not (env.top / ROOTS / f"{root.name}.new").exists()


def _booted_from(env: HookEnv) -> str:
    """The UUID of what the rw layer is a snapshot of."""
    return subvolume_field(env.top / RW, "Parent UUID")


# --- the last good image, pruned: its root boots ---

@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_a_pruned_last_good_image_boots_from_dockerboots_copy(env: HookEnv, st: str,
                                                            shell: tuple[str, ...]) -> None:
    _ok(_boot(env, MULTI, st, shell))
    assert not (env.top / ROOTS).exists() or not _root(env, MULTI).exists()
    _mark_good(env, st, shell)
    _ok(_boot(env, MULTI, st, shell))           # the first boot after the mark keeps a copy
    _assert_a_root_of(env, MULTI)
    with pruned(env, MULTI):
        r = _boot(env, MULTI, st, shell)
        err = _ok(r)
        lines = [x for x in err.splitlines() if "instead" in x]
        assert lines == [f"dockerboot: {MULTI}: is not in the docker store — booting "
                         f"dockerboot's copy of the last good image {_id12(env, MULTI)} instead"]
        assert _booted_from(env) == subvolume_field(_root(env, MULTI))
        boot = _kv(env, st)
        assert boot["id"] == env.ids[MULTI] and boot["configured_id"] == ""
        assert boot["source"] == "good-root"
        assert boot["fallback"] == f"{MULTI} is not in the docker store"
        rw = env.top / RW
        assert (rw / "opt/two.txt").read_text() == "layer two\n"
        # The rw layer carries its own mark, not the root's.
        rwid = _btrfs("inspect-internal", "rootid", rw).stdout.strip()
        assert (rw / MARK).read_text() == f"dockerboot-rwlayer v2 {rwid}\n"
        out = subprocess.run(["sh", str(rw / MESSAGE)], capture_output=True, text=True)
        assert out.stderr == (f"dockerboot: this boot fell back to dockerboot's copy of the "
                              f"last good image {_id12(env, MULTI)}: {MULTI} is not in the "
                              "docker store\n")
        # Marked good again from the copy: the next boot still has it.
        _mark_good(env, st, shell)
        _ok(_boot(env, MULTI, st, shell))
        assert _kv(env, st)["source"] == "good-root"
    _assert_a_root_of(env, MULTI)


def test_the_copy_of_a_good_image_is_made_once(env: HookEnv, st: str) -> None:
    """At the first boot after the mark only; an everyday boot asks btrfs-progs
    nothing more than it did before the copies existed."""
    _ok(_boot(env, MULTI, st))
    _mark_good(env, st)
    wrap, log = env.workdir / "roots-logging-btrfs", env.workdir / "roots-btrfs.log"
    wrap.mkdir(exist_ok=True)
    real = shutil.which("btrfs")
    (wrap / "btrfs").write_text(f'#!/bin/sh\necho "$*" >>"{log}"\nexec {real} "$@"\n')
    (wrap / "btrfs").chmod(0o755)
    path = {"PATH": f"{wrap}:{os.environ['PATH']}"}
    log.unlink(missing_ok=True)
    _ok(_boot(env, MULTI, st, extra_env=path))
    first = log.read_text().splitlines()
    new = f"{ROOTS}/{_root(env, MULTI).name}.new"
    ours = [c for c in first if ROOTS in c]
    assert [c.split()[:2] for c in ours] == [["subvolume", "snapshot"], ["property", "set"]]
    assert ours[0].endswith(new) and ours[1].endswith(f"{new} ro true"), ours
    log.unlink()
    _ok(_boot(env, MULTI, st, extra_env=path))
    assert not [c for c in log.read_text().splitlines() if ROOTS in c]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_an_everyday_boot_runs_no_more_processes_with_the_copies(
        env: HookEnv, st: str, shell: tuple[str, ...]) -> None:
    """Counted by strace: with a good image and a generation whose copies are
    there, a boot runs as many processes as one without any of them."""
    def count(state: str, **extra: str) -> int:
        log = env.workdir / "roots-strace.log"
        params = {"root": f"LABEL={env.disk.label}", "rootflags": f"subvol={RW}",
                  "docker_image": MULTI, "dockerboot.state": state, **extra}
        e = core_env(env.workdir, " ".join(f"{k}={v}" for k, v in params.items()))
        script = f'set -u; . "{CORE}"; dockerboot_main'
        r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(log),
                            *shell, "-c", script], env=e, text=True, capture_output=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        return sum(1 for ln in log.read_text().splitlines() if "execve(" in ln
                   and "= 0" in ln)

    _generation(env, 901, SINGLE)
    _ok(_boot(env, MULTI, st, shell))
    _mark_good(env, st, shell)
    _ok(_boot(env, MULTI, st, shell, **{"dockerboot.generation": "901"}))
    assert _root(env, MULTI).exists() and _root(env, SINGLE).exists()
    # Both boots: the same rw layer history (a .previous to replace), chains known.
    bare = f"{st}-bare"
    _ok(_boot(env, MULTI, bare))
    base = count(bare)
    with_roots = count(st, **{"dockerboot.generation": "901"})
    assert with_roots == base, (with_roots, base)


# --- no good image: the generation's image ---

@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_without_a_good_image_the_generations_image_boots(env: HookEnv, st: str,
                                                          shell: tuple[str, ...]) -> None:
    number = 910 + SHELLS.index(shell)
    _generation(env, number, SINGLE)
    gen = {"dockerboot.generation": str(number)}
    # The configured image lacks the running kernel's modules: generation's image instead.
    err = _ok(_boot(env, NOMODS, st, shell, **gen))
    assert [x for x in err.splitlines() if "instead" in x] == [
        f"dockerboot: {NOMODS}: has no /lib/modules/{KVER} for the running kernel — booting "
        f"the image of generation {number} {_id12(env, SINGLE)} instead"]
    assert _booted_from(env) == subvolume_field(env.subvolume(SINGLE))
    assert _kv(env, st)["source"] == "generation"
    assert not (env.top / st / "good").exists()
    _assert_a_root_of(env, SINGLE)              # kept at the generation's first boot
    # Docker deletes it (system prune -a drops the pins): its copy boots.
    with pruned(env, SINGLE):
        err = _ok(_boot(env, "nosuch/desk:latest", st, shell, **gen))
        assert [x for x in err.splitlines() if "instead" in x] == [
            "dockerboot: nosuch/desk:latest: is not in the docker store — booting dockerboot's "
            f"copy of the image of generation {number} {_id12(env, SINGLE)} instead"]
        assert _booted_from(env) == subvolume_field(_root(env, SINGLE))
        assert _kv(env, st)["source"] == "generation-root"
        # Without the entry's generation nothing is left: the original line.
        line = one_line_failure(_boot(env, "nosuch/desk:latest", st, shell))
        assert "nosuch/desk:latest is not in" in line


def test_out_of_tries_without_a_good_image_the_configured_one_still_boots(env: HookEnv,
                                                                          st: str) -> None:
    """The generation's image is a fallback for an image that cannot boot, not for
    one that only was never marked good: neither was proven."""
    _generation(env, 925, SINGLE)
    gen = {"dockerboot.generation": "925", "dockerboot.tries": "1"}
    _ok(_boot(env, SYSTEMD, st, **gen))            # systemd: its tries are counted
    err = _ok(_boot(env, SYSTEMD, st, **gen))
    assert "instead" not in err and "there is no good image to fall back to" in err
    assert _booted_from(env) == subvolume_field(env.subvolume(SYSTEMD))
    assert _kv(env, st)["source"] == "configured"


def test_a_good_image_in_the_store_comes_before_any_copy(env: HookEnv, st: str) -> None:
    _generation(env, 920, MULTI)
    _ok(_boot(env, SINGLE, st, **{"dockerboot.generation": "920"}))
    _mark_good(env, st)
    err = _ok(_boot(env, "nosuch/x:1", st, **{"dockerboot.generation": "920"}))
    assert f"booting the last good image {_id12(env, SINGLE)} instead" in err
    assert _booted_from(env) == subvolume_field(env.subvolume(SINGLE))
    assert _kv(env, st)["source"] == "good"


# --- what is not the hook's is never used, replaced or deleted ---

def _hostile(env: HookEnv, kind: str, at: Path) -> None:
    at.parent.mkdir(parents=True, exist_ok=True)
    if kind == "user-subvolume":
        assert _btrfs("subvolume", "create", at).returncode == 0
        (at / "mine.txt").write_text("user data\n")
    elif kind == "user-snapshot":         # a snapshot of the image, no mark: a user's copy
        assert _btrfs("subvolume", "snapshot", env.subvolume(MULTI), at).returncode == 0
        (at / "mine.txt").write_text("user data\n")
    elif kind == "forged-mark":           # a plain directory with a copied mark
        at.mkdir()
        (at / MARK).write_text("dockerboot-rwlayer v2 256\n")
        shutil.copytree(env.subvolume(MULTI), at / "copy", symlinks=True)
    elif kind == "symlink":
        at.symlink_to(env.subvolume(MULTI))
    elif kind == "directory":
        at.mkdir()
        (at / "mine.txt").write_text("user data\n")


def _fingerprint(p: Path) -> object:
    if p.is_symlink():
        return ("link", os.readlink(p))
    if not p.exists():
        return None
    items = []
    for dirpath, dirnames, filenames in os.walk(p):
        for n in sorted(dirnames + filenames):
            q = Path(dirpath) / n
            st_ = q.lstat()
            data = q.read_bytes() if q.is_file() and not q.is_symlink() else os.readlink(q) \
                if q.is_symlink() else b""
            items.append((str(q.relative_to(p)), st_.st_mode, st_.st_ino, data))
    shown = subvolume_show(p)
    uuid = subvolume_field(p) if shown.returncode == 0 else None
    return (p.lstat().st_ino, uuid, sorted(items, key=lambda x: x[0]))


HOSTILE = ["user-subvolume", "user-snapshot", "forged-mark", "symlink", "directory"]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("where", ["root", "new"])
def test_hostile_things_at_a_roots_name_are_left_byte_for_byte(
        env: HookEnv, st: str, kind: str, where: str, shell: tuple[str, ...]) -> None:
    _ok(_boot(env, MULTI, st, shell))
    _mark_good(env, st, shell)
    at = _root(env, MULTI) if where == "root" else Path(f"{_root(env, MULTI)}.new")
    _hostile(env, kind, at)
    before = _fingerprint(at)
    _generation(env, 930, SINGLE)
    # Would make the good image's copy: not over that (the generation's is made).
    err = _ok(_boot(env, MULTI, st, shell, **{"dockerboot.generation": "930"}))
    assert _fingerprint(at) == before
    _assert_a_root_of(env, SINGLE)
    warned = [x for x in err.splitlines() if "cannot keep a copy" in x]
    if where == "new":
        assert warned == [f"dockerboot: warning: cannot keep a copy of image "
                          f"{_root(env, MULTI).name} in {ROOTS} (tried again next boot)"]
    else:
        assert warned == []
    if where == "root":
        with pruned(env, MULTI):
            # Never booted from: the original line stops the boot.
            line = one_line_failure(_boot(env, MULTI, st, shell))
            assert f"image {MULTI} is not in" in line
        assert _fingerprint(at) == before
    else:
        assert not _root(env, MULTI).exists()


def test_a_roots_directory_through_a_symlink_is_not_used(env: HookEnv, st: str) -> None:
    elsewhere = env.top / "elsewhere-roots"
    elsewhere.mkdir(exist_ok=True)
    (env.top / ROOTS).symlink_to(elsewhere)
    try:
        assert "no copy of the fallback images" not in _ok(_boot(env, MULTI, st))
        _mark_good(env, st)
        assert "no copy of the fallback images is kept" in _ok(_boot(env, MULTI, st))
        assert list(elsewhere.iterdir()) == []
    finally:
        (env.top / ROOTS).unlink()
        elsewhere.rmdir()


def test_a_state_directory_at_the_roots_name_turns_the_copies_off(env: HookEnv,
                                                                  st: str) -> None:
    state = ROOTS
    try:
        _ok(_boot(env, MULTI, state))
        _mark_good(env, state)
        assert "no copy of the fallback images is kept" in _ok(_boot(env, MULTI, state))
        assert sorted(p.name for p in (env.top / ROOTS).iterdir()) == [
            ".new", "attempt", "boot", "chains", "good"]
    finally:
        shutil.rmtree(env.top / ROOTS)
