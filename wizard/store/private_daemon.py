"""A private dockerd: the btrfs graph driver on a data-root of the wizard's choosing.

The sandbox runs one on its loop disk and ``install`` one on the new
partition; neither ever meets the system's own dockerd (own socket,
exec-root and pidfile, no bridge, no iptables rules).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wizard.common.commands import run
from wizard.common.errors import SandboxError
from wizard.store.pins import PIN_LABEL


@dataclass
class Dockerd:
    """A private dockerd with the classic btrfs graph driver."""

    host: str
    """``unix://…`` address for ``DOCKER_HOST``."""
    data_root: Path
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """Environment for a docker client (SDK or CLI) talking to this daemon."""
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str | os.PathLike[str], check: bool = True,
               timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this daemon (``run``'s ``check`` and ``timeout``)."""
        return run("docker", *args, env=self.env(), check=check, timeout=timeout)


@contextlib.contextmanager
def dockerd(data_root: Path, *, storage_driver: str = "btrfs",
            state: Path | None = None) -> Iterator[Dockerd]:
    """Start a private dockerd on ``data_root``; stop it and its containers afterwards.

    It has no bridge and no iptables rules (nothing on the sandbox needs a
    network, and the host's firewall stays untouched), and its own socket,
    exec-root and pidfile (in ``state``, a new directory; default: one in /tmp), so it
    never meets the system's dockerd.

    Raises:
        SandboxError: dockerd exited or did not answer within 20 seconds.

    """
    if state is None:
        state = Path(tempfile.mkdtemp(prefix="dbw-dockerd-"))
    else:
        state.mkdir(mode=0o700)
    sock = state / "docker.sock"
    log_path = state / "dockerd.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["dockerd", f"--storage-driver={storage_driver}", f"--data-root={data_root}",
             f"--exec-root={state}/exec", f"--pidfile={state}/dockerd.pid",
             f"--host=unix://{sock}", "--bridge=none", "--iptables=false",
             "--ip-forward=false"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    d = Dockerd(host=f"unix://{sock}", data_root=data_root, process=proc)
    try:
        for _ in range(200):
            if proc.poll() is not None:
                raise SandboxError(f"the sandbox's dockerd exited: {_tail(log_path)}",
                                   "is the data-root on btrfs and the btrfs module loaded?")
            if sock.exists() and d.docker("version", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise SandboxError(f"the sandbox's dockerd did not come up: {_tail(log_path)}",
                               "see the dockerd log lines above")
        yield d
    finally:
        with contextlib.suppress(Exception):
            # Running leftovers go; a generation's pin (never started) is the
            # partition's, like its images: it stays for the next daemon.
            rows = d.docker("ps", "-a", "--format",
                            f'{{{{.ID}}}} {{{{.Label "{PIN_LABEL}"}}}}', check=False).stdout
            ids = [row.split()[0] for row in rows.splitlines() if len(row.split()) == 1]
            if ids:
                d.docker("rm", "-f", *ids, check=False)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # dockerd leaves its exec-root mounts behind on a hard stop.
        run("umount", "-R", "-l", f"{state}/exec", check=False)
        shutil.rmtree(state, ignore_errors=True)


def _tail(path: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"
