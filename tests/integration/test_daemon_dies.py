"""The docker daemon dies in the middle of the initramfs build: one line, nothing changed.

A real private dockerd is SIGKILLed (with its containerd and the build
container) right when ``apply`` starts building; the wizard must end with
one line and exit 1, and the ESP, ``boot_docker/`` and the partition's top
level must be exactly as before (no staged build, no lock, no top layer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab import lab, scenario

pytestmark = pytest.mark.lab

IMAGE = "dbw-dies/debian:12"


def kill_daemon(daemon: lab.Dockerd) -> None:
    """SIGKILL dockerd, its containerd and shims, and the containers' processes.

    A daemon dying alone leaves its containers running (they hold mounts of
    the test disk): their init processes are looked up first and killed too,
    so the lab's teardown can unmount and detach as after any test.
    """
    ids = daemon.docker("ps", "-q").stdout.split()
    inits = [int(daemon.docker("inspect", "-f", "{{.State.Pid}}", i).stdout) for i in ids]
    state = str(Path(daemon.host.removeprefix("unix://")).parent)
    daemon.process.kill()
    doomed = set(inits)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            if state in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                doomed.add(pid)
        except OSError:
            continue
    for pid in doomed - {os.getpid(), 0}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    daemon.process.wait(30)
    time.sleep(1)  # the kernel tears the killed containers' namespaces down
    # dockerd bind-mounts its data-root (and btrfs/) over itself; a killed one leaves them.
    if os.path.ismount(daemon.data_root):
        lab.run("umount", "-R", "-l", daemon.data_root, check=False)


def state(esp: Path, top: Path) -> tuple[list[str], dict[str, bytes]]:
    """The top level's entries, and every file of the ESP and ``boot_docker/``."""
    files = {str(p): p.read_bytes() for root in (esp, top / "boot_docker") if root.exists()
             for p in sorted(root.rglob("*")) if p.is_file()}
    return sorted(p.name for p in top.iterdir()), files


def test_daemon_killed_mid_build_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    with lab.cli_lab(tmp_path, IMAGE, "dbw-dies/tiny:1") as (dd, esp):
        pw = tmp_path / "pw"
        pw.write_text("pw\n")
        before = state(esp, dd.top)
        proc = subprocess.Popen(
            [scenario.wizard_command(), "apply", "--label", dd.disk.label, "--esp", str(esp),
             "--image", IMAGE, "--hostname", "dies", "--user", "alice", "--password-file",
             str(pw), "--yes"], env=dd.daemon.env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("==> [initramfs]"):
                time.sleep(2)  # the build container is running
                kill_daemon(dd.daemon)
                break
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, "".join(seen) + out + err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert "docker" in lines[0].lower(), lines[0]
        assert state(esp, dd.top) == before  # no staged build, no lock, no top layer
