"""The booted system's ``dockerboot-update``: its top-layer files, and its shell against the Python.

The command's refind.conf splice must keep every byte the wizard's
``bootloader.update_conf`` keeps (CRLF files, a block at the end without a
newline, no block yet, a user's entries around it) and refuse what it
refuses; its settings problems are one line and exit 1, changing nothing.
The full runs (docker, builds, status) are tests/integration/test_selfupdate.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from wizard.boot import bootloader
from wizard.common.errors import BootloaderError, WizardError
from wizard.common.resources import assets_dir
from wizard.settings.config import Settings
from wizard.toplayer import selfupdate

SETTINGS = Settings(label="dockerboot", image="desk:1")
SOURCE_PARTS = "".join(f". {assets_dir() / 'selfupdate' / part}; "
                       for part in ("entries.sh", "esp.sh"))
"""The parts the splice and the refind.conf write need, sourced."""
SHELLS = ["busybox sh", "dash"]
BLOCK = (f"{bootloader.BEGIN_MARKER}\nmenuentry \"Docker image desk:1\" {{\n    volume dockerboot\n"
         f"}}\n{bootloader.END_MARKER}\n")
OLD_BLOCK = f"{bootloader.BEGIN_MARKER}\nold\n{bootloader.END_MARKER}\n"
CASES = {
    "user entries around": f"timeout 5\n{OLD_BLOCK}menuentry \"mine\" {{\n}}\n",
    "crlf": f"timeout 5\r\n{OLD_BLOCK.replace(chr(10), chr(13) + chr(10))}# end\r\n",
    "block last, no newline": f"timeout 5\n{OLD_BLOCK.rstrip()}",
    "no block yet": "timeout 5\nscanfor manual",
    "no block, crlf": "timeout 5\r\nscanfor manual\r\n",
    "indented markers": f"a\n  {OLD_BLOCK.replace(chr(10) + '#', chr(10) + '   #')}b\n",
    "latin-1 bytes": f"# caf\xe9\n{OLD_BLOCK}",
    "empty": "",
}
# The user's own default_selection lines, with each saved answer (bootloader.update_conf).
THEIRS = {
    "theirs before": f"timeout 5\ndefault_selection Windows\n{OLD_BLOCK}# end\n",
    "theirs after, indented, =": f"timeout 5\n{OLD_BLOCK}  Default_Selection=2\n# end\n",
    "theirs crlf": f"timeout 5\r\n\tdefault_selection \"+,vmlinuz\" 23:00 01:00\r\n"
                   f"{OLD_BLOCK.replace(chr(10), chr(13) + chr(10))}",
    "theirs, no block, no newline": "timeout 5\ndefault_selection Windows",
    "theirs last, block last no newline": f"default_selection 1\n{OLD_BLOCK.rstrip()}",
    "ours outside, a comment, no value": 'default_selection "Docker image"\n'
                                         "#default_selection 1\ndefault_selection\n"
                                         f"{OLD_BLOCK}",
    "replaced before": f"timeout 5\n  {bootloader.REPLACED_PREFIX}default_selection Windows\n"
                       f"{OLD_BLOCK}",
    "replaced and theirs": f"{bootloader.REPLACED_PREFIX}default_selection 1\n"
                           f"default_selection 2\r\n{OLD_BLOCK}",
    "latin-1 theirs": f"# caf\xe9\ndefault_selection caf\xe9\n{OLD_BLOCK}",
}


def splice(shell: str, tmp_path: Path, text: bytes,
           choice: str = "") -> subprocess.CompletedProcess:
    conf = tmp_path / "refind.conf"
    conf.write_bytes(text)
    (tmp_path / "block").write_text(BLOCK)
    script = (f'CR=$(printf "\\r"); NL="\n"; run={tmp_path}; default_entry={choice}; '
              'die() { printf "error: %s\\n" "$1" >&2; exit 1; }; '
              f'{SOURCE_PARTS}splice {conf}')
    return subprocess.run([*shell.split(), "-c", script], capture_output=True, timeout=30)


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_splice_keeps_every_byte_the_wizard_keeps(shell: str, case: str, tmp_path: Path) -> None:
    text = CASES[case].encode("latin-1")
    r = splice(shell, tmp_path, text)
    assert r.returncode == 0, r.stderr
    expected = bootloader.update_conf(text.decode("utf-8", "surrogateescape"), BLOCK)
    assert (tmp_path / "conf.new").read_bytes() == expected.encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("choice", ["", "yes", "no"])
@pytest.mark.parametrize("case", sorted(THEIRS))
def test_splice_treats_the_users_default_selection_like_the_wizard(
        shell: str, choice: str, case: str, tmp_path: Path) -> None:
    text = THEIRS[case].encode("latin-1")
    r = splice(shell, tmp_path, text, choice)
    assert r.returncode == 0, r.stderr
    expected = bootloader.update_conf(text.decode("utf-8", "surrogateescape"), BLOCK, choice)
    assert (tmp_path / "conf.new").read_bytes() == expected.encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("text", [f"{bootloader.BEGIN_MARKER}\nx\n",
                                  f"{bootloader.END_MARKER}\n{bootloader.BEGIN_MARKER}\n",
                                  OLD_BLOCK + OLD_BLOCK])
def test_splice_refuses_malformed_markers_like_the_wizard(shell: str, text: str,
                                                          tmp_path: Path) -> None:
    with pytest.raises(BootloaderError):
        bootloader.update_conf(text, BLOCK)
    r = splice(shell, tmp_path, text.encode())
    assert r.returncode == 1 and b"malformed dockerboot-wizard markers" in r.stderr
    assert not (tmp_path / "conf.new").exists() or (tmp_path / "conf.new").read_bytes() == b""


def command(tmp_path: Path, conf: str, *args: str, shell: str = "dash") -> \
        subprocess.CompletedProcess:
    (tmp_path / "update.conf").write_text(conf)
    env = {"PATH": "/usr/bin:/bin", "DOCKERBOOT_UPDATE_CONF": str(tmp_path / "update.conf"),
           "DOCKERBOOT_UPDATE_LIB": str(assets_dir() / "selfupdate"),
           "DOCKERBOOT_TOP": str(tmp_path / "top")}
    return subprocess.run([*shell.split(), str(assets_dir() / "selfupdate/dockerboot-update"),
                           *args], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize("bad", ["label=../x", "label=a b", "image=", 'image=a"b:1',
                                 "boot_dir=../etc", "boot_dir=/", "state_dir=a/../../b",
                                 "cmdline=root=LABEL=x"])
def test_bad_settings_are_one_line_and_change_nothing(bad: str, tmp_path: Path) -> None:
    good = selfupdate.render_conf(SETTINGS).decode()
    key = bad.split("=", 1)[0]
    conf = "".join(line + "\n" for line in good.splitlines() if not line.startswith(key + "="))
    (tmp_path / "top").mkdir()
    for args in ((), ("status", "--json")):
        r = command(tmp_path, bad + "\n" + conf, *args)
        assert r.returncode == 1, r.stdout + r.stderr
        assert r.stderr.count("\n") == 1 and "dockerboot-update: error: " in r.stderr, r.stderr
    assert list((tmp_path / "top").iterdir()) == []


def test_usage_missing_settings_and_missing_parts(tmp_path: Path) -> None:
    r = command(tmp_path, "", "--frobnicate")
    assert r.returncode == 2 and "usage: dockerboot-update" in r.stderr
    script = str(assets_dir() / "selfupdate/dockerboot-update")
    env = {"PATH": "/usr/bin:/bin", "DOCKERBOOT_UPDATE_CONF": str(tmp_path / "nope.conf")}
    r = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "no settings at" in r.stderr and "apply again" in r.stderr
    # Settings, but the partition has no parts (an apply of an older version).
    (tmp_path / "top").mkdir()
    (tmp_path / "update.conf").write_bytes(selfupdate.render_conf(SETTINGS))
    env = {**env, "DOCKERBOOT_UPDATE_CONF": str(tmp_path / "update.conf"),
           "DOCKERBOOT_TOP": str(tmp_path / "top")}
    for args in ((), ("status",)):
        r = subprocess.run(["sh", script, *args], env=env, capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "parts of dockerboot-update are missing" in r.stderr and "apply again" in r.stderr
    assert list((tmp_path / "top").iterdir()) == []


def test_auto_off_does_nothing(tmp_path: Path) -> None:
    conf = selfupdate.render_conf(Settings(label="dockerboot", image="desk:1", auto_update=False))
    assert b"auto=0\n" in conf
    r = command(tmp_path, conf.decode(), "--auto")
    assert r.returncode == 0 and "automatic mode is off" in r.stdout


def test_top_files_are_complete_and_planned_once(tmp_path: Path) -> None:
    files = selfupdate.top_files(SETTINGS)
    assert files[selfupdate.COMMAND][1] == 0o755
    conf = files[selfupdate.CONF][0].decode()
    assert "cmdline=root=LABEL=dockerboot " in conf and " docker_image=@IMAGE@ " in conf
    # The top layer holds the command, dockerboot-mark-bad, the settings and units only
    # (the hook copies it at every boot); the parts and assets are for the partition.
    assert len(files) == 7
    assert files[selfupdate.MARK_BAD][1] == 0o755
    assert selfupdate.MARK_BAD.startswith("etc/dockerboot/")   # the hook's one cp of etc/
    parts = selfupdate.partition_files()
    for part in ("generations.sh", "entries.sh", "status.sh", "assets/build-initramfs.sh",
                 "assets/hook/dockerboot-core.sh", "assets/selfupdate/probe-image.sh"):
        assert part in parts
    changes = selfupdate.plan(tmp_path, SETTINGS)
    assert {c.relpath for c in changes} == set(files)
    shipped = next(c for c in changes if c.relpath == selfupdate.COMMAND)
    assert shipped.summary and "new" in shipped.summary  # one line in the plan, no diff
    for c in changes:
        (tmp_path / c.relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / c.relpath).write_bytes(c.new)
    assert selfupdate.plan(tmp_path, SETTINGS) == []
    # Turning the automatic update off changes the settings file only.
    off = selfupdate.plan(tmp_path, Settings(label="dockerboot", image="desk:1",
                                             auto_update=False))
    assert [c.relpath for c in off] == [selfupdate.CONF]


def test_parts_are_written_once_and_never_over_a_link(tmp_path: Path) -> None:
    top = tmp_path / "top"
    written = selfupdate.install_parts(top, SETTINGS)
    assert sorted(written) == sorted(selfupdate.partition_files())
    assert selfupdate.install_parts(top, SETTINGS) == []
    base = top / SETTINGS.boot_dir / selfupdate.PARTS_DIR
    victim = tmp_path / "victim"
    victim.write_bytes(b"mine\n")
    (base / "status.sh").unlink()
    (base / "status.sh").symlink_to(victim)
    with pytest.raises(WizardError, match="is not a plain file"):
        selfupdate.install_parts(top, SETTINGS)
    assert victim.read_bytes() == b"mine\n"


def test_a_symlinked_lock_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    boot = tmp_path / "top" / SETTINGS.boot_dir
    boot.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    (boot / ".lock").symlink_to(victim)
    r = command(tmp_path, selfupdate.render_conf(SETTINGS).decode())
    assert r.returncode == 1 and ".lock is a symlink" in r.stderr, r.stdout + r.stderr
    assert victim.read_bytes() == b"precious\n" and (boot / ".lock").is_symlink()


@pytest.mark.parametrize("link", ["boot_docker", "boot_docker/selfupdate",
                                  "boot_docker/selfupdate/assets/hook"])
def test_parts_never_go_through_a_symlinked_directory(tmp_path: Path, link: str) -> None:
    top, elsewhere = tmp_path / "top", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine").write_bytes(b"mine\n")
    (top / link).parent.mkdir(parents=True, exist_ok=True)
    (top / link).symlink_to(elsewhere)
    with pytest.raises(WizardError, match="is a symlink"):
        selfupdate.install_parts(top, SETTINGS)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["mine"]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_backup_never_goes_through_a_planted_symlink(shell: str, tmp_path: Path) -> None:
    """refind.conf's backup name is the time: dangling symlinks planted at every
    name of the next minute stay as they are, and nothing appears where they point."""
    esp = tmp_path / "esp"
    esp.mkdir()
    conf = esp / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    (tmp_path / "conf.new").write_bytes(b"timeout 5\nnew\n")
    now = time.time()
    planted = []
    for s in range(-2, 60):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + s))
        link = esp / f"refind.conf.dockerboot-{stamp}.bak"
        link.symlink_to(tmp_path / f"victim-{s}")
        planted.append(link)
    script = (f'run={tmp_path}; say() {{ :; }}; '
              'die() { printf "error: %s\\n" "$1" >&2; exit 1; }; '
              f'{SOURCE_PARTS}refind_conf={conf}; write_conf')
    r = subprocess.run([*shell.split(), "-c", script], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert conf.read_bytes() == b"timeout 5\nnew\n"
    assert not list(tmp_path.glob("victim-*"))
    assert all(p.is_symlink() for p in planted)
    [backup] = [p for p in esp.glob("refind.conf.dockerboot-*.bak") if not p.is_symlink()]
    assert backup.read_bytes() == b"timeout 5\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_only_temp_files_named_as_write_atomic_names_them_are_removed(shell: str,
                                                                     tmp_path: Path) -> None:
    """A kill's leftover temp file (``.<name>.XXXXXXXX.tmp``, a regular file) goes at the
    next write, as write_atomic removes it; a link, a directory, a user's file of another
    shape and what a link points to stay as they are."""
    from wizard.common.leftovers import temp_name_pattern

    esp = tmp_path / "esp"
    esp.mkdir()
    conf = esp / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    victim = tmp_path / "victim"
    victim.write_text("victim\n")
    left = esp / ".refind.conf.a1B2c3_4.tmp"
    left.write_text("a killed write\n")
    (esp / ".refind.conf.12345678.tmp").symlink_to(victim)
    (esp / ".refind.conf.abcdefgh.tmp").mkdir()
    kept = [".refind.conf.abc-efgh.tmp", ".refind.conf.123456789.tmp", ".refind.conf.1234567.tmp",
            ".other.conf.12345678.tmp", "refind.conf.12345678.tmp", ".refind.conf.12345678.tmp.x"]
    for name in kept:
        (esp / name).write_text("mine\n")
    assert temp_name_pattern("refind.conf").match(left.name)  # the wizard's own shape
    r = shell_write_conf(shell, tmp_path, conf)
    assert r.returncode == 0, r.stderr
    assert conf.read_bytes() == b"timeout 5\nnew\n"
    assert not left.exists()
    assert (esp / ".refind.conf.12345678.tmp").is_symlink() and victim.read_text() == "victim\n"
    assert (esp / ".refind.conf.abcdefgh.tmp").is_dir()
    assert all((esp / name).read_text() == "mine\n" for name in kept)
    assert not [p for p in esp.iterdir() if temp_name_pattern("refind.conf").match(p.name)
                and p.is_file() and not p.is_symlink()]


# --- --auto against a stub docker: a tag write during a run is not lost ---

STUB_DOCKER = r"""#!/bin/sh
echo "$*" >>"$STUB/calls"
case $1 in
    image) case $* in *.Id*) cat "$STUB/tag" ;; *) echo 0 ;; esac ;;
    run)   # the probe: a pull lands meanwhile (the next ID, if any, becomes the tag's)
        if [ -s "$STUB/next" ]; then head -n 1 "$STUB/next" >"$STUB/tag"
            sed -i 1d "$STUB/next"; fi
        printf 'kernel 6.1.0-31-amd64 /boot/vmlinuz\ngenerator mkinitramfs /x\nbtrfs /x\n' ;;
    *) exit 1 ;;
esac
"""


def auto_env(tmp_path: Path, tag: str, later: list[str]) -> tuple[dict[str, str], Path]:
    from tests.unit.genhelp import make_gen

    top = tmp_path / "top"
    make_gen(top / "boot_docker", 1, "one")
    lib = tmp_path / "lib"
    (lib / "assets/selfupdate").mkdir(parents=True)
    for part in (*selfupdate.PARTS, "assets/selfupdate/probe-image.sh"):
        (lib / part).write_bytes((assets_dir() / "selfupdate" / part.split("/")[-1]).read_bytes())
    stub = tmp_path / "stub"
    (stub / "bin").mkdir(parents=True)
    (stub / "bin/docker").write_text(STUB_DOCKER)
    (stub / "bin/docker").chmod(0o755)
    (stub / "tag").write_text(tag + "\n")
    (stub / "next").write_text("".join(i + "\n" for i in later))
    conf = "".join(line + "\n" for line in selfupdate.render_conf(SETTINGS).decode().splitlines()
                   if not line.startswith("assets_initramfs_tools="))
    (tmp_path / "update.conf").write_text(conf + "assets_initramfs_tools=" + "a" * 64 + "\n")
    env = {"PATH": f"{stub}/bin:/usr/bin:/bin", "STUB": str(stub),
           "DOCKERBOOT_UPDATE_CONF": str(tmp_path / "update.conf"),
           "DOCKERBOOT_UPDATE_LIB": str(lib), "DOCKERBOOT_TOP": str(top)}
    return env, stub


def auto_cmd(shell: str) -> list[str]:
    """``dockerboot-update --auto`` with ``docker`` the stub (a function: the command
    sets its own PATH)."""
    script = ('docker() { "$STUB/bin/docker" "$@"; }; set -- --auto; '
              f'. {assets_dir() / "selfupdate/dockerboot-update"}')
    return [*shell.split(), "-c", script]


@pytest.mark.parametrize("shell", SHELLS)
def test_a_tag_move_during_the_automatic_run_gets_a_run_of_its_own(shell: str,
                                                                    tmp_path: Path) -> None:
    from tests.unit.genhelp import image_id

    two, three = image_id("two"), image_id("three")
    env, stub = auto_env(tmp_path, two, [three])
    r = subprocess.run(auto_cmd(shell), capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    short = lambda i: i.removeprefix("sha256:")[:12]  # noqa: E731
    assert f"moved again during the run (@{short(two)} -> @{short(three)}): once more" \
        in r.stdout, r.stdout
    assert r.stdout.count("nothing to deploy") == 2, r.stdout
    assert r.stdout.rstrip().endswith(f"the next boot snapshots @{short(three)}"), r.stdout
    probes = [c for c in (stub / "calls").read_text().splitlines() if c.startswith("run ")]
    assert len(probes) == 2 and probes[-1].count(three) == 1, probes


@pytest.mark.parametrize("shell", SHELLS)
def test_the_automatic_run_waits_for_the_lock_instead_of_dropping_the_write(
        shell: str, tmp_path: Path) -> None:
    import fcntl

    from tests.unit.genhelp import image_id

    env, _ = auto_env(tmp_path, image_id("two"), [])
    lockfile = tmp_path / "top/boot_docker/.lock"
    with lockfile.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        p = subprocess.Popen(auto_cmd(shell), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env)
        time.sleep(1.5)
        assert p.poll() is None, p.communicate()
        fcntl.flock(held, fcntl.LOCK_UN)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, out + err
    assert "waiting for another dockerboot-wizard (pid 4242) to finish" in out
    assert "nothing to deploy" in out


# --- refind.conf backups: the one just made always stays; the shell prunes like the wizard ---

def hostile_esp(esp: Path, victim: Path) -> dict[str, str]:
    """An ESP whose backups are stamped in the future (a clock set back since),
    with planted symlinks and a user's files of similar names; what each is."""
    esp.mkdir()
    (esp / "refind.conf").write_bytes(b"timeout 5\n")
    victim.write_text("victim\n")
    made = {}
    for i, stamp in enumerate(["20990101T000000Z", "20990101T000000Z-2", "20990101T000000Z-10",
                               "20980101T000000Z", "20970101T000000Z-007"]):
        (esp / f"refind.conf.dockerboot-{stamp}.bak").write_text(f"old {i}\n")
        made[f"refind.conf.dockerboot-{stamp}.bak"] = "backup"
    for stamp in ("19990101T000000Z", "21000101T000000Z"):   # oldest and newest names
        (esp / f"refind.conf.dockerboot-{stamp}.bak").symlink_to(victim)
        made[f"refind.conf.dockerboot-{stamp}.bak"] = "symlink"
    (esp / "refind.conf.dockerboot-19990102T000000Z.bak").mkdir()
    made["refind.conf.dockerboot-19990102T000000Z.bak"] = "user"
    for user in ("refind.conf.bak", "refind.conf.dockerboot-19990101T000000Z.bak.mine",
                 "refind.conf.dockerboot-mine.bak", "refind.conf.dockerboot-19990101T000000Z-x.bak",
                 "refind.conf.dockerboot-\u0661\u0669\u0669\u0669\u0660\u0661\u0660\u0661"
                 "T000000Z.bak", "other.conf.dockerboot-19990101T000000Z.bak",
                 "refind.conf.dockerboot-1999010T000000Z.bak"):
        (esp / user).write_text("mine\n")
        made[user] = "user"
    return made


def shell_write_conf(shell: str, tmp_path: Path, conf: Path) -> subprocess.CompletedProcess:
    (tmp_path / "conf.new").write_bytes(b"timeout 5\nnew\n")
    script = (f'run={tmp_path}; NL="\n"; say() {{ :; }}; '
              'die() { printf "error: %s\\n" "$1" >&2; exit 1; }; '
              f'{SOURCE_PARTS}refind_conf={conf}; write_conf')
    return subprocess.run([*shell.split(), "-c", script], capture_output=True, timeout=30)


@pytest.mark.parametrize("shell", SHELLS)
def test_backups_behind_a_future_stamp_are_kept_and_pruned_like_the_wizard(
        shell: str, tmp_path: Path) -> None:
    from wizard.common import atomic

    results = {}
    for who in ("wizard", "shell"):
        esp = tmp_path / who / "esp"
        esp.parent.mkdir()
        victim = tmp_path / who / "victim"
        made = hostile_esp(esp, victim)
        if who == "wizard":
            just = atomic.write_atomic(esp / "refind.conf", b"timeout 5\nnew\n")
            assert just is not None
        else:
            r = shell_write_conf(shell, tmp_path / who, esp / "refind.conf")
            assert r.returncode == 0, r.stderr
        assert (esp / "refind.conf").read_bytes() == b"timeout 5\nnew\n"
        assert victim.read_text() == "victim\n"
        names = {p.name for p in esp.iterdir()} - {"refind.conf"}
        for name, what in made.items():
            if what != "backup":
                assert name in names, (who, name)            # never what it did not make
                assert (esp / name).is_symlink() == (what == "symlink")
        [new] = [n for n in names - set(made)]
        assert (esp / new).read_bytes() == b"timeout 5\n"   # the backup just made stays
        kept = sorted(n for n in names if made.get(n) == "backup")
        assert len(kept) + 1 == atomic.KEEP_BACKUPS
        results[who] = kept
    # The newest by stamp, then number: the same files for both.
    assert results["shell"] == results["wizard"] == [
        "refind.conf.dockerboot-20990101T000000Z-10.bak",
        "refind.conf.dockerboot-20990101T000000Z-2.bak"]


@pytest.mark.parametrize("shell", SHELLS)
def test_the_shell_keeps_as_many_backups_as_the_wizard(shell: str, tmp_path: Path) -> None:
    from wizard.common import atomic

    esp = tmp_path / "esp"
    esp.mkdir()
    conf = esp / "refind.conf"
    for i in range(atomic.KEEP_BACKUPS + 3):
        conf.write_bytes(f"timeout {i}\n".encode())
        r = shell_write_conf(shell, tmp_path, conf)
        assert r.returncode == 0, r.stderr
    baks = sorted(esp.glob("refind.conf.dockerboot-*.bak"))
    assert len(baks) == atomic.KEEP_BACKUPS
    assert sorted(b.read_bytes() for b in baks) == [
        f"timeout {i}\n".encode() for i in range(3, atomic.KEEP_BACKUPS + 3)]


@pytest.mark.parametrize("shell", SHELLS)
def test_a_backup_name_taken_this_second_gets_the_next_number(shell: str,
                                                               tmp_path: Path) -> None:
    from wizard.common import atomic

    esp = tmp_path / "esp"
    esp.mkdir()
    conf = esp / "refind.conf"
    conf.write_bytes(b"timeout 1\n")
    now = time.time()
    for s in range(0, 3):   # this second and the next two: taken up to -08
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + s))
        for suffix in ("", "-08"):
            (esp / f"refind.conf.dockerboot-{stamp}{suffix}.bak").write_text("x\n")
    r = shell_write_conf(shell, tmp_path, conf)
    assert r.returncode == 0, r.stderr
    new = [p for p in esp.iterdir() if p.read_bytes() == b"timeout 1\n"]
    assert len(new) == 1 and new[0].name.endswith("-9.bak"), new
    assert atomic.backup_pattern("refind.conf").match(new[0].name)


# --- status --json: always valid JSON, the same as the wizard's ---

HOSTILE_COUNTS = ["010", "0", "000", "-1", "+1", "1e3", "9" * 400, "\u0661\u0660", "\u00b2", ""]
HOSTILE_TEXT = ['de"sk:1', "de\\sk:1", "de\\\"sk", "a\x01b\x1fc\td", "\x7f", "caf\u00e9",
                "x\x00y"]


def status_pair(shell: str, tmp_path: Path, boot: str, failed: str) -> tuple[dict, dict]:
    import json

    from tests.unit.genhelp import make_gen
    from wizard.boot.status import status

    env, _ = auto_env(tmp_path, "sha256:" + "0" * 64, [])
    state = tmp_path / "top/boot_docker/state"
    state.mkdir(parents=True, exist_ok=True)
    if not (tmp_path / "top/boot_docker/gen/2").exists():
        make_gen(tmp_path / "top/boot_docker", 2, "two")
    (state / "boot").write_bytes(boot.encode())
    if failed:
        (state / "failed").write_bytes(failed.encode())
    (tmp_path / "cmdline").write_text("quiet\n")
    script = ('docker() { return 1; }; set -- status --json; '
              f'. {assets_dir() / "selfupdate/dockerboot-update"}')
    r = subprocess.run([*shell.split(), "-c", script], capture_output=True,
                       env={**env, "DOCKERBOOT_CMDLINE": str(tmp_path / "cmdline")}, timeout=60)
    assert r.returncode == 0, r.stderr
    mine = json.loads(r.stdout.decode())        # strict: 010 or a raw control char fails
    py = json.loads(json.dumps(status(tmp_path / "top", SETTINGS, cmdline="quiet\n")))
    assert bool(mine.pop("problems")) == bool(py.pop("problems")), (mine, py)
    return mine, py


@pytest.mark.parametrize("shell", SHELLS)
def test_status_json_numbers_are_json_and_the_wizards(shell: str, tmp_path: Path) -> None:
    from tests.unit.genhelp import image_id

    for i, count in enumerate(HOSTILE_COUNTS):
        boot = (f"ref=desk:1\nid={image_id('two')}\nconfigured_id={image_id('two')}\n"
                f"kernel=6.1.0-31-amd64\ntries={count}\ngeneration={count or 2}\n")
        mine, py = status_pair(shell, tmp_path / str(i), boot, f"{image_id('x')} {count}\n")
        assert mine == py, (count, mine, py)
        if count.isascii() and count.isdigit():
            assert mine["booted"]["tries"] == int(count)
            assert mine["failed"] == {"id": image_id("x"), "tries": int(count), "reason": None}


@pytest.mark.parametrize("shell", SHELLS)
def test_status_json_strings_are_json_and_the_wizards(shell: str, tmp_path: Path) -> None:
    from tests.unit.genhelp import image_id

    for i, text in enumerate(HOSTILE_TEXT):
        boot = (f"ref={text}\nid={image_id('two')}\nconfigured_id=\nkernel=6.1.0-31-amd64\n"
                f"tries=1\nfallback=desk:1 {text} why\n")
        mine, py = status_pair(shell, tmp_path / str(i), boot, "")
        assert mine == py, (text, mine, py)
        assert mine["booted"]["ref"] == text.replace("\x00", "")
