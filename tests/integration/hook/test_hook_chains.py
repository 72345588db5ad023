"""The hook's record of ChainIDs (state file ``chains``, dockerboot-assess.sh).

A ChainID is a function of the image's config, whose file name is its
digest: each boot records "<id> <chain>" for the images it resolved, and the
next boot reads the record instead of parsing the config and hashing (a sed
and two processes or more, ~30 ms each under TCG).  The core runs for real
under busybox sh and dash on a real loop btrfs and docker store, as in
test_hook_assess; a record that does not fit is never trusted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import (
    MULTI,
    SINGLE,
    HookEnv,
    chain_id_py,
    libexec,
    own_state_dir,
)
from tests.integration.hook.hookenv import subvolume_field as _field

pytestmark = pytest.mark.lab

RW = "docker_rwlayer"
SHELLS = [("busybox", "sh"), ("dash",)]


@pytest.fixture
def st(env: HookEnv, request: pytest.FixtureRequest) -> str:
    """A state directory of this test's own, made (the hostile records go in first)."""
    name = own_state_dir(request, "ch")
    (env.top / name).mkdir(mode=0o700, parents=True)
    return name


def _counting(env: HookEnv) -> tuple[dict[str, str], Path]:
    """LIBEXEC and PATH whose sed and sha256sum log each call."""
    d = env.workdir / "counting-chains"
    log = d / "calls.log"
    if not d.exists():
        d.mkdir()
        for f in libexec(env.workdir).iterdir():
            if f.name != "sha256sum":
                (d / f.name).symlink_to(os.readlink(f))
        for tool, target in (("sha256sum", "/usr/bin/sha256sum"), ("sed", "/bin/sed")):
            (d / tool).write_text(f'#!/bin/sh\necho {tool} >>"{log}"\nexec {target} "$@"\n')
            (d / tool).chmod(0o755)
    log.write_text("")
    return {"DOCKERBOOT_LIBEXEC": str(d), "PATH": f"{d}:{os.environ['PATH']}"}, log


def _boot(env: HookEnv, st: str, shell: tuple[str, ...]) -> list[str]:
    """One successful run of the core booting MULTI; the sed/sha256sum calls it made."""
    extra, log = _counting(env)
    cmdline = (f"root=LABEL={env.disk.label} rootflags=subvol={RW} docker_image={MULTI} "
               f"dockerboot.state={st}")
    r = env.run_core(cmdline, shell=shell, extra_env=extra)
    assert r.returncode == 0, r.stderr
    # The rw layer is a snapshot of MULTI's top layer (the kernel's word).
    assert _field(env.top / RW, "Parent UUID") == _field(env.subvolume(MULTI))
    return log.read_text().split()


def _record(env: HookEnv, ref: str = MULTI) -> str:
    return (f"{env.ids[ref].removeprefix('sha256:')} "
            f"{chain_id_py(env.layers[ref]).removeprefix('sha256:')}\n")


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_the_next_boot_takes_the_chain_from_the_record(env: HookEnv, st: str,
                                                       shell: tuple[str, ...]) -> None:
    assert "sed" in _boot(env, st, shell)                  # computed: config parsed
    assert (env.top / st / "chains").read_text() == _record(env)
    assert _boot(env, st, shell) == []                     # no parse, no hash
    assert (env.top / st / "chains").read_text() == _record(env)


def _write(text: str) -> Callable[[Path, HookEnv], None]:
    return lambda p, env: p.write_text(text)


def _symlink(p: Path, env: HookEnv) -> None:
    outside = env.workdir / "outside-chains"
    outside.write_text(_record(env))                       # right, but not ours to read
    p.symlink_to(outside)


NOT_FITTING: dict[str, Callable[[Path, HookEnv], None]] = {
    "garbage": _write("not a record\n\x00\n"),
    "a layer that is not there": lambda p, env: p.write_text(
        _record(env).split()[0] + " " + "0" * 64 + "\n"),
    "another image's layer, upper case": lambda p, env: p.write_text(
        _record(env).split()[0].upper() + " " + _record(env, SINGLE).split()[1].upper() + "\n"),
    "three words": lambda p, env: p.write_text(_record(env).strip() + " x\n"),
    "the ninth line": lambda p, env: p.write_text("x y\n" * 8 + _record(env)),
    "a symlink": _symlink,
}


@pytest.mark.parametrize("what", list(NOT_FITTING))
def test_a_record_that_does_not_fit_is_never_used(env: HookEnv, st: str, what: str) -> None:
    chains = env.top / st / "chains"
    NOT_FITTING[what](chains, env)
    assert "sed" in _boot(env, st, SHELLS[0])              # computed again, right image
    assert not chains.is_symlink() and chains.read_text() == _record(env)
    if what == "a symlink":
        assert (env.workdir / "outside-chains").read_text() == _record(env)


def test_a_directory_in_its_place_is_left_alone(env: HookEnv, st: str) -> None:
    chains = env.top / st / "chains"
    chains.mkdir()
    (chains / "mine").write_text("mine\n")
    assert "sed" in _boot(env, st, SHELLS[0])
    assert sorted(p.name for p in chains.iterdir()) == ["mine"]
    # MULTI has no systemd: recorded, not counted.
    assert (env.top / st / "attempt").read_text() == f"{env.ids[MULTI]} 0\n"
