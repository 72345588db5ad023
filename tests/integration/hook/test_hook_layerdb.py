"""The core's layerdb walk (``_db_lwalk``): tall images resolve with a constant
number of processes, to exactly the subvolume ``resolve_subvolume`` computes.

A real (then stopped) dockerd fills a loop btrfs with COPY-only images: a
30-layer one, one sharing its first 10 layers, one whose second layer has the
same DiffID on another base (a duplicate diff with another parent); the
legacy builder cannot make one image with the same DiffID twice ("layer does
not exist").  Then the layerdb is made hostile — a ``diff`` that lies, forged
entries, symlinks out of the data-root, a missing ``parent``, a FIFO — and the
core, under busybox ash and dash, must still give the computed ChainID's
subvolume, or one clear error line when Python fails too; never another
image's subvolume.  A mutant core that trusts the walk without its hashes
fails two of these tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import HookEnv, chain_id_py, libexec, one_line_failure
from tests.lab import lab
from wizard.common.errors import ImageError
from wizard.store.images import chain_ids, resolve_subvolume

pytestmark = pytest.mark.lab

BASE = "dbw-walk-base:1"
BASE2 = "dbw-walk-base2:1"
MID = "dbw-walk-mid:10"          # BASE + 9 COPY layers
TALL = "dbw-walk-tall:30"        # MID + 20 COPY layers, one of them repeated
SHARED = "dbw-walk-shared:14"    # MID + 4 other COPY layers: shares 10 with TALL
OTHER = "dbw-walk-other:5"       # BASE2 + MID's first COPY (same diff, another parent) + 3
THREE = "dbw-walk-three:3"       # BASE + MID's first 2 COPY layers
SHELLS = [("busybox", "sh"), ("dash",)]
SHELL_IDS = ["busybox", "dash"]


@dataclass
class WalkEnv:
    hook: HookEnv
    layers: dict[str, list[str]]     # ref -> diff IDs, as docker reports them

    @property
    def layerdb(self) -> Path:
        return self.hook.data_root / "image/btrfs/layerdb/sha256"

    def entry(self, ref: str, index: int) -> Path:
        """The layerdb directory of layer ``index`` (0 = base) of ``ref``."""
        return self.layerdb / chain_ids(self.layers[ref])[index].removeprefix("sha256:")

    def resolve(self, ref: str, shell: tuple[str, ...] = SHELLS[0],
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.hook.run_core("", func="dockerboot_resolve", shell=shell,
                                  args=(str(self.hook.data_root), ref), extra_env=extra_env)


def _build(d: lab.Dockerd, ctx: Path, tag: str, base: str, copies: list[tuple[str, str]]) -> None:
    lines = [f"FROM {base}", *(f"COPY {src} {dest}" for src, dest in copies)]
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    d.docker("build", "-q", "--network", "none", "-t", tag, ctx, timeout=600)


@pytest.fixture(scope="module")
def env() -> Iterator[WalkEnv]:
    workdir = Path(tempfile.mkdtemp(prefix="dbw-walk-", dir="/var/tmp"))
    try:
        with lab.loop_disk(workdir, size="2G") as disk, \
                lab.mounted(disk.btrfs_dev, workdir / "top") as top:
            lab.run("btrfs", "subvolume", "create", top / "docker")
            with lab.dockerd(top / "docker") as d:
                d.docker("import", lab.tar_of(workdir / "b.tar", {"etc/base": "base\n"}), BASE)
                d.docker("import", lab.tar_of(workdir / "b2.tar", {"etc/base": "two\n"}), BASE2)
                ctx = workdir / "ctx"
                ctx.mkdir()
                for i in range(40):
                    (ctx / f"f{i:02}").write_text(f"tiny layer {i}\n")
                _build(d, ctx, MID, BASE, [(f"f{i:02}", f"/f{i:02}") for i in range(9)])
                _build(d, ctx, THREE, BASE, [(f"f{i:02}", f"/f{i:02}") for i in range(2)])
                _build(d, ctx, TALL, MID, [(f"f{i:02}", f"/f{i:02}") for i in range(9, 29)])
                _build(d, ctx, SHARED, MID, [(f"f{i:02}", f"/s{i:02}") for i in range(30, 34)])
                _build(d, ctx, OTHER, BASE2, [("f00", "/f00")]
                       + [(f"f{i:02}", f"/o{i:02}") for i in range(34, 37)])
                layers = {}
                for ref in (BASE, THREE, MID, TALL, SHARED, OTHER):
                    out = d.docker("image", "inspect", "-f",
                                   "{{range .RootFS.Layers}}{{.}} {{end}}", ref)
                    layers[ref] = out.stdout.split()
            lab.run("sync")
            assert [len(layers[r]) for r in (THREE, MID, TALL, SHARED, OTHER)] == [3, 10, 30, 14, 5]
            assert layers[SHARED][:10] == layers[TALL][:10] == layers[MID]
            assert layers[OTHER][1] == layers[MID][1] and layers[OTHER][0] != layers[MID][0]
            yield WalkEnv(HookEnv(workdir=workdir, disk=disk, top=top), layers)
    finally:
        lab.run("umount", "-R", "-l", workdir / "run", check=False)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def hostile(env: WalkEnv) -> Iterator[WalkEnv]:
    """The layerdb as docker left it again after the test, whatever the test did."""
    saved = env.hook.workdir / "layerdb-saved"
    shutil.copytree(env.layerdb, saved, symlinks=True)
    outside = env.hook.workdir / "outside"
    outside.mkdir()
    try:
        yield env
    finally:
        shutil.rmtree(env.layerdb)
        shutil.copytree(saved, env.layerdb, symlinks=True)
        shutil.rmtree(saved)
        shutil.rmtree(outside)


def _expect(env: WalkEnv, ref: str) -> Path:
    """What the Python twin resolves, checked against docker's own layer list."""
    sub = resolve_subvolume(env.hook.data_root, ref)
    cache_id = (env.entry(ref, -1) / "cache-id").read_text().strip()
    assert sub == env.hook.data_root / "btrfs/subvolumes" / cache_id
    return sub


def _counting_libexec(env: WalkEnv) -> tuple[dict[str, str], Path]:
    """LIBEXEC and PATH whose sha256sum and grep log each call's argument count."""
    d = env.hook.workdir / "counting"
    log = d / "calls.log"
    if not d.exists():
        d.mkdir()
        real = libexec(env.hook.workdir)
        for f in real.iterdir():
            if f.name != "sha256sum":
                (d / f.name).symlink_to(os.readlink(f))
        for tool, target in (("sha256sum", "/usr/bin/sha256sum"), ("grep", "/bin/grep")):
            (d / tool).write_text(f'#!/bin/sh\necho "{tool} $#" >>"{log}"\n'
                                  f'exec {target} "$@"\n')
            (d / tool).chmod(0o755)
    log.write_text("")
    return {"DOCKERBOOT_LIBEXEC": str(d), "PATH": f"{d}:{os.environ['PATH']}"}, log


def _walk_calls(env: WalkEnv, ref: str) -> list[str]:
    """The sha256sum calls of one resolve (checked to give the expected subvolume)."""
    extra, log = _counting_libexec(env)
    r = env.resolve(ref, extra_env=extra)
    assert r.returncode == 0 and Path(r.stdout.strip()) == _expect(env, ref), r.stderr
    return [x for x in log.read_text().splitlines() if x.startswith("sha256sum")]


WALKED = ["sha256sum 29"]                                  # TALL: the walk, verified
COMPUTED = ["sha256sum 1"] * 29                            # TALL: the computation


# --- docker's own store ---

@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
@pytest.mark.parametrize("ref", [TALL, SHARED, OTHER, MID, THREE, BASE])
def test_resolves_like_resolve_subvolume(env: WalkEnv, ref: str, shell: tuple[str, ...]) -> None:
    r = env.resolve(ref, shell)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert Path(r.stdout.strip()) == _expect(env, ref)


def test_pinned_tall_image_resolves_the_same(env: WalkEnv) -> None:
    repos = json.loads((env.hook.data_root / "image/btrfs/repositories.json").read_text())
    pinned = repos["Repositories"][TALL.partition(":")[0]][TALL]
    r = env.resolve(pinned)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == _expect(env, TALL) == resolve_subvolume(
        env.hook.data_root, pinned)


def test_tall_image_takes_one_grep_and_one_sha256sum(env: WalkEnv) -> None:
    extra, log = _counting_libexec(env)
    for ref, links in ((TALL, 29), (SHARED, 13), (OTHER, 4)):
        log.write_text("")
        r = env.resolve(ref, extra_env=extra)
        assert r.returncode == 0, r.stderr
        assert Path(r.stdout.strip()) == _expect(env, ref)
        # grep: -H -x -F -s, "-e DIFFID" per layer, then the layerdb's diff files.
        grep_args = 4 + 2 * len(env.layers[ref]) + len(list(env.layerdb.glob("*/diff")))
        assert log.read_text().splitlines() == [f"grep {grep_args}", f"sha256sum {links}"]


def test_short_images_keep_the_computation(env: WalkEnv) -> None:
    # Up to 3 layers the computation costs no more processes and reads no other
    # image; a single layer costs none at all (its ChainID is its DiffID).
    extra, log = _counting_libexec(env)
    r = env.resolve(BASE, extra_env=extra)
    assert r.returncode == 0 and log.read_text() == ""
    assert chain_id_py(env.layers[BASE]) == env.layers[BASE][0]
    r = env.resolve(THREE, extra_env=extra)
    assert Path(r.stdout.strip()) == _expect(env, THREE)
    assert log.read_text().splitlines() == ["sha256sum 1", "sha256sum 1"]


# --- a hostile layerdb: the computed result or one line, never another subvolume ---

def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _forge(env: WalkEnv, diff: str, parent: str | None, cache_id_of: Path) -> Path:
    """A layerdb entry under a made-up name claiming ``diff`` on ``parent``."""
    name = hashlib.sha256(f"forged {diff} {parent}".encode()).hexdigest()
    entry = env.layerdb / name
    _write(entry / "diff", diff)
    if parent is not None:
        _write(entry / "parent", parent)
    _write(entry / "cache-id", (cache_id_of / "cache-id").read_text())
    return entry


def _assert_resolves(env: WalkEnv, ref: str, expected: Path) -> None:
    for shell in SHELLS:
        r = env.resolve(ref, shell)
        assert r.returncode == 0 and r.stderr == "", (shell, r.stderr)
        assert Path(r.stdout.strip()) == expected, shell


def test_lying_diff_of_the_real_entry(hostile: WalkEnv) -> None:
    env = hostile
    expected = _expect(env, TALL)
    # The real layer 15 claims layer 14's diff: the walk finds no layer 15.
    _write(env.entry(TALL, 15) / "diff", env.layers[TALL][14])
    _assert_resolves(env, TALL, expected)
    # ...or its diff has a second line with the right DiffID.
    _write(env.entry(TALL, 15) / "diff", f"{env.layers[TALL][15]}\n{env.layers[TALL][15]}")
    _assert_resolves(env, TALL, expected)
    assert resolve_subvolume(env.hook.data_root, TALL) == expected


def test_forged_entry_beside_the_real_one_is_ambiguous(hostile: WalkEnv) -> None:
    env = hostile
    expected = _expect(env, TALL)
    _forge(env, env.layers[TALL][15], chain_ids(env.layers[TALL])[14], env.entry(OTHER, -1))
    _assert_resolves(env, TALL, expected)
    assert _walk_calls(env, TALL) == COMPUTED


def test_forged_chain_with_the_real_diff_lying_is_refused(hostile: WalkEnv) -> None:
    # The forged entries are the only ones the walk can take from layer 15 up,
    # to the top and another image's cache-id: one sha256sum over the links
    # rejects them and the computation, which ignores diff and parent, decides.
    env = hostile
    expected = _expect(env, TALL)
    _write(env.entry(TALL, 15) / "diff", "sha256:" + "0" * 64)
    parent = chain_ids(env.layers[TALL])[14]
    for diff in env.layers[TALL][15:]:
        parent = "sha256:" + _forge(env, diff, parent, env.entry(OTHER, -1)).name
    _assert_resolves(env, TALL, expected)
    # The walk did reach the top through them: the hashes refused it.
    assert _walk_calls(env, TALL) == WALKED + COMPUTED


def test_forged_entry_in_place_of_a_missing_one_fails_like_python(hostile: WalkEnv) -> None:
    env = hostile
    top = env.entry(TALL, -1)
    _forge(env, env.layers[TALL][-1], chain_ids(env.layers[TALL])[-2], env.entry(OTHER, -1))
    shutil.rmtree(top)
    with pytest.raises(ImageError, match="top layer"):
        resolve_subvolume(env.hook.data_root, TALL)
    for shell in SHELLS:
        r = env.resolve(TALL, shell)
        line = one_line_failure(r)
        assert "layer metadata" in line and top.name in line and r.stdout == ""


def test_parent_symlinks_out_of_the_data_root_are_not_followed(hostile: WalkEnv) -> None:
    env = hostile
    expected = _expect(env, TALL)
    outside = env.hook.workdir / "outside"
    # The only entry with its diff: its parent is not even read.
    (outside / "parent").write_text(chain_ids(env.layers[TALL])[14])
    (env.entry(TALL, 15) / "parent").unlink()
    (env.entry(TALL, 15) / "parent").symlink_to(outside / "parent")
    _assert_resolves(env, TALL, expected)
    # Two entries with layer 20's diff, the forged one's parent a symlink out to
    # the right chain: followed, the two would tie and the walk give up.
    (outside / "forged-parent").write_text(chain_ids(env.layers[TALL])[19])
    forged = _forge(env, env.layers[TALL][20], None, env.entry(OTHER, -1))
    (forged / "parent").symlink_to(outside / "forged-parent")
    _assert_resolves(env, TALL, expected)
    assert _walk_calls(env, TALL) == WALKED
    # The real one lying: the forged one is all there is, and the hashes refuse it.
    _write(env.entry(TALL, 20) / "diff", "sha256:" + "1" * 64)
    _assert_resolves(env, TALL, expected)
    assert _walk_calls(env, TALL) == WALKED + COMPUTED


def test_symlinked_diff_and_entry_are_not_read(hostile: WalkEnv) -> None:
    env = hostile
    expected = _expect(env, SHARED)
    outside = env.hook.workdir / "outside"
    # A diff that is a symlink out, and the top entry moved out and linked back:
    # the walk reads no diff at all, the computation decides.
    diff = env.entry(SHARED, 12) / "diff"
    (outside / "diff").write_text(diff.read_text())
    diff.unlink()
    diff.symlink_to(outside / "diff")
    _assert_resolves(env, SHARED, expected)
    assert _walk_calls(env, TALL) == COMPUTED         # for every image of the store
    diff.unlink()
    diff.write_text((outside / "diff").read_text())
    entry = env.entry(SHARED, -1)
    shutil.move(entry, outside / "entry")
    entry.symlink_to(outside / "entry")
    # The computation reads cache-id through the entry's symlink, as Python does.
    _assert_resolves(env, SHARED, expected)
    assert _walk_calls(env, TALL) == COMPUTED


def test_missing_or_bad_parent_of_a_non_base_layer(hostile: WalkEnv) -> None:
    env = hostile
    expected = _expect(env, TALL)
    # TALL's layer 1 is also OTHER's, on another base: its parent decides.
    assert _walk_calls(env, TALL) == WALKED
    parent = env.entry(TALL, 1) / "parent"
    saved = parent.read_text()
    for bad in ("missing", "garbage", "directory", "other chain"):
        if parent.is_dir():
            parent.rmdir()
        else:
            parent.unlink(missing_ok=True)
        if bad == "garbage":
            parent.write_text("sha256:xyz")
        elif bad == "directory":
            parent.mkdir()
        elif bad == "other chain":
            parent.write_text(chain_ids(env.layers[OTHER])[0])
        _assert_resolves(env, TALL, expected)
        assert _walk_calls(env, TALL) == COMPUTED, bad
    parent.unlink()
    parent.write_text(saved)
    assert _walk_calls(env, TALL) == WALKED
    # Layer 7's diff is in one entry only: taken without its parent, then hashed.
    (env.entry(TALL, 7) / "parent").unlink()
    _assert_resolves(env, TALL, expected)
    assert _walk_calls(env, TALL) == WALKED


def test_duplicate_diff_with_another_parent(hostile: WalkEnv) -> None:
    # Natural: OTHER's layer 1 is MID's (and TALL's) layer 1 on another base.
    # Forged: more entries with a DiffID of TALL on other parents.
    env = hostile
    expected = _expect(env, TALL)
    for i in (3, 10, 12, 29):
        _forge(env, env.layers[TALL][i], chain_ids(env.layers[OTHER])[-1], env.entry(OTHER, -1))
        _forge(env, env.layers[TALL][i], None, env.entry(OTHER, -1))
    _assert_resolves(env, TALL, expected)
    assert _walk_calls(env, TALL) == WALKED      # the parents tell them apart


def test_fifo_as_diff_does_not_block(hostile: WalkEnv) -> None:
    env = hostile
    expected = _expect(env, TALL)
    fifo_entry = env.layerdb / ("f" * 64)
    fifo_entry.mkdir()
    os.mkfifo(fifo_entry / "diff")
    forged = env.layerdb / ("e" * 64)
    forged.mkdir()
    (forged / "diff").symlink_to("/dev/zero")
    _assert_resolves(env, TALL, expected)      # run_core's timeout: 120 s
    assert _walk_calls(env, TALL) == COMPUTED
