"""``wizard.boot.roots`` on a real btrfs: dockerboot's copies of the fallback images.

The store is the hook tests' (a real, then stopped, dockerd on a loop btrfs:
tests/integration/hook/hookenv.py).  The wizard's copies and the hook's are
the same thing (a read-only snapshot carrying the v2 mark naming its own
subvolume ID): one made by either is used and collected by the other.
Collection deletes only those; anything else at those names — a user's
subvolume with a mark, a snapshot of a copy (its mark names another ID), a
plain directory with a forged mark, a symlink to a real copy — is left byte
for byte.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import MULTI, NOMODS, SINGLE, HookEnv, hook_env
from tests.integration.hook.test_hook_roots import _generation, pruned
from wizard.boot import roots

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def env() -> Iterator[HookEnv]:
    with hook_env() as e:
        yield e


def _btrfs(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(["btrfs", *map(str, args)], capture_output=True, text=True)


def _flag(path: Path) -> str:
    return _btrfs("property", "get", "-ts", path, "ro").stdout.strip()


def test_a_copy_is_a_readonly_marked_snapshot_made_once(env: HookEnv) -> None:
    image_id = env.ids[MULTI]
    assert roots.make(env.top, env.subvolume(MULTI), image_id) is None
    root = env.top / roots.ROOTS_DIR / image_id[7:]
    assert roots.is_ours(root) and _flag(root) == "ro=true"
    assert (root / "opt/two.txt").read_text() == "layer two\n"
    inode = os.stat(root / roots.MARK_NAME).st_ino
    assert roots.make(env.top, env.subvolume(MULTI), image_id) is None
    assert os.stat(root / roots.MARK_NAME).st_ino == inode
    assert roots.collect(env.top, set()).deleted == [image_id]
    assert not root.exists()


def _tree(p: Path) -> object:
    if p.is_symlink():
        return ("link", os.readlink(p))
    return sorted((str(q.relative_to(p)), q.lstat().st_ino,
                   q.read_bytes() if q.is_file() and not q.is_symlink() else b"")
                  for q in p.rglob("*"))


def test_collection_deletes_only_dockerboots_copies(env: HookEnv) -> None:
    d = env.top / roots.ROOTS_DIR
    keep, gone = env.ids[SINGLE], env.ids[MULTI]
    for ref in (SINGLE, MULTI):
        assert roots.make(env.top, env.subvolume(ref), env.ids[ref]) is None
    real = d / keep[7:]
    svid = _btrfs("inspect-internal", "rootid", real).stdout.strip()
    hostile = {}
    # A user's subvolume with a mark of the right form (not its own ID).
    p = d / ("1" * 64)
    _btrfs("subvolume", "create", p)
    (p / roots.MARK_NAME).write_text(f"{roots.MAGIC}{svid}\n")
    hostile["user-subvolume"] = p
    # A snapshot of a real copy: the mark came along, it names the original.
    p = d / ("2" * 64)
    _btrfs("subvolume", "snapshot", real, p)
    hostile["snapshot-of-a-copy"] = p
    # A plain directory with a forged mark.
    p = d / ("3" * 64)
    p.mkdir()
    (p / roots.MARK_NAME).write_text(f"{roots.MAGIC}{svid}\n")
    hostile["plain-directory"] = p
    # A symlink to a real copy.
    p = d / ("4" * 64)
    p.symlink_to(real)
    hostile["symlink"] = p
    before = {k: _tree(v) for k, v in hostile.items()}
    done = roots.collect(env.top, {keep})
    assert done.deleted == [gone]
    assert {k: _tree(v) for k, v in hostile.items()} == before
    assert roots.is_ours(real)
    assert len(done.problems) == 4, done.problems
    for k, v in hostile.items():
        assert not roots.delete(v), k
    assert {k: _tree(v) for k, v in hostile.items()} == before
    hostile["symlink"].unlink()
    for k in ("user-subvolume", "snapshot-of-a-copy"):
        _btrfs("property", "set", "-ts", hostile[k], "ro", "false")
        assert _btrfs("subvolume", "delete", hostile[k]).returncode == 0
    (hostile["plain-directory"] / roots.MARK_NAME).unlink()
    hostile["plain-directory"].rmdir()
    assert roots.collect(env.top, set()).deleted == [keep]


def test_a_leftover_new_is_deleted_only_if_ours(env: HookEnv) -> None:
    d = env.top / roots.ROOTS_DIR
    image_id = env.ids[SINGLE]
    new = d / f"{image_id[7:]}.new"
    _btrfs("subvolume", "create", new)
    (new / "mine.txt").write_text("user data\n")
    why = roots.make(env.top, env.subvolume(SINGLE), image_id)
    assert why is not None and "not dockerboot's" in why
    assert (new / "mine.txt").read_text() == "user data\n"
    assert _btrfs("subvolume", "delete", new).returncode == 0


@pytest.mark.parametrize("shell", [("busybox", "sh"), ("dash",)], ids=["busybox", "dash"])
def test_the_wizards_copy_boots_when_docker_deleted_the_image(env: HookEnv,
                                                              shell: tuple[str, ...]) -> None:
    """apply/update make the copy of a kept generation's image; after a prune, the
    hook boots it; and the wizard collects the one the hook made."""
    image_id = env.ids[SINGLE]
    assert roots.make(env.top, env.subvolume(SINGLE), image_id) is None
    _generation(env, 940, SINGLE)
    state = f"boot_docker/roots-py-{shell[0]}"
    cmd = (f"root=LABEL={env.disk.label} rootflags=subvol=docker_rwlayer "
           f"docker_image={NOMODS} dockerboot.state={state} dockerboot.generation=940")
    with pruned(env, SINGLE):
        r = env.run_core(cmd, shell=shell)
        assert r.returncode == 0, r.stderr
        assert "booting dockerboot's copy of the image of generation 940" in r.stderr
    assert "source=generation-root\n" in (env.top / state / "boot").read_text()
    # The hook's own copy (of the last good image) is the wizard's to collect.
    (env.top / state / "good").write_text(f"{env.ids[MULTI]}\n")
    r = env.run_core(cmd.replace(NOMODS, MULTI), shell=shell)
    assert r.returncode == 0, r.stderr
    hooks = env.top / roots.ROOTS_DIR / env.ids[MULTI][7:]
    assert roots.is_ours(hooks)
    assert sorted(roots.collect(env.top, set()).deleted) == sorted([image_id, env.ids[MULTI]])
