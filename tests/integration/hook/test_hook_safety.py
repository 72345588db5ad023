"""The boot hook never harms the machine (issue 8), under hostile stores.

The core runs under busybox ash (and dash) with ``set -u`` against a real
loop btrfs whose docker data-root a real (then stopped) dockerd filled: it
deletes only rw layers it marked, refuses reserved ``subvol=`` names with
nothing deleted, deletes nested subvolumes of any name, reads only
``rootfs.diff_ids`` (like the Python resolver), and lays the top layer over
the image without writing through or resolving outside its symlinks.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import (
    DECOY,
    LIBRARY,
    LINKS,
    MULTI,
    SINGLE,
    HookEnv,
    hook_env,
    libexec,
    subvolume_show,
)
from tests.integration.hook.hookenv import (
    one_line_failure as _one_line,
)
from tests.integration.hook.hookenv import (
    subvolume_field as _uuid,
)
from wizard.common.errors import ImageError
from wizard.store.images import resolve_subvolume

pytestmark = pytest.mark.lab

RW = "docker_rwlayer"
MARK = ".dockerboot-rwlayer"


@pytest.fixture(scope="module")
def env() -> Iterator[HookEnv]:
    with hook_env() as e:
        r = e.run_core(_cmdline(e, image=SINGLE))      # a first, marked rw layer
        assert r.returncode == 0, r.stderr
        yield e


def _cmdline(env: HookEnv, *, rootflags: str = f"subvol={RW}", image: str = SINGLE,
             **extra: str) -> str:
    params = {"root": f"LABEL={env.disk.label}", "rootflags": rootflags,
              "docker_image": image, **extra}
    return " ".join(f"{k}={v}" for k, v in params.items())


def _btrfs(*args: str | Path) -> None:
    subprocess.run(["btrfs", *map(str, args)], check=True, capture_output=True)


def _state(env: HookEnv) -> dict[str, tuple[int, int, int, str]]:
    """Every path on the partition: mode, size, inode, link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(env.top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(env.top))] = (st.st_mode, st.st_size, st.st_ino,
                                                os.readlink(p) if p.is_symlink() else "")
    return out


def _unmounted(env: HookEnv) -> bool:
    return str(env.workdir / "run") not in Path("/proc/self/mounts").read_text()


# --- only what it made ---

def test_marked_rw_layer_is_replaced_and_marked_again(env: HookEnv) -> None:
    rw = env.top / RW
    assert (rw / MARK).read_text() == f"dockerboot-rwlayer v2 {_uuid(rw, 'Subvolume ID')}\n"
    old_uuid = _uuid(rw)
    (rw / "runtime-file").write_text("x")
    r = env.run_core(_cmdline(env, rootflags=f"compress=zstd,subvol={RW}", image=MULTI))
    assert r.returncode == 0, r.stderr
    assert _uuid(rw) != old_uuid and not (rw / "runtime-file").exists()
    assert (rw / "opt/one.txt").exists()
    assert (rw / MARK).read_text() == f"dockerboot-rwlayer v2 {_uuid(rw, 'Subvolume ID')}\n"
    assert not (env.top / f"{RW}.old").exists() and not (env.top / f"{RW}.new").exists()


@pytest.mark.parametrize("subvol, why", [
    ("docker", "data-root"), ("docker/btrfs", "data-root"), ("/docker/", "data-root"),
    ("docker/btrfs/subvolumes", "data-root"), ("boot_docker", "boot_docker"),
    ("boot_docker/toplayer", "boot_docker"), ("boot_docker/new", "boot_docker"),
    ("/", "top level"), ("", "top level"), ("//.", "top level"),
    ("..", ".."), ("a/../docker", ".."), (f"{RW}/../docker", ".."),
])
def test_reserved_subvol_is_refused_with_nothing_deleted(env: HookEnv, subvol: str,
                                                         why: str) -> None:
    before = _state(env)
    repos = (env.data_root / "image/btrfs/repositories.json").read_bytes()
    line = _one_line(env.run_core(_cmdline(env, rootflags=f"compress=zstd,subvol={subvol}")))
    assert why in line and "rootflags=subvol=" in line
    assert _state(env) == before
    assert (env.data_root / "image/btrfs/repositories.json").read_bytes() == repos
    assert not (env.workdir / "run").exists() or _unmounted(env)


def test_a_changed_toplayer_path_is_reserved_too(env: HookEnv) -> None:
    before = _state(env)
    line = _one_line(env.run_core(_cmdline(env, rootflags="subvol=elsewhere/tl",
                                           toplayer_path="elsewhere/tl/inner")))
    assert "elsewhere" in line
    assert _state(env) == before


# What a failed run may change in the hook's own rw layer: the boot file and
# login message that say it is stale (dockerboot-stale.sh), their directories.
STALE_FILES = {f"{RW}/etc", f"{RW}/etc/dockerboot", f"{RW}/etc/dockerboot/boot",
               f"{RW}/etc/profile.d", f"{RW}/etc/profile.d/dockerboot-fallback.sh"}


def _refused(env: HookEnv, subvol: str, *, stale: bool = False) -> str:
    """One line, nothing changed (with ``stale``: the hook's rw layer says it is stale)."""
    before = _state(env)
    line = _one_line(env.run_core(_cmdline(env, rootflags=f"subvol={subvol}")))
    after = _state(env)
    if stale:
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed <= STALE_FILES, changed
        assert (env.top / RW / "etc/dockerboot/boot").read_text() == \
            f"stale={line.removeprefix('dockerboot: ')}\n"
    else:
        assert after == before
    assert _unmounted(env)
    return line


def test_unmarked_plain_directory_is_refused(env: HookEnv) -> None:
    (env.top / "plain/sub").mkdir(parents=True)
    (env.top / "plain/sub/file").write_text("mine\n")
    assert "plain was not made by dockerboot" in _refused(env, "plain")


def test_unmarked_subvolumes_are_refused(env: HookEnv) -> None:
    mine = env.top / "mine"
    _btrfs("subvolume", "create", mine)
    (mine / "data").write_text("precious\n")
    assert "mine was not made by dockerboot" in _refused(env, "mine")
    # A writable snapshot of the user's own subvolume: no legacy rw layer either.
    _btrfs("subvolume", "snapshot", mine, env.top / "minesnap")
    assert "minesnap was not made by dockerboot" in _refused(env, "minesnap")
    # A copied mark names another subvolume's UUID: no mark.
    _btrfs("subvolume", "create", env.top / "forged")
    (env.top / "forged" / MARK).write_bytes((env.top / RW / MARK).read_bytes())
    assert "forged was not made by dockerboot" in _refused(env, "forged")
    # An unmarked leftover .old or .new is not deleted either (the rw layer,
    # the hook's, says that it is stale: it boots once the shell is left).
    _btrfs("subvolume", "snapshot", mine, env.top / f"{RW}.old")
    try:
        assert f"{RW}.old was not made by dockerboot" in _refused(env, RW, stale=True)
    finally:
        _btrfs("subvolume", "delete", env.top / f"{RW}.old")


def test_forged_id_marks_are_refused(env: HookEnv) -> None:
    """The v2 mark names a subvolume ID, which must resolve to exactly this path."""
    holder = env.top / "holder"
    _btrfs("subvolume", "create", holder)
    # A plain directory in a subvolume, naming the subvolume that holds it.
    own = _uuid(holder, "Subvolume ID")
    (holder / "inside").mkdir()
    (holder / "inside" / "data").write_text("precious\n")
    (holder / "inside" / MARK).write_text(f"dockerboot-rwlayer v2 {own}\n")
    assert "holder/inside was not made by dockerboot" in _refused(env, "holder/inside")
    for text in ("dockerboot-rwlayer v2 5", f"dockerboot-rwlayer v2 0{own}",
                 f"dockerboot-rwlayer v2 {own} x", f"dockerboot-rwlayer v2  {own}"):
        (holder / MARK).write_text(text + "\n")
        assert "holder was not made by dockerboot" in _refused(env, "holder"), text


def test_symlinked_subvol_is_refused(env: HookEnv) -> None:
    (env.top / "linkrw").symlink_to("docker")
    (env.top / "linkdir").symlink_to(".")
    assert "symlink linkrw" in _refused(env, "linkrw")
    assert "symlink linkdir" in _refused(env, "linkdir/docker_rwlayer")


def test_legacy_unmarked_rw_layers_are_replaced(env: HookEnv) -> None:
    # Made by the first release: a writable snapshot of the image's subvolume, no mark.
    legacy = env.top / "legacy_rw"
    _btrfs("subvolume", "snapshot", env.subvolume(SINGLE), legacy)
    (legacy / "runtime-file").write_text("x")
    r = env.run_core(_cmdline(env, rootflags="subvol=legacy_rw"))
    assert r.returncode == 0, r.stderr
    assert not (legacy / "runtime-file").exists()
    assert (legacy / MARK).read_text() == f"dockerboot-rwlayer v2 {_uuid(legacy, 'Subvolume ID')}\n"
    # One whose image docker has removed since: its origin is gone.
    gone = env.top / "gone"
    _btrfs("subvolume", "create", gone)
    _btrfs("subvolume", "snapshot", gone, env.top / "legacy_gone")
    _btrfs("subvolume", "delete", gone)
    r = env.run_core(_cmdline(env, rootflags="subvol=legacy_gone"))
    assert r.returncode == 0, r.stderr
    # A crash right after the snapshot leaves an unmarked .new: deleted.
    _btrfs("subvolume", "snapshot", env.subvolume(SINGLE), env.top / f"{RW}.new")
    r = env.run_core(_cmdline(env))
    assert r.returncode == 0, r.stderr
    assert not (env.top / f"{RW}.new").exists()


def test_nested_subvolumes_with_any_name_are_deleted(env: HookEnv) -> None:
    rw = env.top / RW
    names = ["a b", "*", "t\tab", "new\nline", "[x]?", " lead", "var/lib/machines"]
    for name in names:
        (rw / name).parent.mkdir(parents=True, exist_ok=True)
        _btrfs("subvolume", "create", rw / name)
    _btrfs("subvolume", "create", rw / "a b" / "inner x")         # nested twice
    _btrfs("subvolume", "create", rw / "a b" / "inner x" / "*")
    (rw / "a b" / "inner x" / "*" / "f").write_text("x")
    # A read-only nested one holding another: its entry cannot go until it is writable.
    names.append("ro outer")
    _btrfs("subvolume", "create", rw / "ro outer")
    _btrfs("subvolume", "create", rw / "ro outer" / "inner")
    _btrfs("property", "set", "-ts", rw / "ro outer", "ro", "true")
    other = env.top / "a b"                    # a look-alike outside the rw layer stays
    _btrfs("subvolume", "create", other)
    for _ in range(2):                         # and the next boot succeeds as well
        r = env.run_core(_cmdline(env))
        assert r.returncode == 0, r.stderr
        for name in names:
            assert not (rw / name).exists(), name
    assert subvolume_show(other).returncode == 0
    assert not (env.top / f"{RW}.old").exists()


# --- diff_ids: the hook and Python read the same rootfs.diff_ids ---

def test_decoy_config_really_has_diff_ids_before_rootfs(env: HookEnv) -> None:
    repos = (env.data_root / "image/btrfs/repositories.json").read_text()
    image_id = repos.split(f'"{DECOY}":"sha256:')[1][:64]
    raw = (env.data_root / "image/btrfs/imagedb/content/sha256" / image_id).read_text()
    assert raw.index('"diff_ids"') < raw.index('"rootfs": {"type": "layers"')
    assert raw.count("diff_ids") >= 5


@pytest.mark.parametrize("ref", [SINGLE, MULTI, LIBRARY, LINKS, DECOY])
def test_hook_and_python_resolve_the_same_subvolume(env: HookEnv, ref: str) -> None:
    r = env.run_core("", func="dockerboot_resolve", args=(str(env.data_root), ref))
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == resolve_subvolume(env.data_root, ref) \
        == env.subvolume(ref)


def test_decoy_image_boots(env: HookEnv) -> None:
    r = env.run_core(_cmdline(env, image=DECOY))
    assert r.returncode == 0, r.stderr
    assert (env.top / RW / "etc/dbw-image-marker").read_text() == "decoy\n"


# --- the top layer over the image's symlinks ---

SENTINEL = f"dbw-evil-sentinel-{os.getpid()}"


def _links_toplayer(top: Path) -> Path:
    tl = top / "boot_docker" / "tl-links"
    if tl.exists():
        return tl
    for d in ("etc/evil", "etc/abs", "lib/foo", "tmp", "opt/newdir"):
        (tl / d).mkdir(parents=True)
    tl.chmod(0o700)
    (tl / "etc/resolv.conf").write_text("nameserver 192.0.2.1\n")
    (tl / "etc/localtime").write_text("top-tz\n")
    (tl / "lib/foo/bar.conf").write_text("bar\n")
    (tl / "etc/abs/y").write_text("y\n")
    (tl / "etc/evil" / SENTINEL).write_text("evil\n")
    (tl / "tmp").chmod(0o700)
    (tl / "tmp/f").write_text("f\n")
    (tl / "etc/mylink").symlink_to("/etc/hostname")
    (tl / "etc/owned").write_text("owned\n")
    os.chown(tl / "etc/owned", 1234, 42)
    (tl / "etc/owned").chmod(0o640)
    os.chown(tl / "opt/newdir", 1234, 42)
    (tl / "opt/newdir").chmod(0o750)
    (tl / "opt/newdir/n").write_text("n\n")
    return tl


def _outside(env: HookEnv) -> tuple[object, ...]:
    """What must not change outside the new root (where escaped writes would land)."""
    utc = Path("/usr/share/zoneinfo/Etc/UTC")
    return (sorted(p.name for p in env.workdir.iterdir()),
            sorted(p.name for p in Path.cwd().iterdir()),
            Path("/" + SENTINEL).exists(), Path("/tmp/f").exists(), Path("/x").exists(),
            utc.read_bytes() if utc.exists() else b"", Path("/run/systemd/resolve").exists()
            and sorted(p.name for p in Path("/run/systemd/resolve").iterdir()))


@pytest.mark.parametrize("shell", [("busybox", "sh"), ("dash",)], ids=lambda s: s[0])
def test_toplayer_never_goes_through_image_symlinks(env: HookEnv,
                                                    shell: tuple[str, ...]) -> None:
    tl = _links_toplayer(env.top)
    before = _outside(env)
    r = env.run_core(_cmdline(env, image=LINKS, toplayer_path="boot_docker/tl-links"),
                     shell=shell)
    assert r.returncode == 0, r.stderr
    assert _outside(env) == before
    rw, image = env.top / RW, env.subvolume(LINKS)
    # A file replaces the image's symlink (dangling and absolute): never written through.
    for name, text in (("etc/resolv.conf", "nameserver 192.0.2.1\n"),
                       ("etc/localtime", "top-tz\n")):
        assert not (rw / name).is_symlink() and (rw / name).read_text() == text
    assert not (rw / "run/systemd").exists()
    assert (rw / "usr/share/zoneinfo/Etc/UTC").read_text() == "image-utc\n"
    # Through a symlinked directory: written at its real place, the link stays.
    assert os.readlink(rw / "lib") == "usr/lib"
    assert (rw / "usr/lib/foo/bar.conf").read_text() == "bar\n"
    assert (rw / "usr/lib/keep").read_text() == "image-lib\n"
    assert os.readlink(rw / "etc/abs") == "/usr/lib"
    assert (rw / "usr/lib/y").read_text() == "y\n"
    # etc/evil -> / leads to the NEW root's /, not the initramfs'.
    assert os.readlink(rw / "etc/evil") == "/"
    assert (rw / SENTINEL).read_text() == "evil\n"
    # Directories the top layer passes through keep the image's mode; / too.
    assert (rw / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (rw / "tmp/f").read_text() == "f\n"
    assert rw.stat().st_mode & 0o7777 == image.stat().st_mode & 0o7777
    assert (rw / "etc").stat().st_mode & 0o7777 == 0o755
    # A directory new to the image comes with its own mode and owner.
    st = (rw / "opt/newdir").stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o750, 1234, 42)
    # The top layer's own symlink is copied as a symlink; modes and owners kept.
    assert os.readlink(rw / "etc/mylink") == "/etc/hostname"
    st = (rw / "etc/owned").stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 1234, 42)
    # The accounts are still merged, the image untouched.
    assert (rw / "etc/passwd").read_text() == (image / "etc/passwd").read_text()
    assert os.readlink(image / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"
    assert not (image / SENTINEL).exists() and not (image / "usr/lib/foo").exists()
    assert not (tl / "etc/evil" / "etc").exists()


def test_toplayer_costs_one_cp_and_one_per_symlinked_directory(env: HookEnv) -> None:
    """Each cp is a process (~40 ms under TCG): one for every entry at its
    own path (cp --parents), one more per directory reached through a
    symlink of the image, never one into a directory a cp has just made."""
    _links_toplayer(env.top)
    lx = env.workdir / "libexec-counting"
    log = env.workdir / "cp.log"
    if not lx.exists():
        lx.mkdir()
        for f in libexec(env.workdir).iterdir():
            (lx / f.name).symlink_to(os.readlink(f))
        (lx / "cp").unlink()
        (lx / "cp").write_text(f'#!/bin/sh\nfor a; do :; done; echo "$a" >>"{log}"\n'
                               'exec /usr/bin/cp "$@"\n')
        (lx / "cp").chmod(0o755)
    log.write_text("")
    r = env.run_core(_cmdline(env, image=LINKS, toplayer_path="boot_docker/tl-links"),
                     extra_env={"DOCKERBOOT_LIBEXEC": str(lx)})
    assert r.returncode == 0, r.stderr
    new = f"{env.workdir}/run/root/{RW}.new"        # where the hook mounts the partition
    dests = sorted(line.removeprefix(new).strip("/") for line in log.read_text().split())
    # / twice (the one cp of opt/newdir, etc/* and tmp/f at their own paths;
    # etc/evil -> / with the sentinel), and usr/lib twice (lib -> usr/lib
    # with foo/, etc/abs -> /usr/lib with y).  One cp a directory written
    # into made 6 (/ twice, etc, tmp, usr/lib twice); the walk before that 8.
    assert dests == ["", "", "usr/lib", "usr/lib"]
    assert (env.top / RW / "opt/newdir/n").read_text() == "n\n"
    assert (env.top / RW / "usr/lib/foo/bar.conf").read_text() == "bar\n"


ODD_NAMES = ["-rf", "--parents", "my file", "*", "[ab]?", "t\tab", "new\nline", "ümlaut"]


@pytest.mark.parametrize("shell", [("busybox", "sh"), ("dash",)], ids=lambda s: s[0])
def test_toplayer_names_of_any_character_land_at_their_place(env: HookEnv,
                                                             shell: tuple[str, ...]) -> None:
    """Names with blanks, glob characters, a leading dash (never an option
    of cp) or beyond ASCII are copied by the per-directory cp, beside the
    plain ones that wait for the one cp at their own paths."""
    tl = env.top / "boot_docker" / "tl-odd"
    if not tl.exists():
        for d in ("etc", "-dir", "etc/new dir", "opt/plain"):
            (tl / d).mkdir(parents=True)
        for name in ODD_NAMES:
            (tl / name).write_text(f"top {name}\n")
            (tl / "etc" / name).write_text(f"etc {name}\n")
        (tl / "-dir/f").write_text("dashed dir\n")
        (tl / "etc/new dir/g").write_text("g\n")
        (tl / "etc/plain.conf").write_text("plain\n")
        (tl / "opt/plain/h").write_text("h\n")
    r = env.run_core(_cmdline(env, toplayer_path="boot_docker/tl-odd"), shell=shell)
    assert r.returncode == 0, r.stderr
    rw = env.top / RW
    for name in ODD_NAMES:
        assert (rw / name).read_text() == f"top {name}\n", name
        assert (rw / "etc" / name).read_text() == f"etc {name}\n", name
    assert (rw / "-dir/f").read_text() == "dashed dir\n"
    assert (rw / "etc/new dir/g").read_text() == "g\n"
    assert (rw / "etc/plain.conf").read_text() == "plain\n"
    assert (rw / "opt/plain/h").read_text() == "h\n"
    # Nothing landed beside them (no name was split or globbed).
    assert not (rw / "my").exists() and not (rw / "file").exists()
    assert sorted(p.name for p in (rw / "etc").iterdir() if p.name in ODD_NAMES) \
        == sorted(ODD_NAMES)


@pytest.mark.parametrize("entry, why", [("etc/loop/z", "symlink loop"),
                                        ("etc/hostname/z", "is a file in the image")])
def test_toplayer_conflicts_fail_with_one_line(env: HookEnv, entry: str, why: str) -> None:
    tl = env.top / "boot_docker" / f"tl-{why.split()[-1]}"
    (tl / entry).parent.mkdir(parents=True, exist_ok=True)
    (tl / entry).write_text("z\n")
    rw = env.top / RW
    uuid = _uuid(rw)
    line = _one_line(env.run_core(_cmdline(env, image=LINKS,
                                           toplayer_path=str(tl.relative_to(env.top)))))
    assert why in line and entry.rsplit("/", 1)[0] in line
    assert _uuid(rw) == uuid                   # the previous root stays
    assert not (env.top / f"{RW}.new").exists() and _unmounted(env)


# --- pinned by image ID: docker_image=sha256:<id> (the "previous" boot entry) ---

@pytest.mark.parametrize("ref", [SINGLE, MULTI, LINKS, DECOY])
def test_hook_and_python_resolve_a_pinned_id_alike(env: HookEnv, ref: str) -> None:
    image_id = env.ids[ref]
    r = env.run_core("", func="dockerboot_resolve", args=(str(env.data_root), image_id))
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()) == resolve_subvolume(env.data_root, image_id) \
        == resolve_subvolume(env.data_root, ref) == env.subvolume(ref)


@pytest.mark.parametrize("pin, why", [
    ("short", "not a full image ID"), ("upper", "not a full image ID"),
    ("absent", "not in the docker store"),
])
def test_a_pin_that_is_no_full_known_id_is_refused(env: HookEnv, pin: str, why: str) -> None:
    full = env.ids[SINGLE]
    image_id = {"short": full[:19], "upper": full.upper().replace("SHA256:", "sha256:"),
                "absent": "sha256:" + "0" * 64}[pin]
    r = env.run_core("", func="dockerboot_resolve", args=(str(env.data_root), image_id))
    assert why in _one_line(r) and r.stdout == ""
    with pytest.raises(ImageError, match=why):
        resolve_subvolume(env.data_root, image_id)


def test_boot_pinned_by_id(env: HookEnv) -> None:
    # Whatever the tags say: the ID names the image (repositories.json unread).
    repos = env.data_root / "image/btrfs/repositories.json"
    saved = repos.read_bytes()
    repos.write_text('{"Repositories": {}}')
    try:
        r = env.run_core(_cmdline(env, image=env.ids[MULTI]))
    finally:
        repos.write_bytes(saved)
    assert r.returncode == 0, r.stderr
    assert (env.top / RW / "opt/two.txt").exists()
    assert f"fresh snapshot of {env.ids[MULTI]}" in r.stderr
