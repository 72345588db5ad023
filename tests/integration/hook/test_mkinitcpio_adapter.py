"""mkinitcpio adapter (assets/mkinitcpio) under a small harness of mkinitcpio's API.

No Arch packages are reachable here, so a shell harness provides the
documented build() helpers (add_binary, add_file, …, recording into a fake
initramfs root) and the runtime helpers of the busybox /init (getarg, err,
launch_interactive_shell, …).  run_hook runs against the real loop btrfs
and the real (stopped) docker store of hookenv.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.hook.hookenv import ASSETS, MULTI, SINGLE, HookEnv, core_env

pytestmark = pytest.mark.lab

MK = ASSETS / "mkinitcpio"
# The core, what it sources, and what it installs into the booted root.
HOOK_FILES = ("dockerboot-core.sh", "dockerboot-assess.sh", "dockerboot-mark-good",
              "dockerboot-mark-good.service")

# build()-time helpers, as documented in mkinitcpio(8) "About install hooks".
BUILD_HARNESS = r'''
LOG=$BUILDROOT.log
rec() { printf '%s\n' "$*" >>"$LOG"; }
error() { rec "error $*"; printf '%s\n' "$*" >&2; }
_put() { mkdir -p "$BUILDROOT$(dirname "$2")"; cp -L "$1" "$BUILDROOT$2"; }
add_module() { rec "module $1"; }
add_binary() { rec "binary $1 ${2:-$1}"; _put "$1" "${2:-$1}"; }
add_file() { rec "file $1 ${2:-$1} ${3:-}"; _put "$1" "${2:-$1}"; }
add_dir() { rec "dir $1"; mkdir -p "$BUILDROOT$1"; }
add_symlink() {
  rec "symlink $1 $2"; mkdir -p "$BUILDROOT$(dirname "$1")"; ln -sfn "$2" "$BUILDROOT$1"
}
add_runscript() { rec "runscript $HOOKNAME"; _put "$HOOKSRC" "/hooks/$HOOKNAME"; }
add_systemd_unit() {
  u="$DOCKERBOOT_UNITDIR/$1"
  [ -f "$u" ] || { error "Unable to find systemd unit: $1"; return 1; }
  rec "unit $1"; _put "$u" "/usr/lib/systemd/system/$1"
  while IFS='=' read -r key value; do
    case $key in ExecStart) set -- $value; rec "exec $1" ;; esac
  done <"$u"
}
. "$INSTALL"
build
'''

# Runtime helpers of mkinitcpio's busybox /init (init_functions).
RUN_HARNESS = r'''
msg() { echo "$@"; }
err() { echo "ERROR: $*" >&2; }
poll_device() { [ -b "$1" ]; }
resolve_device() { echo "$1"; }
launch_interactive_shell() { echo called >"$SHELL_MARK"; }
getarg() {
  v=${2:-}
  for w in $FAKE_CMDLINE; do case $w in "$1"=*) v=${w#*=} ;; esac; done
  printf '%s\n' "$v"
}
. "$HOOK"
run_hook
'''


def _build(tmp_path: Path, install: str, *, path: str | None = None,
           busybox: str = "/usr/bin/busybox", extra: dict[str, str],
           ) -> tuple[subprocess.CompletedProcess, Path, str]:
    root = tmp_path / "initramfs"
    root.mkdir()
    env = {"PATH": path or os.environ["PATH"], "BUILDROOT": str(root),
           "INSTALL": str(MK / "install" / install), "HOOKNAME": install,
           "HOOKSRC": str(MK / "hooks" / "dockerboot"),
           "DOCKERBOOT_BUSYBOX": busybox, "DOCKERBOOT_UNITDIR": str(tmp_path / "units"), **extra}
    r = subprocess.run(["bash", "-c", BUILD_HARNESS], env=env, text=True, capture_output=True)
    log = Path(f"{root}.log")
    return r, root, log.read_text() if log.exists() else ""


@pytest.fixture
def installed_core(tmp_path: Path) -> dict[str, str]:
    """What build-initramfs.sh installs before the generator runs, in a private dir."""
    lib = tmp_path / "libexec"
    lib.mkdir()
    for name in HOOK_FILES:
        (lib / name).write_text((ASSETS / "hook" / name).read_text())
    (tmp_path / "docker-btrfs.json").write_text('{"docker_image": "x", "docker_tag": "1"}\n')
    return {"DOCKERBOOT_LIBEXEC": str(lib),
            "DOCKERBOOT_CONFIG": str(tmp_path / "docker-btrfs.json")}


def _common_asserts(root: Path, log: str) -> None:
    assert "module btrfs" in log
    for rel in ("etc/docker-btrfs.json", "usr/lib/dockerboot/cp", "usr/lib/dockerboot/sha256sum",
                "usr/bin/btrfs", *(f"usr/lib/dockerboot/{n}" for n in HOOK_FILES)):
        assert (root / rel).is_file(), rel
    # The hook installs the mark-good script into the booted root as it is here.
    assert "file" in log and f"/usr/lib/dockerboot/{HOOK_FILES[2]} 0755" in log
    assert f"/usr/lib/dockerboot/{HOOK_FILES[3]} 0644" in log
    # Coreutils cp, not busybox: it is what keeps xattrs and capabilities.
    ver = subprocess.run([root / "usr/lib/dockerboot/cp", "--version"], text=True,
                         capture_output=True).stdout
    assert "coreutils" in ver


def test_build_busybox_variant(tmp_path: Path, installed_core: dict[str, str]) -> None:
    r, root, log = _build(tmp_path, "dockerboot", extra=installed_core)
    assert r.returncode == 0, r.stderr + log
    _common_asserts(root, log)
    assert "runscript dockerboot" in log and (root / "hooks/dockerboot").is_file()
    assert "unit " not in log


def test_build_systemd_variant(tmp_path: Path, installed_core: dict[str, str]) -> None:
    r, root, log = _build(tmp_path, "sd-dockerboot", extra=installed_core)
    assert r.returncode == 0, r.stderr + log
    _common_asserts(root, log)
    assert "runscript" not in log
    assert "unit dockerboot.service" in log
    unit = (root / "usr/lib/systemd/system/dockerboot.service").read_text()
    assert "Before=sysroot.mount" in unit and "After=initrd-root-device.target" in unit
    assert "Type=oneshot" in unit
    wants = root / "usr/lib/systemd/system/initrd-root-device.target.wants/dockerboot.service"
    assert wants.is_symlink()
    assert wants.resolve() == root / "usr/lib/systemd/system/dockerboot.service"
    assert (root / "usr/lib/systemd/system/sysroot.mount.requires/dockerboot.service").is_symlink()
    # ExecStart's interpreter is in the image and the applets it needs exist.
    execs = [line.split()[1] for line in log.splitlines() if line.startswith("exec ")]
    assert execs == ["/usr/lib/initcpio/busybox"]
    assert (root / execs[0].lstrip("/")).is_file()
    for applet in ("grep", "tr", "sed", "sort", "mount", "find", "readlink"):
        assert (root / "usr/lib/dockerboot/bin" / applet).is_symlink(), applet


def test_build_names_missing_btrfs_progs(tmp_path: Path, installed_core: dict[str, str]) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "cp", "sha256sum", "dirname", "mkdir", "ln", "install", "cat", "blkid"):
        (bindir / tool).symlink_to(subprocess.run(["which", tool], text=True,
                                                  capture_output=True).stdout.strip())
    r, _root, log = _build(tmp_path, "dockerboot", extra=installed_core, path=str(bindir))
    assert "add btrfs-progs to the Dockerfile" in r.stderr
    assert "runscript" not in log


def test_build_names_missing_busybox(tmp_path: Path, installed_core: dict[str, str]) -> None:
    r, _root, log = _build(tmp_path, "sd-dockerboot", extra=installed_core,
                           busybox=str(tmp_path / "no-busybox"))
    assert "mkinitcpio-busybox" in r.stderr
    assert "unit " not in log


def _run_hook(env: HookEnv, tmp_path: Path, *, root: str, rootflags: str,
              cmdline: str) -> tuple[subprocess.CompletedProcess, bool]:
    mark = tmp_path / "shell-called"
    e = core_env(env.workdir, None)
    e.update(HOOK=str(MK / "hooks/dockerboot"), SHELL_MARK=str(mark), FAKE_CMDLINE=cmdline,
             root=root, rootflags=rootflags)
    # init's parse_cmdline sets plain variables; the harness gets them via env.
    r = subprocess.run(["busybox", "sh", "-c", "set -u; " + RUN_HARNESS], env=e, text=True,
                       capture_output=True, timeout=120)
    return r, mark.exists()


def test_run_hook_success(env: HookEnv, tmp_path: Path) -> None:
    rw = env.top / "rw_mk"
    # docker_image from getarg; the rest defaults, the image falls back to the config.
    r, shell = _run_hook(env, tmp_path, root=f"LABEL={env.disk.label}",
                         rootflags="rw,subvol=rw_mk", cmdline=f"docker_image={SINGLE} quiet")
    assert r.returncode == 0 and not shell, r.stderr
    assert not (rw / "opt").exists() and (rw / "etc/dbw-image-marker").exists()
    assert (rw / ".dotfile").exists()
    r, shell = _run_hook(env, tmp_path, root=f"LABEL={env.disk.label}",
                         rootflags="subvol=rw_mk", cmdline="quiet")
    assert r.returncode == 0 and not shell, r.stderr
    assert (rw / "opt/two.txt").exists()               # MULTI from docker-btrfs.json
    assert MULTI.split(":")[0] in Path(env.workdir / "docker-btrfs.json").read_text()


def test_run_hook_failure_opens_shell(env: HookEnv, tmp_path: Path) -> None:
    r, shell = _run_hook(env, tmp_path, root=f"LABEL={env.disk.label}",
                         rootflags="subvol=rw_mk2", cmdline="docker_image=nosuch:1")
    assert shell, r.stderr
    assert "dockerboot: image nosuch:1 is not in" in r.stderr
    assert "ERROR: dockerboot could not prepare the root" in r.stderr
    # True about what leaving the shell does (issue 17, point 8), on one line.
    assert [x for x in r.stderr.splitlines() if "could not prepare" in x][0].endswith(
        "exit the shell to boot the root of the boot before, unchanged and not marked good")
    assert not (env.top / "rw_mk2").exists()
