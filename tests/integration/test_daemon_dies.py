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
    """SIGKILL dockerd and every process of its private state (containerd, shims, build)."""
    state = str(Path(daemon.host.removeprefix("unix://")).parent)
    daemon.process.kill()
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if state in cmdline and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    daemon.process.wait(30)


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
