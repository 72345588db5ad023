"""Yesterday's root kept once (issue 10, point 5): ``<rw>.previous``.

The core runs for real under busybox ash with ``set -u`` against a real loop
btrfs and a stopped docker store (tests/integration/hook/hookenv.py).  At every
boot the rw layer moved aside becomes ``<rw>.previous``, read-only, and the
one of the boot before is deleted — only if the hook made it (marked, a
subvolume).  Whatever else stands at that name is left byte for byte as it
is: the boot succeeds with one warning and no copy is kept.
``dockerboot.previous=0`` keeps none and deletes an ours ``.previous``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import SINGLE, HookEnv, subvolume_show
from tests.integration.hook.hookenv import subvolume_field as _uuid

pytestmark = pytest.mark.lab

RW = "docker_rwlayer"
PREV = f"{RW}.previous"
MARK = ".dockerboot-rwlayer"


@pytest.fixture()
def clean(env: HookEnv) -> Iterator[HookEnv]:
    """Each test starts with a fresh rw layer and no ``.previous``."""
    _remove(env.top / PREV)
    _boot(env, **{"dockerboot.previous": "0"})
    assert not _exists(env.top / PREV)
    yield env
    _remove(env.top / PREV)


def _cmdline(env: HookEnv, **extra: str) -> str:
    params = {"root": f"LABEL={env.disk.label}", "rootflags": f"subvol={RW}",
              "docker_image": SINGLE, **extra}
    return " ".join(f"{k}={v}" for k, v in params.items())


def _boot(env: HookEnv, shell: tuple[str, ...] = ("busybox", "sh"), *,
          extra_env: dict[str, str] | None = None, **extra: str) -> str:
    """One successful run of the core; its stderr."""
    r = env.run_core(_cmdline(env, **extra), shell=shell, extra_env=extra_env)
    assert r.returncode == 0, r.stderr
    assert not _exists(env.top / f"{RW}.old") and not _exists(env.top / f"{RW}.new")
    assert str(env.workdir / "run") not in Path("/proc/self/mounts").read_text()
    return r.stderr


def _exists(p: Path) -> bool:
    return p.exists() or p.is_symlink()


def _btrfs(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["btrfs", *map(str, args)], check=True, capture_output=True,
                          text=True)


def _is_subvolume(p: Path) -> bool:
    return not p.is_symlink() and p.is_dir() and p.stat().st_ino == 256


def _remove(p: Path) -> None:
    """Test cleanup: whatever is at ``p`` (a read-only subvolume too)."""
    if not _exists(p):
        return
    if _is_subvolume(p):
        _btrfs("property", "set", "-ts", p, "ro", "false")
        _btrfs("subvolume", "delete", p)
    elif p.is_dir() and not p.is_symlink():
        subprocess.run(["rm", "-rf", str(p)], check=True)
    else:
        p.unlink()


def _ro(p: Path) -> bool:
    out = _btrfs("property", "get", "-ts", p, "ro").stdout.strip()
    assert out in ("ro=true", "ro=false"), out
    return out == "ro=true"


def _tree(p: Path) -> dict[str, tuple[int, int, str, bytes]]:
    """Everything at ``p`` without following symlinks: mode, inode, link, content."""
    def one(q: Path) -> tuple[int, int, str, bytes]:
        st = q.lstat()
        link = os.readlink(q) if q.is_symlink() else ""
        data = q.read_bytes() if q.is_file() and not q.is_symlink() else b""
        return (st.st_mode, st.st_ino, link, data)

    out = {".": one(p)}
    if p.is_dir() and not p.is_symlink():
        for dirpath, dirnames, filenames in os.walk(p):
            for name in dirnames + filenames:
                q = Path(dirpath) / name
                out[str(q.relative_to(p))] = one(q)
    return out


def _warnings(stderr: str) -> list[str]:
    """The note's warnings about .previous (the note is one line, "; " between)."""
    return [w for line in stderr.splitlines() for w in line.split("; ")
            if w.removeprefix("dockerboot: ").startswith(f"warning: {PREV}")]


# --- kept once, read-only, replaced at the next boot ---

@pytest.mark.parametrize("shell", [("busybox", "sh"), ("dash",)], ids=lambda s: s[0])
def test_previous_root_is_kept_read_only_for_one_boot(clean: HookEnv,
                                                      shell: tuple[str, ...]) -> None:
    env = clean
    rw, prev = env.top / RW, env.top / PREV
    first = _uuid(rw)
    (rw / "lost-at-reboot").write_text("day one\n")
    # A nested subvolume of the booted system (systemd's /var/lib/machines).
    (rw / "var/lib").mkdir(parents=True, exist_ok=True)
    _btrfs("subvolume", "create", rw / "var/lib/machines")
    (rw / "var/lib/machines/m").write_text("m\n")
    assert _warnings(_boot(env, shell)) == []
    assert _is_subvolume(prev) and _ro(prev)
    assert _uuid(prev) == first                                # the very root, renamed
    assert (prev / "lost-at-reboot").read_text() == "day one\n"
    assert (prev / MARK).read_text() == f"dockerboot-rwlayer v2 {_uuid(prev, 'Subvolume ID')}\n"
    with pytest.raises(OSError):
        (prev / "lost-at-reboot").write_text("changed")      # read-only for real
    assert not (rw / "lost-at-reboot").exists() and _uuid(rw) != first

    # The next boot replaces it (read-only, with a nested subvolume in it)
    # by the root of the boot in between.
    second = _uuid(rw)
    (rw / "day-two").write_text("day two\n")
    assert _warnings(_boot(env, shell)) == []
    assert _ro(prev) and _uuid(prev) == second
    assert (prev / "day-two").read_text() == "day two\n"
    assert not (prev / "lost-at-reboot").exists()
    assert b"machines" not in subprocess.run(
        ["btrfs", "subvolume", "list", str(env.top)], capture_output=True, check=True).stdout


def test_a_previous_marked_by_an_older_hook_is_ours(clean: HookEnv) -> None:
    """Hooks before the v2 mark wrote "v1 <the subvolume's UUID>" (checked
    with btrfs subvolume show): such a .previous is still replaced without a
    warning; one naming another UUID stays (the forged marks below)."""
    env = clean
    _boot(env)
    prev = env.top / PREV
    _btrfs("property", "set", "-ts", prev, "ro", "false")
    (prev / MARK).write_text(f"dockerboot-rwlayer v1 {_uuid(prev)}\n")
    _btrfs("property", "set", "-ts", prev, "ro", "true")
    old, rw = _uuid(prev), _uuid(env.top / RW)
    assert _warnings(_boot(env)) == []
    assert _uuid(prev) == rw and old not in _btrfs("subvolume", "list", "-u", env.top).stdout


def test_previous_0_keeps_none_and_deletes_ours(clean: HookEnv) -> None:
    """dockerboot.previous=0: no .previous is made, and an existing one the
    hook made is deleted (turning it off gives the space back)."""
    env = clean
    _boot(env)
    assert _is_subvolume(env.top / PREV)
    stderr = _boot(env, **{"dockerboot.previous": "0"})
    assert not _exists(env.top / PREV) and _warnings(stderr) == []
    _boot(env, **{"dockerboot.previous": "0"})
    assert not _exists(env.top / PREV)
    # Anything but 0 keeps the default.
    _boot(env, **{"dockerboot.previous": "no"})
    assert _ro(env.top / PREV)


def test_first_boot_leaves_an_ours_previous_alone(clean: HookEnv) -> None:
    """No rw layer moved aside (a first boot): nothing newer to keep, the
    existing .previous stays."""
    env = clean
    _boot(env)
    kept = _uuid(env.top / PREV)
    _remove(env.top / RW)
    _boot(env)
    assert _uuid(env.top / PREV) == kept


# --- never harm: what is not ours stays as it is, the boot goes on ---

def _user_dir(p: Path) -> None:
    (p / "sub").mkdir(parents=True)
    (p / "sub/notes.txt").write_text("mine\n")
    (p / MARK).write_text("dockerboot-rwlayer v1 not-a-uuid\n")
    os.chmod(p / "sub", 0o700)


def _user_file(p: Path) -> None:
    p.write_bytes(b"\x00precious\n")


def _link_to_data_root(p: Path) -> None:
    p.symlink_to("docker")


def _link_to_image(p: Path, env: HookEnv) -> None:
    p.symlink_to(env.subvolume(SINGLE))


def _user_subvolume(p: Path) -> None:
    _btrfs("subvolume", "create", p)
    (p / "data").write_text("mine\n")


def _forged_mark(p: Path) -> None:
    _btrfs("subvolume", "create", p)
    (p / MARK).write_text("dockerboot-rwlayer v1 00000000-0000-0000-0000-000000000000\n")


def _forged_v2_mark(p: Path, env: HookEnv, subvolume: str) -> None:
    # A subvolume whose mark names another one's ID: the image's, the rw layer's, the top level.
    _btrfs("subvolume", "create", p)
    ids = {"image": _uuid(env.subvolume(SINGLE), "Subvolume ID"),
           "rw": _uuid(env.top / RW, "Subvolume ID"), "top": "5",
           "own with a leading zero": "0" + _uuid(p, "Subvolume ID")}
    (p / MARK).write_text(f"dockerboot-rwlayer v2 {ids[subvolume]}\n")


def _copied_mark(p: Path, env: HookEnv) -> None:
    # A snapshot of the hook's own root: the mark names the original's UUID.
    _btrfs("subvolume", "snapshot", env.top / RW, p)


def _ours_but_a_directory(p: Path, env: HookEnv) -> None:
    # The right mark (the rw layer's own UUID) in a plain directory.
    p.mkdir()
    (p / MARK).write_text((env.top / RW / MARK).read_text())


def _ours_read_only_unmarked(p: Path, env: HookEnv) -> None:
    # A legacy-looking snapshot of an image layer, read-only: never accepted.
    _btrfs("subvolume", "snapshot", "-r", env.subvolume(SINGLE), p)


HOSTILE = {
    "user directory": lambda p, env: _user_dir(p),
    "regular file": lambda p, env: _user_file(p),
    "symlink to the data-root": lambda p, env: _link_to_data_root(p),
    "symlink to the image": _link_to_image,
    "user subvolume": lambda p, env: _user_subvolume(p),
    "forged mark": lambda p, env: _forged_mark(p),
    **{f"v2 mark naming the {k}": lambda p, env, k=k: _forged_v2_mark(p, env, k)
       for k in ("image", "rw", "top", "own with a leading zero")},
    "copied mark": _copied_mark,
    "marked directory": _ours_but_a_directory,
    "read-only image snapshot": _ours_read_only_unmarked,
}


def without_stat(env: HookEnv) -> dict[str, str]:
    """PATH with a ``stat`` that fails: the hook tells subvolume IDs with
    btrfs-progs instead (an initramfs without stat, a kernel whose statfs
    says no subvolume ID)."""
    wrap = env.workdir / "no-stat"
    wrap.mkdir(exist_ok=True)
    (wrap / "stat").write_text("#!/bin/sh\nexit 1\n")
    (wrap / "stat").chmod(0o755)
    return {"PATH": f"{wrap}:{os.environ['PATH']}"}


@pytest.mark.parametrize("ids_by", ["stat", "btrfs-progs"])
@pytest.mark.parametrize("what", list(HOSTILE))
def test_a_previous_not_ours_is_left_untouched(clean: HookEnv, what: str, ids_by: str) -> None:
    env = clean
    prev = env.top / PREV
    HOSTILE[what](prev, env)
    before = _tree(prev)
    data_root = _tree(env.data_root / "image")
    image = _tree(env.subvolume(SINGLE))
    old_rw = _uuid(env.top / RW)
    stderr = _boot(env, extra_env=without_stat(env) if ids_by == "btrfs-progs" else None)
    warnings = _warnings(stderr)
    assert len(warnings) == 1 and "not made by dockerboot" in warnings[0], stderr
    assert _tree(prev) == before
    assert _tree(env.data_root / "image") == data_root
    assert _tree(env.subvolume(SINGLE)) == image
    # The rw layer was replaced and the old one deleted as before.
    assert _uuid(env.top / RW) != old_rw
    assert old_rw not in _btrfs("subvolume", "list", "-u", env.top).stdout
    # With it turned off: still untouched, and nothing to warn about.
    stderr = _boot(env, **{"dockerboot.previous": "0"})
    assert _tree(prev) == before and _warnings(stderr) == []


@pytest.mark.parametrize("param, value", [
    ("toplayer_path", f"{PREV}/tl"),
    ("dockerboot.state", f"{PREV}/state"),
    ("dockerboot.state", PREV),
])
def test_a_previous_name_overlapping_protected_paths_is_never_used(
        clean: HookEnv, param: str, value: str) -> None:
    """The name is refused like a reserved rw name (_db_check_rw) — but as a
    warning: no .previous is made and the boot goes on."""
    env = clean
    _boot(env)                                 # an ours .previous, made before
    kept = _uuid(env.top / PREV)
    stderr = _boot(env, **{param: value})
    warnings = _warnings(stderr)
    assert len(warnings) == 1 and "is, holds or lies inside" in warnings[0], stderr
    # Neither deleted nor replaced.
    assert _is_subvolume(env.top / PREV) and _uuid(env.top / PREV) == kept
    assert not (env.top / PREV / "tl").exists()
    # The state directory inside it could not be made (read-only): a warning.
    if param == "dockerboot.state":
        assert "cannot record this boot" in stderr


def test_a_previous_name_as_data_root_is_never_used(clean: HookEnv) -> None:
    env = clean
    alias = env.top / PREV
    alias.symlink_to("docker")                # docker_path reaches the store by it
    stderr = _boot(env, docker_path=PREV)
    warnings = _warnings(stderr)
    assert len(warnings) == 1 and "is, holds or lies inside" in warnings[0], stderr
    assert alias.is_symlink() and os.readlink(alias) == "docker"
    assert subvolume_show(env.data_root).returncode == 0


def test_a_failed_ro_flag_falls_back_to_deleting_the_old_root(clean: HookEnv) -> None:
    """btrfs refuses the ro flag (an old kernel, a full disk): one warning,
    the old root deleted as before, the boot goes on."""
    env = clean
    wrap = env.workdir / "failing-btrfs"
    wrap.mkdir(exist_ok=True)
    real = subprocess.run(["sh", "-c", "command -v btrfs"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (wrap / "btrfs").write_text(
        "#!/bin/sh\n"
        'case "$*" in "property set -ts "*" ro true") echo "ERROR: nope" >&2; exit 1 ;; esac\n'
        f'exec {real} "$@"\n')
    (wrap / "btrfs").chmod(0o755)
    old_rw = _uuid(env.top / RW)
    r = env.run_core(_cmdline(env), extra_env={"PATH": f"{wrap}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    warnings = _warnings(r.stderr)
    assert len(warnings) == 1 and "cannot make the last root read-only" in warnings[0]
    assert not _exists(env.top / PREV) and not _exists(env.top / f"{RW}.old")
    assert old_rw not in _btrfs("subvolume", "list", "-u", env.top).stdout


def test_a_legacy_unmarked_root_is_replaced_but_not_kept(clean: HookEnv) -> None:
    """A root of the first release (no mark, accepted by the legacy rule) is
    deleted as before: read-only and unmarked it could never be ours again."""
    env = clean
    rw = env.top / RW
    _remove(rw)
    _btrfs("subvolume", "snapshot", env.subvolume(SINGLE), rw)
    (rw / "legacy-file").write_text("x")
    legacy = _uuid(rw)
    stderr = _boot(env)
    assert _warnings(stderr) == [] and not _exists(env.top / PREV)
    assert legacy not in _btrfs("subvolume", "list", "-u", env.top).stdout
    _boot(env)                                 # the marked root of that boot is kept
    assert _ro(env.top / PREV) and not (env.top / PREV / "legacy-file").exists()


@pytest.mark.parametrize("shell", [("busybox", "sh"), ("dash",)], ids=lambda s: s[0])
def test_an_everyday_boot_asks_btrfs_progs_only_to_write(clean: HookEnv,
                                                         shell: tuple[str, ...]) -> None:
    """Subvolume IDs (the marks of the rw layer and .previous, the new root's
    own) come from one ``stat -f`` each: btrfs-progs only snapshots, flags and
    deletes — and the nested subvolumes of a read-only .previous go in one call."""
    env = clean
    rw = env.top / RW
    (rw / "var/lib").mkdir(parents=True, exist_ok=True)
    for name in ("machines", "portables"):
        _btrfs("subvolume", "create", rw / "var/lib" / name)
    _boot(env, shell)                  # rw with both nested -> .previous, read-only
    wrap, log = env.workdir / "logging-btrfs", env.workdir / "btrfs.log"
    wrap.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    real = subprocess.run(["sh", "-c", "command -v btrfs"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (wrap / "btrfs").write_text(f'#!/bin/sh\necho "$*" >>"{log}"\nexec {real} "$@"\n')
    (wrap / "btrfs").chmod(0o755)
    _boot(env, shell, extra_env={"PATH": f"{wrap}:{os.environ['PATH']}"})
    calls = log.read_text().splitlines()
    assert [c.split()[0:2] for c in calls] == [
        ["subvolume", "snapshot"],
        ["subvolume", "delete"],            # .previous: its nested ones stop it
        ["property", "set"],                # .previous writable
        ["subvolume", "delete"],            # both nested ones, one call
        ["subvolume", "delete"],            # .previous
        ["property", "set"],                # the rw layer read-only: the new .previous
    ], calls
    assert "var/lib/machines" in calls[3] and "var/lib/portables" in calls[3]
    assert "machines" not in _btrfs("subvolume", "list", env.top).stdout
