"""The swap: the rw layer goes to ``<rw>.previous`` directly (ro flag first).

One rename less per boot than through ``<rw>.old``; the failure paths stay
safe: a failed rename never loses both the old root and the new one, the old
root gets its name back writable, and nothing unmarked at ``.previous``,
``.old`` or ``.new`` is ever deleted or changed (left byte for byte).  Under
busybox ash and dash, with an ``mv`` that fails one chosen rename.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import SINGLE, HookEnv
from tests.integration.hook.hookenv import subvolume_field as _uuid
from tests.integration.hook.test_hook_previous import (
    MARK,
    PREV,
    RW,
    _boot,
    _btrfs,
    _cmdline,
    _exists,
    _is_subvolume,
    _remove,
    _ro,
    _tree,
)

pytestmark = pytest.mark.lab

SHELLS = [("busybox", "sh"), ("dash",)]


@pytest.fixture()
def clean(env: HookEnv) -> Iterator[HookEnv]:
    """A fresh marked rw layer and an ours ``.previous`` (two boots)."""
    for p in (PREV, f"{RW}.old", f"{RW}.new"):
        _remove(env.top / p)
    _boot(env, **{"dockerboot.previous": "0"})
    _boot(env)
    assert _is_subvolume(env.top / PREV) and _ro(env.top / PREV)
    yield env
    for p in (PREV, f"{RW}.old", f"{RW}.new"):
        _remove(env.top / p)


def _failing_mv(env: HookEnv, source_suffix: str) -> dict[str, str]:
    """PATH with an mv that refuses to move a source ending in ``source_suffix``."""
    wrap = env.workdir / f"failing-mv{source_suffix.replace('/', '_')}"
    wrap.mkdir(exist_ok=True)
    (wrap / "mv").write_text(
        "#!/bin/sh\n"
        f'case "$1" in *"{source_suffix}") echo "mv: nope" >&2; exit 1 ;; esac\n'
        'exec /bin/mv "$@"\n')
    (wrap / "mv").chmod(0o755)
    return {"PATH": f"{wrap}:{os.environ['PATH']}"}


def _marked(p: Path) -> bool:
    return (p / MARK).read_text() == f"dockerboot-rwlayer v2 {_uuid(p, 'Subvolume ID')}\n"


FAILED_RENAMES = {
    # The new root cannot take its name: the old one gets it back.
    f"/{RW}.new": f"cannot rename {RW}.new to {RW}",
    # The old root cannot go aside: it stays where it is.
    f"/{RW}": f"cannot move the old rw layer {RW} aside",
}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("source", list(FAILED_RENAMES))
def test_a_failed_rename_leaves_the_old_root_in_place_writable(
        clean: HookEnv, source: str, shell: tuple[str, ...]) -> None:
    env = clean
    rw = env.top / RW
    old = _uuid(rw)
    (rw / "day").write_text("today\n")
    r = env.run_core(_cmdline(env), shell=shell, extra_env=_failing_mv(env, source))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and FAILED_RENAMES[source] in lines[0], r.stderr
    # The old root is under its name, writable, marked, as it was.
    assert _uuid(rw) == old and not _ro(rw) and _marked(rw)
    assert (rw / "day").read_text() == "today\n"
    # Writable again before the hook said that it is the stale root (dockerboot-stale.sh).
    reason = lines[0].removeprefix("dockerboot: ")
    assert (rw / "etc/dockerboot/boot").read_text() == f"stale={reason}\n"
    assert not _exists(env.top / f"{RW}.new") and not _exists(env.top / f"{RW}.old")
    assert not _exists(env.top / PREV)      # it had made room for the old root
    assert str(env.workdir / "run") not in Path("/proc/self/mounts").read_text()
    # The next boot is an everyday one again: the old root becomes .previous.
    _boot(env, shell)
    assert _uuid(env.top / PREV) == old and _ro(env.top / PREV)
    assert (env.top / PREV / "day").read_text() == "today\n"

def _unmarked_subvolume(p: Path, env: HookEnv) -> None:
    """A user's own subvolume (no snapshot of docker's: no legacy rw layer)."""
    _btrfs("subvolume", "create", p)
    (p / "mine").write_text("precious\n")


def _symlink_to_image(p: Path, env: HookEnv) -> None:
    p.symlink_to(env.subvolume(SINGLE))


PLANTED = {"unmarked subvolume": _unmarked_subvolume, "symlink to the image": _symlink_to_image}


@pytest.mark.parametrize("name", [f"{RW}.old", f"{RW}.new"])
@pytest.mark.parametrize("what", list(PLANTED))
def test_planted_old_or_new_stops_the_boot_and_stays(clean: HookEnv, what: str,
                                                     name: str) -> None:
    env = clean
    planted, rw, prev = env.top / name, env.top / RW, env.top / PREV
    PLANTED[what](planted, env)
    before, image = _tree(planted), _tree(env.subvolume(SINGLE))
    old, kept = _uuid(rw), _uuid(prev)
    r = env.run_core(_cmdline(env))
    assert r.returncode != 0 and f"{name} was not made by dockerboot" in r.stderr
    assert _tree(planted) == before and _tree(env.subvolume(SINGLE)) == image
    # Nothing else touched: the old root writable in place, .previous kept.
    assert _uuid(rw) == old and not _ro(rw) and _uuid(prev) == kept and _ro(prev)
    _remove(planted) if not planted.is_symlink() else planted.unlink()


@pytest.mark.parametrize("what", list(PLANTED))
def test_a_planted_previous_sends_the_old_root_through_old(clean: HookEnv, what: str) -> None:
    """Not ours at .previous: left byte for byte, the old root goes to .old
    and is deleted after the swap, as before."""
    env = clean
    prev = env.top / PREV
    _remove(prev)
    PLANTED[what](prev, env)
    before = _tree(prev)
    old = _uuid(env.top / RW)
    stderr = _boot(env)
    assert "not made by dockerboot" in stderr
    assert _tree(prev) == before
    assert old not in _btrfs("subvolume", "list", "-u", env.top).stdout
    _remove(prev) if not prev.is_symlink() else prev.unlink()
