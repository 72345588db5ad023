"""Bad marks and unassessed images (issue 17, point 4), the hook and mark-good for real.

On the hook tests' loop btrfs (busybox sh and dash): ``dockerboot-mark-good
--bad`` (what ``dockerboot-mark-bad`` runs) and a boot whose checks failed
(a stub ``systemctl``: DOCKERBOOT_SYSTEMCTL) write ``state/failed`` with the
reason, and the next boot falls back to the last good image with one line
that repeats it; the last good image is never marked bad; an image without
systemd is booted, not counted, and said so — also when the top layer
brings units of its own.  SYSTEMD is the test image with systemd, SINGLE
and MULTI have none.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.integration.hook.hookenv import (
    MARK_GOOD,
    MARK_GOOD_UNIT,
    MULTI,
    RW,
    SHELLS,
    SINGLE,
    SYSTEMD,
    HookEnv,
    own_state_dir,
)

pytestmark = pytest.mark.lab


@pytest.fixture
def st(env: HookEnv, request: pytest.FixtureRequest) -> str:
    return own_state_dir(request, "mb")


def _boot(env: HookEnv, image: str, state: str, shell: tuple[str, ...] = SHELLS[0],
          **extra: str) -> str:
    params = {"root": f"LABEL={env.disk.label}", "rootflags": f"subvol={RW}",
              "docker_image": image, "dockerboot.state": state, **extra}
    r = env.run_core(" ".join(f"{k}={v}" for k, v in params.items()), shell=shell)
    assert r.returncode == 0, r.stderr
    return r.stderr


def _mark(env: HookEnv, state: str, *args: str, shell: tuple[str, ...] = SHELLS[0],
          systemctl: str = "none", tries: str = "") -> subprocess.CompletedProcess:
    cmdline = env.workdir / "mb-cmdline"
    cmdline.write_text(f"root=LABEL={env.disk.label} rootflags=subvol={RW} "
                       f"dockerboot.state={state}{tries and ' dockerboot.tries=' + tries}\n")
    e = {"PATH": os.environ["PATH"], "DOCKERBOOT_CMDLINE_FILE": str(cmdline),
         "DOCKERBOOT_BOOTFILE": str(env.top / RW / "etc/dockerboot/boot"),
         "DOCKERBOOT_MNT": str(env.workdir / "mb-mnt"), "DOCKERBOOT_SYSTEMCTL": systemctl}
    return subprocess.run([*shell, str(MARK_GOOD), *args], env=e, text=True,
                          capture_output=True, timeout=60)


def _read(env: HookEnv, state: str, name: str) -> str | None:
    path = env.top / state / name
    return path.read_text() if path.exists() else None


def _set_good(env: HookEnv, state: str, ref: str) -> None:
    (env.top / state).mkdir(mode=0o700, parents=True, exist_ok=True)
    (env.top / state / "good").write_text(env.ids[ref] + "\n")


def _systemd_tried_once(env: HookEnv, st: str, shell: tuple[str, ...]) -> str:
    """SINGLE the last good image, the systemd image booted once (attempt 1): its ID."""
    _set_good(env, st, SINGLE)
    _boot(env, SYSTEMD, st, shell)
    return env.ids[SYSTEMD]


def _id12(env: HookEnv, ref: str) -> str:
    return env.ids[ref].removeprefix("sha256:")[:12]


def _marker(env: HookEnv) -> str:
    return (env.top / RW / "etc/dbw-image-marker").read_text()


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_mark_bad_falls_back_at_the_next_boot_with_the_reason(env: HookEnv, st: str,
                                                              shell: tuple[str, ...]) -> None:
    cid = _systemd_tried_once(env, st, shell)
    assert _read(env, st, "attempt") == f"{cid} 1\n"
    r = _mark(env, st, "--bad", "too", "slow", shell=shell)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.splitlines() == [
        f"dockerboot-mark-bad: image {_id12(env, SYSTEMD)} ({SYSTEMD}) marked bad "
        "(dockerboot-mark-bad: too slow): the next boot falls back to the last good image "
        f"{_id12(env, SINGLE)}"]
    # N = dockerboot.tries (2), each file whole; the reason on the second line.
    assert _read(env, st, "failed") == f"{cid} 2\ndockerboot-mark-bad: too slow\n"
    assert _read(env, st, "attempt") == f"{cid} 2\n"
    assert _read(env, st, "good") == env.ids[SINGLE] + "\n"
    assert not any(p.name.endswith(".tmp") for p in (env.top / st).iterdir())
    err = _boot(env, SYSTEMD, st, shell)
    assert [x for x in err.splitlines() if "instead" in x] == [
        f"dockerboot: {SYSTEMD}: was marked bad (dockerboot-mark-bad: too slow) — booting the "
        f"last good image {_id12(env, SINGLE)} instead"]
    assert _marker(env) != "systemd\n"
    assert _read(env, st, "failed") == f"{cid} 2\ndockerboot-mark-bad: too slow\n"
    # Still configured: still not booted.
    err = _boot(env, SYSTEMD, st, shell)
    assert "was marked bad (dockerboot-mark-bad: too slow)" in err


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_a_failed_boot_complete_target_marks_the_boot_bad(env: HookEnv, st: str,
                                                          shell: tuple[str, ...]) -> None:
    cid = _systemd_tried_once(env, st, shell)
    # The unit pulls boot-complete.target in and waits for it.
    unit = (env.top / RW / "etc/systemd/system/dockerboot-mark-good.service").read_text()
    assert unit == MARK_GOOD_UNIT.read_text()
    assert "\nWants=boot-complete.target\n" in unit
    assert "\nAfter=multi-user.target boot-complete.target\n" in unit
    stub = env.workdir / f"systemctl-{shell[0]}"
    stub.write_text("#!/bin/sh\ncase $1 in\n  is-active) echo inactive; exit 3 ;;\n"
                    "  show) echo 1 ;;\n"
                    "  list-units) echo 'dbw-check.service loaded failed failed Check' ;;\n"
                    "esac\n")
    stub.chmod(0o755)
    r = _mark(env, st, shell=shell, systemctl=str(stub))
    why = "boot-complete.target inactive, 1 failed unit(s): dbw-check.service"
    assert r.returncode == 1 and r.stderr == "", r.stderr
    assert r.stdout.splitlines() == [
        f"dockerboot-mark-good: image {_id12(env, SYSTEMD)} ({SYSTEMD}) marked bad ({why}): "
        f"the next boot falls back to the last good image {_id12(env, SINGLE)}"]
    assert _read(env, st, "failed") == f"{cid} 2\n{why}\n"
    assert _read(env, st, "good") == env.ids[SINGLE] + "\n"
    err = _boot(env, SYSTEMD, st, shell)
    assert f"dockerboot: {SYSTEMD}: was marked bad ({why}) — booting the last good image " \
        f"{_id12(env, SINGLE)} instead" in err.splitlines()
    # The fallback's own boot is bad too: the good image is never marked bad.
    r = _mark(env, st, shell=shell, systemctl=str(stub))
    assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1
    assert f"image {_id12(env, SINGLE)}" in r.stderr
    assert f"is the last good image: not marked bad ({why})" in r.stderr
    assert _read(env, st, "good") == env.ids[SINGLE] + "\n"
    assert _read(env, st, "failed") == f"{cid} 2\n{why}\n"


def test_the_last_good_image_is_never_marked_bad_and_tries_zero_marks_nothing(
        env: HookEnv, st: str) -> None:
    _set_good(env, st, SYSTEMD)
    _boot(env, SYSTEMD, st)
    before = {n: _read(env, st, n) for n in ("attempt", "good", "failed")}
    r = _mark(env, st, "--bad")
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert r.stderr.splitlines() == [
        f"dockerboot-mark-bad: image {_id12(env, SYSTEMD)} ({SYSTEMD}) is the last good image: "
        "not marked bad (dockerboot-mark-bad) — the hook never lets the image it falls back to "
        "run out; boot another image and let it be marked good first"]
    r = _mark(env, st, "--bad", tries="0")
    assert r.returncode == 1 and "nothing marked bad" in r.stdout
    assert {n: _read(env, st, n) for n in before} == before
    assert not (env.workdir / "mb-mnt").exists()


def test_without_a_good_image_a_bad_one_still_boots(env: HookEnv, st: str) -> None:
    _boot(env, SYSTEMD, st)
    r = _mark(env, st, "--bad")
    assert r.returncode == 0 and "there is no last good image" in r.stdout, r.stdout
    err = _boot(env, SYSTEMD, st)
    assert _marker(env) == "systemd\n"
    assert f"warning: {SYSTEMD} was marked bad (dockerboot-mark-bad), and there is no good " \
        "image to fall back to" in err


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_an_image_without_systemd_is_never_reverted_for_lack_of_a_mark(
        env: HookEnv, st: str, shell: tuple[str, ...]) -> None:
    """Its tries are not counted (attempt "<id> 0") and one line says so, also when the
    top layer brings an etc/systemd/system of its own (the wizard's top layer does)."""
    _set_good(env, st, SINGLE)
    tl = f"boot_docker/mb-toplayer-{shell[0]}"
    shutil.rmtree(env.top / tl, ignore_errors=True)
    units = env.top / tl / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "mine.service").write_text("[Unit]\nDescription=mine\n")
    line = (f"image {MULTI} has no systemd: its boots are not assessed (nothing "
            "marks it good or bad)")
    for _ in range(4):
        err = _boot(env, MULTI, st, shell, toplayer_path=tl)
        assert "instead" not in err and len([x for x in err.splitlines() if line in x]) == 1, err
        assert _read(env, st, "attempt") == f"{env.ids[MULTI]} 0\n"
        assert (env.top / RW / "etc/systemd/system/mine.service").exists()
        assert not (env.top / RW / "usr/local/lib/dockerboot").exists()
    assert _read(env, st, "failed") is None
    assert "tries=0\n" in (env.top / RW / "etc/dockerboot/boot").read_text()
    shutil.rmtree(env.top / tl)
    # A fallback to it names it by ID (the configured ref is not what booted).
    err = _boot(env, "nosuch/image:9", st, shell)
    assert f"dockerboot: image {_id12(env, SINGLE)} has no systemd: its boots are not " \
        "assessed (nothing marks it good or bad)" in err.splitlines()
