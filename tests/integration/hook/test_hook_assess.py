"""Boot assessment and fallback to the last good image (assets/hook/dockerboot-assess.sh).

The core runs under busybox ash (and dash) with ``set -u`` on a real loop
btrfs whose docker store a real (then stopped) dockerd filled; each test
keeps its state in its own ``dockerboot.state=`` directory on that partition.
The mark-good script runs for real too: it mounts the partition's top level.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import (
    KVER,
    LINKS,
    MARK_GOOD,
    MARK_GOOD_UNIT,
    MULTI,
    NOINIT,
    NOMODS,
    SINGLE,
    SYSTEMD,
    HookEnv,
    own_state_dir,
)
from tests.integration.hook.hookenv import (
    one_line_failure as _one_line,
)
from tests.integration.hook.hookenv import (
    subvolume_field as _uuid,
)
from wizard.loaders import grub

pytestmark = pytest.mark.lab

RW = "docker_rwlayer"
SHELLS = [("busybox", "sh"), ("dash",)]
UNIT = "dockerboot-mark-good.service"
MESSAGE = "etc/profile.d/dockerboot-fallback.sh"


@pytest.fixture
def st(env: HookEnv, request: pytest.FixtureRequest) -> str:
    """A state directory of this test's own (relative to the top level)."""
    return own_state_dir(request, "st")


def _boot(env: HookEnv, image: str, state: str, *, shell: tuple[str, ...] = SHELLS[0],
          **extra: str) -> subprocess.CompletedProcess:
    params = {"root": f"LABEL={env.disk.label}", "rootflags": f"subvol={RW}",
              "docker_image": image, "dockerboot.state": state, **extra}
    return env.run_core(" ".join(f"{k}={v}" for k, v in params.items()), shell=shell)


def _read(env: HookEnv, state: str, name: str) -> str | None:
    path = env.top / state / name
    return path.read_text() if path.exists() else None


def _set_good(env: HookEnv, state: str, ref: str | None = None, *, raw: str = "") -> None:
    d = env.top / state
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    (d / "good").write_text((raw or env.ids[str(ref)]) + "\n")


def _kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def _snapshot_of(env: HookEnv) -> Path:
    """The image subvolume the rw layer is a snapshot of (the kernel's word)."""
    parent = _uuid(env.top / RW, "Parent UUID")
    return next(p for p in (env.data_root / "btrfs/subvolumes").iterdir()
                if p.name in {env.cache_id(r) for r in env.layers} and _uuid(p) == parent)


def _unmounted(env: HookEnv) -> bool:
    return str(env.workdir / "run") not in Path("/proc/self/mounts").read_text()


# --- an ordinary boot records what it booted ---

def test_boot_records_attempt_and_boot_on_the_partition_and_in_the_root(env: HookEnv,
                                                                         st: str) -> None:
    r = _boot(env, MULTI, st)
    assert r.returncode == 0, r.stderr
    assert "last good" not in r.stderr and "warning" not in r.stderr
    assert stat.S_IMODE((env.top / st).stat().st_mode) == 0o700
    image_id = env.ids[MULTI]
    # No systemd in this image: nothing can mark it, so its boots are not counted (else it
    # would be reverted after dockerboot.tries= boots), and one line says so.
    assert _read(env, st, "attempt") == f"{image_id} 0\n"
    assert [x for x in r.stderr.splitlines() if "systemd" in x] == [
        f"dockerboot: image {MULTI} has no systemd: its boots are not assessed (nothing marks "
        "it good or bad)"]
    boot = _read(env, st, "boot")
    assert _kv(str(boot)) == {"ref": MULTI, "id": image_id, "configured_id": image_id,
                              "fallback": "", "kernel": KVER, "tries": "0",
                              "generation": "", "source": "configured"}
    rw = env.top / RW
    assert (rw / "etc/dockerboot/boot").read_text() == boot
    assert not (rw / MESSAGE).exists()
    assert _read(env, st, "good") is None and _read(env, st, "failed") is None
    # Nothing else, and nothing left in the hook's scratch directory.
    assert sorted(p.name for p in (env.top / st).iterdir()) == [".new", "attempt", "boot",
                                                                  "chains"]
    assert list((env.top / st / ".new").iterdir()) == []
    # No systemd in this image: no unit, nothing of it.
    assert not (rw / "etc/systemd").exists() and not (rw / "usr/local/lib/dockerboot").exists()


# --- fallback (a)-(c): the configured image cannot boot, the good one can ---

FALLBACKS = [
    # (configured, extra params, reason, good image)
    ("nosuch/image:9", {}, "is not in the docker store", SINGLE),
    (NOINIT, {}, "has no init (/sbin/init)", SINGLE),
    (SINGLE, {"init": "/lib/systemd/systemd"}, "has no init (/lib/systemd/systemd)", SYSTEMD),
    (NOMODS, {}, f"has no /lib/modules/{KVER} for the running kernel", LINKS),
]
FALLBACK_IDS = ["missing", "noinit", "init=", "nomodules"]
# etc/evil -> / : the kernel would find the host's /bin/sh; inside the image there is none
# (init= applies to the good image too, so this one only stops the boot).
STOPS = [*FALLBACKS, (LINKS, {"init": "/etc/evil/bin/sh"}, "has no init", SINGLE)]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("configured, extra, reason, good", FALLBACKS,
                         ids=FALLBACK_IDS)
def test_fallback_boots_the_last_good_image_with_one_line(
        env: HookEnv, st: str, shell: tuple[str, ...], configured: str, extra: dict[str, str],
        reason: str, good: str) -> None:
    _set_good(env, st, good)
    good_id = env.ids[good]
    id12 = good_id.removeprefix("sha256:")[:12]
    r = _boot(env, configured, st, shell=shell, **extra)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if "last good" in x]
    assert lines == [f"dockerboot: {configured}: {reason} — booting the last good image "
                     f"{id12} instead"]
    assert f"fresh snapshot of {good_id}" in r.stderr
    # The good image's own subvolume was snapshotted.
    rw = env.top / RW
    assert _snapshot_of(env) == env.subvolume(good)
    boot = _kv(str(_read(env, st, "boot")))
    tries = "1" if good == SYSTEMD else "0"      # the others have no systemd: not counted
    assert boot == {"ref": configured, "id": good_id,
                    "configured_id": env.ids.get(configured, ""),
                    "fallback": f"{configured} {reason}", "kernel": KVER, "tries": tries,
                    "generation": "", "source": "good"}
    assert (rw / "etc/dockerboot/boot").read_text() == _read(env, st, "boot")
    assert _read(env, st, "attempt") == f"{good_id} {tries}\n"
    assert _read(env, st, "good") == f"{good_id}\n"
    # The login message says it once, for login shells.
    out = subprocess.run(["sh", str(rw / MESSAGE)], capture_output=True, text=True)
    assert out.stderr == (f"dockerboot: this boot fell back to the last good image {id12}: "
                          f"{configured} {reason}\n")
    assert _unmounted(env)


@pytest.mark.parametrize("configured, extra, reason, _good", STOPS,
                         ids=[*FALLBACK_IDS, "init-escapes"])
def test_without_a_good_image_the_original_error_stops_the_boot(
        env: HookEnv, st: str, configured: str, extra: dict[str, str], reason: str,
        _good: str) -> None:
    rw_before = (env.top / RW / ".dockerboot-rwlayer").read_text()
    line = _one_line(_boot(env, configured, st, **extra))
    assert "last good" not in line
    expected = {"missing": "is not in", "noinit": "has no executable init",
                "nomodules": f"has no /lib/modules/{KVER} for the running kernel {KVER}"}
    key = "missing" if "nosuch" in configured else "noinit" if "init" in reason else "nomodules"
    assert expected[key] in line and configured.split(":")[0] in line
    assert (env.top / RW / ".dockerboot-rwlayer").read_text() == rw_before   # root untouched
    assert _read(env, st, "attempt") is None and _unmounted(env)


@pytest.mark.parametrize("good", ["deleted", "nomodules", "noinit"])
def test_a_good_image_that_cannot_boot_is_no_fallback(env: HookEnv, st: str, good: str) -> None:
    if good == "deleted":
        _set_good(env, st, raw="sha256:" + "1" * 64)
    else:
        _set_good(env, st, NOMODS if good == "nomodules" else NOINIT)
    line = _one_line(_boot(env, "nosuch/image:9", st))
    assert "nosuch/image:9 is not in" in line


def test_a_broken_good_file_is_ignored(env: HookEnv, st: str) -> None:
    _set_good(env, st, raw="sha256:" + "z" * 64)
    assert "nosuch/image:9 is not in" in _one_line(_boot(env, "nosuch/image:9", st))


# --- (d): tried N times in a row without being marked good ---

def _mark_good(env: HookEnv, state: str, *, shell: tuple[str, ...] = SHELLS[0],
               bootfile: Path | None = None, extra: str = "",
               more_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmdline = env.workdir / "mark-good-cmdline"
    cmdline.write_text(f"BOOT_IMAGE=/boot_docker/vmlinuz root=LABEL={env.disk.label} "
                       f"rootflags=subvol={RW} dockerboot.state={state} quiet {extra}\n")
    e = {"PATH": os.environ["PATH"], "DOCKERBOOT_CMDLINE_FILE": str(cmdline),
         "DOCKERBOOT_BOOTFILE": str(bootfile or env.top / RW / "etc/dockerboot/boot"),
         "DOCKERBOOT_MNT": str(env.workdir / "mark-good-mnt"), "DOCKERBOOT_SYSTEMCTL": "none",
         **(more_env or {})}
    return subprocess.run([*shell, str(MARK_GOOD)], env=e, text=True, capture_output=True,
                          timeout=60)


def test_tries_count_up_then_fall_back_and_stay_there(env: HookEnv, st: str) -> None:
    _set_good(env, st, SINGLE)
    cid, gid = env.ids[SYSTEMD], env.ids[SINGLE]
    for n in (1, 2):
        r = _boot(env, SYSTEMD, st)
        assert r.returncode == 0 and "last good" not in r.stderr, r.stderr
        assert _read(env, st, "attempt") == f"{cid} {n}\n"
        assert _snapshot_of(env) == env.subvolume(SYSTEMD)
        assert (env.top / RW / "etc/dbw-image-marker").read_text() == "systemd\n"
    r = _boot(env, SYSTEMD, st)                        # the 3rd boot: N=2 reached
    assert r.returncode == 0, r.stderr
    assert [x for x in r.stderr.splitlines() if "last good" in x] == [
        f"dockerboot: {SYSTEMD}: was tried 2 times and never marked good — booting the last "
        f"good image {gid.removeprefix('sha256:')[:12]} instead"]
    assert _snapshot_of(env) == env.subvolume(SINGLE)
    assert _read(env, st, "attempt") == f"{gid} 0\n"
    assert _read(env, st, "failed") == f"{cid} 2\n"
    # The fallback is marked good: MULTI is still not tried again, its count stays.
    assert _mark_good(env, st).returncode == 0
    assert _read(env, st, "attempt") == f"{gid} 0\n"
    r = _boot(env, SYSTEMD, st)
    assert "was tried 2 times" in r.stderr and r.returncode == 0
    # SINGLE, the good image, has no systemd: its boots are not counted.
    assert _read(env, st, "attempt") == f"{gid} 0\n" and _read(env, st, "failed") == f"{cid} 2\n"
    # More tries on the command line: SYSTEMD is tried again (from 1: SINGLE ran last).
    r = _boot(env, SYSTEMD, st, **{"dockerboot.tries": "3"})
    assert r.returncode == 0 and "last good" not in r.stderr, r.stderr
    assert _read(env, st, "attempt") == f"{cid} 1\n"
    # The tag moves to another image: that one is tried (not counted: no systemd).
    r = _boot(env, LINKS, st)
    assert r.returncode == 0 and "last good" not in r.stderr, r.stderr
    assert _read(env, st, "attempt") == f"{env.ids[LINKS]} 0\n"


def test_tries_parameter_and_marking_good_resets(env: HookEnv, st: str) -> None:
    _set_good(env, st, SINGLE)
    cid = env.ids[SYSTEMD]
    assert _boot(env, SYSTEMD, st, **{"dockerboot.tries": "1"}).returncode == 0
    assert _read(env, st, "attempt") == f"{cid} 1\n"
    r = _boot(env, SYSTEMD, st, **{"dockerboot.tries": "1"})
    assert "was tried 1 times and never marked good" in r.stderr
    # A fresh state: SYSTEMD boots once, is marked good, and never runs out again.
    st2 = st + "-2"
    _set_good(env, st2, SINGLE)
    assert _boot(env, SYSTEMD, st2).returncode == 0
    r = _mark_good(env, st2)
    assert r.returncode == 0, r.stderr
    assert _read(env, st2, "good") == f"{cid}\n" and _read(env, st2, "attempt") == f"{cid} 0\n"
    for n in (1, 2, 3, 4):
        r = _boot(env, SYSTEMD, st2)
        assert r.returncode == 0 and "last good" not in r.stderr, r.stderr
        assert _read(env, st2, "attempt") == f"{cid} {n}\n"


def test_out_of_tries_without_a_good_image_still_boots(env: HookEnv, st: str) -> None:
    for n in (1, 2, 3):
        r = _boot(env, SYSTEMD, st)
        assert r.returncode == 0, r.stderr
        assert _read(env, st, "attempt") == f"{env.ids[SYSTEMD]} {n}\n"
    assert "warning: " + SYSTEMD + " was tried 2 times and never marked good, and there is no " \
        "good image to fall back to" in r.stderr
    assert _read(env, st, "failed") is None


def test_tries_zero_turns_the_count_off(env: HookEnv, st: str) -> None:
    _set_good(env, st, SINGLE)
    for _ in range(3):
        r = _boot(env, SYSTEMD, st, **{"dockerboot.tries": "0"})
        assert r.returncode == 0 and "last good" not in r.stderr, r.stderr
    assert _read(env, st, "attempt") == f"{env.ids[SYSTEMD]} 3\n"


# --- the booted system marks the boot good ---

def test_unit_and_script_installed_only_when_the_image_has_systemd(env: HookEnv,
                                                                   st: str) -> None:
    r = _boot(env, SYSTEMD, st)
    assert r.returncode == 0, r.stderr
    rw = env.top / RW
    script = rw / "usr/local/lib/dockerboot/mark-good"
    assert script.is_file() and not script.is_symlink()
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert script.read_bytes() == MARK_GOOD.read_bytes()
    unit = rw / "etc/systemd/system" / UNIT
    assert unit.read_bytes() == MARK_GOOD_UNIT.read_bytes() and not unit.is_symlink()
    # Pulled in by a drop-in of multi-user.target (the shell writes it: no ln).
    dropin = rw / "etc/systemd/system/multi-user.target.d/dockerboot-mark-good.conf"
    assert not dropin.is_symlink()
    assert f"[Unit]\nWants={UNIT}\n" in dropin.read_text()
    text = unit.read_text()
    assert "Type=oneshot" in text and "After=multi-user.target" in text
    assert "WantedBy=multi-user.target" in text
    assert "ExecStart=/usr/local/lib/dockerboot/mark-good" in text
    # The image itself is untouched (its lib -> usr/lib etc. were followed inside).
    assert not (env.subvolume(SYSTEMD) / "usr/local/lib/dockerboot").exists()
    # An image without systemd gets none of it.
    assert _boot(env, SINGLE, st).returncode == 0
    assert not (rw / "usr/local/lib/dockerboot").exists() and not (rw / "etc/systemd").exists()


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_mark_good_script_for_real(env: HookEnv, st: str, shell: tuple[str, ...]) -> None:
    _set_good(env, st, SINGLE)
    cid = env.ids[MULTI]
    for _ in range(2):
        assert _boot(env, MULTI, st).returncode == 0
    (env.top / st / "failed").write_text(f"{cid} 2\n")         # as if it had run out
    for _ in range(2):                                          # safe to run twice
        r = _mark_good(env, st, shell=shell)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [
            f"dockerboot-mark-good: image {cid.removeprefix('sha256:')[:12]} ({MULTI}) marked "
            "good: the next boots fall back to it when needed"]
        assert _read(env, st, "good") == f"{cid}\n"
        assert _read(env, st, "attempt") == f"{cid} 0\n"
        assert _read(env, st, "failed") is None
        assert sorted(p.name for p in (env.top / st).iterdir()) == [".new", "attempt", "boot",
                                                                      "chains", "good"]
        mnt = env.workdir / "mark-good-mnt"
        assert str(mnt) not in Path("/proc/self/mounts").read_text() and not mnt.exists()


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_mark_good_never_writes_through_a_link_at_a_temporary_name(
        env: HookEnv, st: str, shell: tuple[str, ...]) -> None:
    # The state files are written whole under a temporary name, then renamed: a link
    # planted at that name is removed, not written through.
    assert _boot(env, MULTI, st).returncode == 0
    cid = env.ids[MULTI]
    victims = {}
    for name in ("good", "attempt"):
        victim = env.workdir / f"victim-{name}-{Path(shell[0]).name}"
        victim.write_text("not the hook's\n")
        tmp = env.top / st / f".{name}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(victim)
        victims[name] = victim
    r = _mark_good(env, st, shell=shell)
    assert r.returncode == 0, r.stderr
    assert all(v.read_text() == "not the hook's\n" for v in victims.values())
    assert _read(env, st, "good") == f"{cid}\n" and _read(env, st, "attempt") == f"{cid} 0\n"
    assert not list((env.top / st).glob(".*.tmp"))


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_mark_good_writes_grubs_good_mark_for_the_generation(env: HookEnv, st: str,
                                                             shell: tuple[str, ...]) -> None:
    # GRUB stops counting a generation's tries once this block names it (grub.render_cfg).
    assert _boot(env, MULTI, st).returncode == 0
    for hostile in ("", "dockerboot.generation=7x", "dockerboot.generation="):
        assert _mark_good(env, st, shell=shell, extra=hostile).returncode == 0
        assert _read(env, st, grub.GOOD_FILE) is None
    victim = env.workdir / "victim"
    victim.write_text("not the hook's\n")
    (env.top / st / ".generation.grubenv.tmp").symlink_to(victim)
    r = _mark_good(env, st, shell=shell, extra="dockerboot.generation=12")
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "not the hook's\n"
    data = (env.top / st / grub.GOOD_FILE).read_bytes()
    assert len(data) == grub.ENV_SIZE and data == grub.envblock({"dockerboot_good": "12"})
    assert not list((env.top / st).glob(".generation*"))


LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_mark_good_blesses_systemd_boots_entry_of_the_generation(env: HookEnv, st: str,
                                                                shell: tuple[str, ...]) -> None:
    # What systemd-bless-boot does: the entry systemd-boot counted loses its counter.
    assert _boot(env, MULTI, st).returncode == 0
    own = env.workdir / f"bless-{Path(shell[0]).name}"  # the env is the module's
    efivars, esp = own / "efivars", own / "esp"
    entries = esp / "loader/entries"
    entries.mkdir(parents=True)
    efivars.mkdir()
    more = {"DOCKERBOOT_EFIVARS": str(efivars), "DOCKERBOOT_ESP": str(esp)}

    def counted(path: str) -> None:  # 4 bytes of attributes, then UTF-16LE with a NUL
        (efivars / f"LoaderBootCountPath-{LOADER_GUID}").write_bytes(
            b"\x06\0\0\0" + (path + "\0").encode("utf-16-le"))

    (entries / "dockerboot-lab-12+2-1.conf").write_text("ours\n")
    (entries / "debian-6.1+2-1.conf").write_text("theirs\n")
    victim = own / "victim"
    victim.write_text("not an entry\n")
    (entries / "dockerboot-lab-12+0-3.conf").symlink_to(victim)
    before = sorted(p.name for p in entries.iterdir())
    for hostile in (r"\loader\entries\debian-6.1+2-1.conf",        # not the wizard's
                    r"\loader\entries\dockerboot-lab-13+2-1.conf",  # another generation
                    r"\loader\entries\..\..\dockerboot-x-12+1.conf",
                    r"\EFI\dockerboot-lab-12+2-1.conf",                # not in loader\entries
                    r"\loader\entries\dockerboot-lab-12+0-3.conf"):   # a link
        counted(hostile)
        r = _mark_good(env, st, shell=shell, extra="dockerboot.generation=12", more_env=more)
        assert r.returncode == 0, r.stderr
        assert sorted(p.name for p in entries.iterdir()) == before, hostile
    assert victim.read_text() == "not an entry\n"
    counted(r"\loader\entries\dockerboot-lab-12+2-1.conf")
    r = _mark_good(env, st, shell=shell, extra="dockerboot.generation=12", more_env=more)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == ("dockerboot-mark-good: systemd-boot's entry for "
                                         "generation 12 is marked good (dockerboot-lab-12.conf)")
    assert (entries / "dockerboot-lab-12.conf").read_text() == "ours\n"
    assert (entries / "debian-6.1+2-1.conf").read_text() == "theirs\n"
    assert not (entries / "dockerboot-lab-12+2-1.conf").exists()


def test_mark_good_without_a_boot_file_does_nothing(env: HookEnv, st: str) -> None:
    r = _mark_good(env, st, bootfile=env.workdir / "no-boot-file")
    assert r.returncode == 0 and "nothing to do" in r.stdout
    assert not (env.top / st).exists()


# --- the login message only on a fallback ---

def test_login_message_only_on_fallback(env: HookEnv, st: str) -> None:
    _set_good(env, st, SINGLE)
    assert _boot(env, NOINIT, st).returncode == 0
    assert (env.top / RW / MESSAGE).exists()
    assert _boot(env, MULTI, st).returncode == 0
    assert not (env.top / RW / MESSAGE).exists()
    assert _kv(str(_read(env, st, "boot")))["fallback"] == ""


# --- the state directory is checked like the rw layer's name ---

@pytest.mark.parametrize("state, why", [
    ("docker/x", "data-root"), ("docker", "data-root"), (f"{RW}/state", "rw layer"),
    ("a/../b", ".."), ("/", "top level"),
])
def test_bad_state_directory_is_refused(env: HookEnv, state: str, why: str) -> None:
    mark = env.top / RW / ".dockerboot-rwlayer"
    # Alone, this test runs before any boot made the rw layer: then none may appear.
    before = mark.read_text() if mark.exists() else None
    line = _one_line(_boot(env, SINGLE, state))
    assert "dockerboot.state=" in line and why in line
    assert (mark.read_text() if mark.exists() else None) == before


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("value, recorded", [
    (None, ""), ("7", "7"), ("123456", "123456"), ("007", "007"), ("", ""),
    ("1234567", ""), ("3" * 30, ""), ("1;rm", ""), ("-1", ""), ("1e3", ""), ("0x1f", ""),
    ("$(reboot)", ""), ("1\\ngood=x", ""),
])
def test_boot_records_the_generation_of_the_entry(env: HookEnv, st: str, value: str | None,
                                                  recorded: str, shell: tuple[str, ...]) -> None:
    """dockerboot.generation= lands in state/boot only as a plain number of at
    most 6 digits; anything else records an empty value, and the boot goes on."""
    extra = {} if value is None else {"dockerboot.generation": value}
    r = _boot(env, SINGLE, st, shell=shell, **extra)
    assert r.returncode == 0, r.stderr
    boot = str(_read(env, st, "boot"))
    lines = boot.splitlines()
    assert [ln for ln in lines if ln.startswith("generation=")] == [f"generation={recorded}"]
    assert [ln.partition("=")[0] for ln in lines] == [
        "ref", "id", "configured_id", "fallback", "kernel", "tries", "generation", "source"]
    assert (env.top / RW / "etc/dockerboot/boot").read_text() == boot
