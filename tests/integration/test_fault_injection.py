"""Fault injection: SIGKILL the installed ``dockerboot-wizard apply`` at every step boundary.

The machine is laid out like a real one: docker's data-root is the
``docker`` subvolume mounted on its own, and the test reads the top level
through a *read-only* mount, so the wizard has to mount the top level
itself (and a killed wizard leaves that mount behind, as it would on a real
machine).  For every boundary line of ``cli.print_event`` (``==> [step] …``
and ``    [step] done``) the apply is killed right when the line appears;
then nothing temporary may be left on the host, the user's refind.conf
lines and every top-layer file are either old or new (never partial), and
a rerun of the same apply converges to the state of an uninterrupted one.
Hostname and kernel options alternate between cases so that "old" and
"new" differ.  At the end, one real UEFI boot after a kill at the worst
point (see ``test_kill_at_worst_point_still_boots``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lab import scenario
from wizard.boot import bootloader, generations
from wizard.common import leftovers
from wizard.disk import partitions
from wizard.disk.partitions import mounted
from wizard.sandbox.parts import attach_disk
from wizard.store.private_daemon import Dockerd, dockerd

pytestmark = [pytest.mark.lab]

IMAGE = "dbw-fault/initramfs-tools:v1"
BASE_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init"
OPTIONS = (f"{BASE_OPTIONS} panic=10", f"{BASE_OPTIONS} panic=11")
HOSTNAMES = ("dbw-fault-a", "dbw-fault-b")
# "    [X] done" and "==> [Y] …" are printed back to back with no work between them:
# they are one boundary, killed at its first line (the earliest moment).
FULL_BOUNDARIES = ("plan", "==> [initramfs]", "    [initramfs] done", "    [toplayer] done",
                   "    [bootloader] done", "    [config] done")
TOPLAYER_BOUNDARIES = ("plan", "==> [toplayer]", "    [toplayer] done", "    [config] done")
SECRET = ("etc/shadow", "etc/gshadow")
PRIVATE_RUN_DIR = Path("/run/dockerboot-wizard")
"""The only place a killed wizard may leave something (its top-level mount): the next
run cleans it."""


@dataclass
class Rig:
    """One sandbox machine, its daemon, and the test's read-only view of the top level."""

    machine: scenario.Machine
    daemon: Dockerd
    top: Path
    device: str
    tmpdir: Path
    cwd: Path
    user_conf: bytes
    stack: contextlib.ExitStack
    runs: int = 0
    case: int = 0
    reference: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def boot_dir(self) -> Path:
        return self.top / "boot_docker"

    @property
    def toplayer(self) -> Path:
        return self.boot_dir / "toplayer"

    def env(self) -> dict[str, str]:
        return {**self.daemon.env(), "TMPDIR": str(self.tmpdir)}


@contextlib.contextmanager
def real_layout(machine: scenario.Machine) -> Iterator[tuple[Dockerd, Path, str]]:
    """data-root = ``subvol=docker`` on its own mount; the top level mounted read-only."""
    work = machine.workdir
    with attach_disk(machine.image, label=machine.label, gpt=True) as disk, \
            mounted(disk.btrfs_dev, work / "data-root", "subvol=docker") as data_root, \
            mounted(disk.btrfs_dev, work / "mnt", "subvolid=5,ro") as top, \
            dockerd(data_root) as daemon:
        yield daemon, top, disk.btrfs_dev


def _dockerboot_entries() -> set[str]:
    # Other people's sandboxes come and go in /var/tmp: only the wizard's own names count
    # here; everything tempfile makes lands in the run's TMPDIR, checked empty.
    out = set()
    for d in (Path("/tmp"), Path("/var/tmp")):
        out |= {str(p) for p in d.iterdir() if p.name.startswith("dockerboot-top-")}
    return out


def _stray_mounts(rig: Rig) -> list[str]:
    """Mounts of the machine's btrfs other than the test's two, and any wizard mount."""
    mine = {str(rig.machine.workdir / "data-root"), str(rig.top)}
    out = []
    for entry in partitions.read_mountinfo():
        ours = entry.source == rig.device or "dockerboot-top-" in entry.mountpoint
        inside_docker = entry.mountpoint.startswith(f"{rig.machine.workdir}/data-root/")
        if ours and entry.mountpoint not in mine and not inside_docker:
            out.append(entry.mountpoint)
    return out


def _files(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _leftover_temp_files(rig: Rig) -> list[Path]:
    found = []
    for root in (rig.boot_dir, rig.machine.esp):
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.name.endswith(".tmp")
                      or p.name.startswith(".build-")]
    # A home being made (toplayer_plan) is copied into a scratch dir first.
    found += [p for p in rig.top.glob("*/.dockerboot-new-*")]
    return found


def _labelled_containers(rig: Rig) -> list[str]:
    out = rig.daemon.docker("ps", "-aq", "--filter", "label=dockerboot-wizard").stdout
    return out.split()


def _apply_cmd(rig: Rig, case: int, toplayer_only: bool) -> list[str]:
    pw = rig.machine.workdir / "password"
    if not pw.exists():
        pw.write_text("correct horse battery\n")
        os.chmod(pw, 0o600)
    cmd = [scenario.wizard_command(), "apply", "--label", rig.machine.label, "--yes",
           "--hostname", HOSTNAMES[case % 2], "--user", "alice", "--password-file", str(pw)]
    if not toplayer_only:
        cmd += ["--image", IMAGE, "--esp", str(rig.machine.esp),
                "--kernel-options", OPTIONS[case % 2]]
    else:
        cmd.append("--toplayer-only")
    return cmd


def run(rig: Rig, cmd: list[str], kill_at: str | None = None) -> tuple[int, str]:
    """Run the CLI; with ``kill_at`` SIGKILL it as soon as that boundary line appears."""
    rig.runs += 1
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=rig.env(), cwd=rig.cwd)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        hit = (line.startswith("Summary:")
               if kill_at == "plan" else line.startswith(kill_at or "\0"))
        if hit:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.stdout.close()
    code = proc.wait(timeout=900)
    return code, "".join(lines)


def _check_after_kill(rig: Rig, before: dict[str, bytes], conf_before: bytes,
                      known_tmp: set[str]) -> dict[str, bytes]:
    assert _dockerboot_entries() <= known_tmp, "a temp path was left in /tmp or /var/tmp"
    assert not list(rig.tmpdir.iterdir()), f"left in TMPDIR: {list(rig.tmpdir.iterdir())}"
    assert not list(rig.cwd.iterdir()), f"left in the cwd: {list(rig.cwd.iterdir())}"
    for mp in _stray_mounts(rig):
        assert mp.startswith(str(PRIVATE_RUN_DIR) + "/"), f"stray mount {mp}"
    conf = rig.machine.refind_conf.read_bytes()
    assert conf.startswith(rig.user_conf), "the user's refind.conf lines changed"
    assert conf == conf_before or _block_ok(conf[len(rig.user_conf):]), conf
    return _files(rig.toplayer)


def _block_ok(block: bytes) -> bool:
    text = block.decode()
    return (text.count(bootloader.BEGIN_MARKER) == 1 and text.endswith(
        bootloader.END_MARKER + "\n") and any(o in text for o in OPTIONS))


def _check_converged(rig: Rig, case: int, toplayer_only: bool, code: int, out: str) -> None:
    assert code == 0, out[-4000:]
    newest = generations.load(rig.boot_dir).newest
    assert newest is not None and not newest.legacy
    assert (rig.boot_dir / newest.loader).stat().st_size > 0
    assert (rig.boot_dir / newest.initrd_path).stat().st_size > 0
    conf = rig.machine.refind_conf.read_bytes()
    assert f"loader boot_docker/{newest.loader}".encode() in conf
    assert conf.startswith(rig.user_conf)
    assert conf.count(bootloader.BEGIN_MARKER.encode()) == 1
    if not toplayer_only:
        assert OPTIONS[case % 2].encode() in conf
    files = _files(rig.toplayer)
    assert files["etc/hostname"] == f"{HOSTNAMES[case % 2]}\n".encode()
    assert b"alice:" in files["etc/shadow"]
    saved = (rig.boot_dir / "dockerboot-wizard.toml").read_text()
    assert HOSTNAMES[case % 2] in saved and "alice" in saved
    assert not _leftover_temp_files(rig), _leftover_temp_files(rig)
    assert not _labelled_containers(rig), "a wizard container was left behind"
    assert not _stray_mounts(rig), _stray_mounts(rig)
    # A dead wizard's mount directory (the killed one's): other modules' live wizards
    # may have theirs meanwhile (make test runs two modules at a time).
    assert not leftovers.stale_mount_dirs(), leftovers.stale_mount_dirs()
    ref = rig.reference.setdefault(HOSTNAMES[case % 2], files)
    # dockerboot-update's settings carry the kernel command line of the saved config,
    # which a top-layer-only run keeps from the full run before it (the boot entry
    # is not rewritten either): compared with the saved options instead.
    settings_file = files["etc/dockerboot/update.conf"].decode()
    [panic] = [p for p in ("panic=10", "panic=11") if p in saved]
    cmdline = next(ln for ln in settings_file.splitlines() if ln.startswith("cmdline="))
    assert cmdline.endswith(f" {panic}"), (cmdline, saved)
    same = {k for k in ref if k not in SECRET and k != "etc/dockerboot/update.conf"}
    assert {k: files.get(k) for k in same} == {k: ref[k] for k in same}, \
        "a rerun after a kill ended in another state than an uninterrupted apply"


def _check_files(rig: Rig, killed: dict[str, bytes], before: dict[str, bytes]) -> None:
    after = _files(rig.toplayer)
    for rel, data in killed.items():
        assert not rel.endswith(".tmp"), f"a temp file in the top layer lands in the root: {rel}"
        if rel in SECRET:
            lines = data.decode().splitlines()
            width = 9 if rel == "etc/shadow" else 4
            assert lines and all(len(ln.split(":")) == width for ln in lines), (rel, data)
        else:
            assert data in (before.get(rel), after.get(rel)), f"{rel} is partial: {data!r}"


def kill_and_rerun(rig: Rig, boundary: str, toplayer_only: bool) -> None:
    """One case: kill at ``boundary``, check what is left, rerun, check it converged."""
    rig.case += 1
    case = rig.case
    before, conf_before = _files(rig.toplayer), rig.machine.refind_conf.read_bytes()
    known_tmp = _dockerboot_entries()
    cmd = _apply_cmd(rig, case, toplayer_only)
    code, out = run(rig, cmd, kill_at=boundary)
    assert code == -signal.SIGKILL, f"never reached {boundary!r}:\n{out[-3000:]}"
    killed = _check_after_kill(rig, before, conf_before, known_tmp)
    code, out = run(rig, cmd)
    _check_converged(rig, case, toplayer_only, code, out)
    _check_files(rig, killed, before)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("fault")
    machine = scenario.new_machine(work)
    with contextlib.ExitStack() as stack:
        daemon, top, device = stack.enter_context(real_layout(machine))
        scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="fault-v1")
        (work / "tmpdir").mkdir()
        (work / "cwd").mkdir()
        r = Rig(machine, daemon, top, device, work / "tmpdir", work / "cwd",
                machine.refind_conf.read_bytes(), stack)
        # The baseline: one uninterrupted apply, the reference for hostname A.
        code, out = run(r, _apply_cmd(r, 0, False))
        _check_converged(r, 0, False, code, out)
        try:
            yield r
        finally:
            leftovers.remove_stale_mounts()  # a failed case's killed wizard


def _boundaries(default: tuple[str, ...]) -> tuple[str, ...]:
    only = os.environ.get("DBW_FAULT_BOUNDARIES")  # e.g. "1,2" to debug a few cases
    return tuple(default[int(i)] for i in only.split(",")) if only else default


def test_kill_full_apply_at_every_boundary(rig: Rig) -> None:
    for boundary in _boundaries(FULL_BOUNDARIES):
        kill_and_rerun(rig, boundary, toplayer_only=False)


def test_kill_toplayer_only_apply_at_every_boundary(rig: Rig) -> None:
    for boundary in _boundaries(TOPLAYER_BOUNDARIES):
        kill_and_rerun(rig, boundary, toplayer_only=True)


def test_kill_at_worst_point_still_boots(rig: Rig) -> None:
    """Kill right after the new kernel + initramfs are installed, then boot without a rerun.

    The worst point: it is the only boundary where the boot set mixes
    generations (new kernel and initramfs with its hook, old boot entry with
    the old kernel options, old top layer and saved config).  Earlier kills
    leave the old set whole, later ones only add files that are each
    replaced atomically.  The machine must boot as it is, before any rerun.
    """
    rig.case += 1
    before, conf_before = _files(rig.toplayer), rig.machine.refind_conf.read_bytes()
    code, out = run(rig, _apply_cmd(rig, rig.case, False), kill_at="    [initramfs] done")
    assert code == -signal.SIGKILL, out[-3000:]
    _check_after_kill(rig, before, conf_before, _dockerboot_entries())
    leftovers.remove_stale_mounts()  # what the next run (or a reboot) does with its mount
    rig.stack.close()  # stop dockerd, detach the disk
    serial, facts = scenario.boot(rig.machine, "worst")
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["root_subvol"] == "/docker_rwlayer"
    assert facts["image_marker"] == "fault-v1"
    assert facts["hostname"] in HOSTNAMES
    assert facts["user"].startswith("alice:")
