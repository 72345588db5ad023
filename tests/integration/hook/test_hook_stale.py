"""A failed hook leaves the root of the boot before: it must not be marked good (issue 17, 8).

When dockerboot_main fails, the adapter opens the emergency shell; leaving it
lets the generator mount ``rootflags=subvol=<rw>``: the rw layer of the boot
before, unchanged.  Its ``/etc/dockerboot/boot`` still named that boot's image,
so the booted system's dockerboot-mark-good marked it good although this boot
never prepared it.  The hook now rewrites that file (``stale=<reason>``, no
``id=``) and the login message — only in a rw layer of its own, never through
a symlink out of it — and mark-good marks nothing for it.  Under busybox ash
and dash, against the real loop btrfs and docker store (hookenv.py); the
mark-good script runs for real (it mounts the partition's top level).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import MULTI, NOINIT, SINGLE, HookEnv, own_state_dir
from tests.integration.hook.hookenv import one_line_failure as _one_line
from tests.integration.hook.test_hook_assess import (
    MESSAGE,
    RW,
    SHELLS,
    _boot,
    _mark_good,
    _read,
    _set_good,
)
from tests.integration.hook.test_hook_previous import _btrfs, _exists, _remove, _tree

pytestmark = pytest.mark.lab

BOOTFILE = "etc/dockerboot/boot"
STALE_MSG = "dockerboot: this boot is the root of the boot before, unchanged: the hook failed: "
NOSUCH = "nosuch/image:9"


@pytest.fixture
def st(env: HookEnv, request: pytest.FixtureRequest) -> Iterator[str]:
    """A state directory of this test's own; the names the tests plant go afterwards."""
    yield own_state_dir(request, "stale")
    for name in (f"{RW}.new", f"{RW}.old", f"{RW}.previous"):
        _remove(env.top / name)
    rw = env.top / RW
    if rw.is_symlink() or (_exists(rw) and not (rw / ".dockerboot-rwlayer").is_file()):
        _remove(rw)                       # a planted rw layer: the next test boots a fresh one


def _plant_new(env: HookEnv) -> None:
    """A user's own subvolume at <rw>.new: the hook refuses to delete it and stops."""
    _btrfs("subvolume", "create", env.top / f"{RW}.new")
    (env.top / f"{RW}.new" / "mine").write_text("precious\n")


FAILURES = {
    # The configured image is gone, and no good image to fall back to.
    "image gone": lambda env: NOSUCH,
    # The assessment passes; the swap stops at a .new the hook did not make.
    "planted new": lambda env: (_plant_new(env), MULTI)[1],
}


def _ok_then_fail(env: HookEnv, st: str, failure: str, shell: tuple[str, ...]) -> str:
    """Boot MULTI once (never marked good), then a boot that fails: its one line."""
    r = _boot(env, MULTI, st, shell=shell)
    assert r.returncode == 0, r.stderr
    assert _read(env, st, "attempt") == f"{env.ids[MULTI]} 0\n"     # no systemd: not counted
    assert f"id={env.ids[MULTI]}\n" in (env.top / RW / BOOTFILE).read_text()
    return _one_line(_boot(env, FAILURES[failure](env), st, shell=shell))


# --- the regression: the stale root's image is not marked good ---

@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_boot_does_not_mark_the_root_of_the_boot_before_good(
        env: HookEnv, st: str, failure: str, shell: tuple[str, ...]) -> None:
    cid = env.ids[MULTI]
    r = _boot(env, MULTI, st, shell=shell)
    assert r.returncode == 0, r.stderr
    (env.top / st / "failed").write_text(f"{cid} 2\n")      # as if it had run out of tries
    _one_line(_boot(env, FAILURES[failure](env), st, shell=shell))
    before = {n: _read(env, st, n) for n in ("attempt", "failed", "good", "boot")}
    # The booted system (the stale root) runs mark-good against its own boot file.
    m = _mark_good(env, st, shell=shell)
    assert m.returncode == 0, m.stderr
    assert len(m.stdout.splitlines()) == 1 and "root of the boot before" in m.stdout, m.stdout
    assert "the next boots fall back to it" not in m.stdout and m.stderr == ""
    assert {n: _read(env, st, n) for n in before} == before
    assert before["good"] is None and before["attempt"] == f"{cid} 0\n"
    assert before["failed"] == f"{cid} 2\n"


# --- what the stale root says ---

def _run_message(rw: Path) -> str:
    """The login message as a login shell runs it: its stderr."""
    out = subprocess.run(["sh", str(rw / MESSAGE)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "", out
    return out.stderr


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_the_stale_root_says_why_in_its_boot_file_and_at_login(
        env: HookEnv, st: str, failure: str, shell: tuple[str, ...]) -> None:
    rw = env.top / RW
    line = _ok_then_fail(env, st, failure, shell)
    reason = line.removeprefix("dockerboot: ")
    assert (rw / BOOTFILE).read_text() == f"stale={reason}\n"
    assert _run_message(rw) == f"{STALE_MSG}{reason}\n"
    assert not [p for p in (rw / "etc/dockerboot").iterdir() if p.name != "boot"]
    # Each failed boot says its own reason (the file is rewritten, not appended to).
    line2 = _one_line(_boot(env, "nosuch/other:1", st, shell=shell))
    assert (rw / BOOTFILE).read_text() == f"stale={line2.removeprefix('dockerboot: ')}\n"


def test_only_the_boot_file_and_the_message_change(env: HookEnv, st: str) -> None:
    """The boot before was a fallback: its message is replaced, nothing else moves."""
    rw = env.top / RW
    _set_good(env, st, SINGLE)
    assert _boot(env, NOINIT, st).returncode == 0                   # a fallback boot
    assert "fell back" in _run_message(rw)
    before = _tree(rw)
    _plant_new(env)
    line = _one_line(_boot(env, MULTI, st))
    after = _tree(rw)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {BOOTFILE, MESSAGE, "etc/dockerboot", "etc/profile.d"}
    assert before["etc/dockerboot"][:2] == after["etc/dockerboot"][:2]   # same directory
    assert _run_message(rw) == f"{STALE_MSG}{line.removeprefix('dockerboot: ')}\n"
    # The next boot that works is an ordinary one again: no stale=, no message.
    _remove(env.top / f"{RW}.new")
    r = _boot(env, MULTI, st)
    assert r.returncode == 0, r.stderr
    assert "stale=" not in (rw / BOOTFILE).read_text()
    assert (rw / BOOTFILE).read_text() == _read(env, st, "boot")
    assert not _exists(rw / MESSAGE)


def test_an_ordinary_boot_writes_no_stale(env: HookEnv, st: str) -> None:
    rw = env.top / RW
    for _ in range(2):
        r = _boot(env, MULTI, st)
        assert r.returncode == 0, r.stderr
        text = (rw / BOOTFILE).read_text()
        assert "stale=" not in text and text == _read(env, st, "boot")
        assert text.splitlines()[1] == f"id={env.ids[MULTI]}"
        assert not _exists(rw / MESSAGE)
        assert not [p for p in (rw / "etc/dockerboot").iterdir() if p.name != "boot"]


# --- hostile: never through a symlink out of the rw layer ---

def _outside(env: HookEnv) -> Path:
    """A directory outside the rw layer holding a boot file and a message."""
    out = env.workdir / "outside"
    _remove(out)
    out.mkdir()
    (out / "boot").write_text(f"ref={MULTI}\nid={env.ids[MULTI]}\n")
    (out / "dockerboot-fallback.sh").write_text("echo outside\n")
    return out


HOSTILE = {
    "etc/dockerboot -> absolute": ("etc/dockerboot", lambda out: str(out)),
    "etc/dockerboot -> ../../..": ("etc/dockerboot", lambda out: "../" * 12 + str(out)[1:]),
    "etc/profile.d -> absolute": ("etc/profile.d", lambda out: str(out)),
    "boot file -> outside file": (BOOTFILE, lambda out: str(out / "boot")),
}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_a_symlink_out_of_the_stale_root_is_never_written_through(
        env: HookEnv, st: str, hostile: str, shell: tuple[str, ...]) -> None:
    rw, out = env.top / RW, _outside(env)
    assert _boot(env, MULTI, st, shell=shell).returncode == 0
    name, target = HOSTILE[hostile]
    first = _one_line(_boot(env, NOSUCH, st, shell=shell))    # before the link
    _remove(rw / name)
    (rw / name).parent.mkdir(parents=True, exist_ok=True)
    (rw / name).symlink_to(target(out))
    outside = _tree(out)
    line = _one_line(_boot(env, NOSUCH, st, shell=shell))
    assert line == first                  # the failure's own line, nothing more
    assert _tree(out) == outside
    reason = line.removeprefix("dockerboot: ")
    if name == BOOTFILE:                  # the link itself is replaced by a file
        assert not (rw / BOOTFILE).is_symlink()
        assert (rw / BOOTFILE).read_text() == f"stale={reason}\n"
    elif name == "etc/dockerboot":        # followed inside the rw layer only
        assert os.readlink(rw / name) == target(out)
        inside = rw / str(out)[1:]
        assert (inside / "boot").read_text() == f"stale={reason}\n"
        assert _run_message(rw) == f"{STALE_MSG}{reason}\n"
    else:
        assert (rw / BOOTFILE).read_text() == f"stale={reason}\n"
        assert (rw / str(out)[1:] / "dockerboot-fallback.sh").is_file()
    _remove(rw / str(out)[1:].split("/")[0])


# --- a rw layer that is not the hook's is never touched ---

def _unmarked(env: HookEnv) -> None:
    """A user's own subvolume at the rw name (no snapshot: no legacy rw layer)."""
    rw = env.top / RW
    _remove(rw)
    _btrfs("subvolume", "create", rw)
    (rw / "etc/dockerboot").mkdir(parents=True)
    (rw / BOOTFILE).write_text(f"ref={MULTI}\nid={env.ids[MULTI]}\n")


def _read_only(env: HookEnv) -> None:
    _btrfs("property", "set", "-ts", env.top / RW, "ro", "true")


def _symlink(env: HookEnv) -> None:
    """The rw name a symlink to the marked rw layer, renamed (its mark names it there)."""
    rw = env.top / RW
    rw.rename(env.top / f"{RW}.elsewhere")
    rw.symlink_to(f"{RW}.elsewhere")


NOT_OURS = {"unmarked subvolume": _unmarked, "read-only": _read_only, "symlink": _symlink}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("what", list(NOT_OURS))
def test_a_rw_layer_the_hook_may_not_write_is_left_byte_for_byte(
        env: HookEnv, st: str, what: str, shell: tuple[str, ...]) -> None:
    rw = env.top / RW
    for _ in range(2):                    # a marked rw layer and a .previous
        assert _boot(env, MULTI, st, shell=shell).returncode == 0
    NOT_OURS[what](env)
    target = rw.resolve()
    before = _tree(target)
    try:
        line = _one_line(_boot(env, NOSUCH, st, shell=shell))
        # Its own line, unchanged: a symlinked rw name stops the hook earlier.
        assert ("goes through the symlink" if what == "symlink" else NOSUCH) in line
        assert _tree(target) == before
    finally:
        if what == "read-only":
            _btrfs("property", "set", "-ts", rw, "ro", "false")
        if what == "symlink":
            rw.unlink()
            _remove(env.top / f"{RW}.elsewhere")


def test_a_write_that_fails_changes_nothing(env: HookEnv, st: str) -> None:
    """The boot file is written aside first: when that fails (a full disk), the
    boot file of the boot before stays as it is, no message, no leftover."""
    rw = env.top / RW
    assert _boot(env, MULTI, st).returncode == 0
    before = _tree(rw)
    wrap = env.workdir / "failing-mv-stale"
    wrap.mkdir(exist_ok=True)
    (wrap / "mv").write_text('#!/bin/sh\ncase "$*" in *.dockerboot-new*) '
                             'echo "mv: No space left on device" >&2; exit 1 ;; esac\n'
                             'exec /bin/mv "$@"\n')
    (wrap / "mv").chmod(0o755)
    params = {"root": f"LABEL={env.disk.label}", "rootflags": f"subvol={RW}",
              "docker_image": NOSUCH, "dockerboot.state": st}
    r = env.run_core(" ".join(f"{k}={v}" for k, v in params.items()),
                     extra_env={"PATH": f"{wrap}:{os.environ['PATH']}"})
    assert NOSUCH in _one_line(r)
    assert _tree(rw) == before
    # The same run without the failing mv does write (the wrapper was what failed).
    r = env.run_core(" ".join(f"{k}={v}" for k, v in params.items()))
    assert (rw / BOOTFILE).read_text() == f"stale={_one_line(r).removeprefix('dockerboot: ')}\n"


# --- mark-good marks nothing for a boot the hook did not prepare ---

@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("text, says", [
    ("stale=image x is not in the docker store — fix it\nid={id}\nref=x\n",
     "this boot is the root of the boot before, unchanged (the hook failed: image x is not in "
     "the docker store — fix it): nothing marked good"),
    ("ref=x\nfallback=\n",
     "{file} names no image: this system was not booted by dockerboot, nothing to do"),
], ids=["stale with an id", "no id"])
def test_mark_good_marks_nothing_without_a_prepared_image(
        env: HookEnv, st: str, shell: tuple[str, ...], text: str, says: str) -> None:
    bootfile = env.workdir / "handmade-boot"
    bootfile.write_text(text.format(id=env.ids[MULTI]))
    r = _mark_good(env, st, shell=shell, bootfile=bootfile)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines() == [f"dockerboot-mark-good: {says.format(file=bootfile)}"]
    assert not (env.top / st).exists()           # nothing mounted, nothing written


def test_a_legacy_rw_layer_is_the_hooks_too(env: HookEnv, st: str) -> None:
    """An unmarked writable snapshot of a docker layer: the first release's rw
    layer, which _db_ours accepts (and would delete): it says it is stale too."""
    rw = env.top / RW
    _remove(rw)
    _btrfs("subvolume", "snapshot", env.subvolume(SINGLE), rw)
    (rw / "etc/dockerboot").mkdir(parents=True)
    (rw / BOOTFILE).write_text(f"ref={SINGLE}\nid={env.ids[SINGLE]}\n")
    line = _one_line(_boot(env, NOSUCH, st))
    assert (rw / BOOTFILE).read_text() == f"stale={line.removeprefix('dockerboot: ')}\n"
    assert not (rw / ".dockerboot-rwlayer").exists()
    _remove(rw)                           # the next test boots a fresh one
