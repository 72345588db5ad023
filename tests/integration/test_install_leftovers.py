"""What a killed install left, removed by the next one, and nothing else (hostile cases).

``install.flow.remove_stale`` stops a dockerd and removes a directory only
for an ``install-*`` directory whose owner is dead, only a process whose
command line names that directory's pidfile, never through a link, never
while something is mounted in it.  (The e2e test shows the real case: a
killed install's dockerd stopped and its mount gone.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wizard.common import leftovers
from wizard.install import flow

pytestmark = pytest.mark.lab


def dead_owner() -> str:
    boot, ns, _pid, _start = leftovers.owner_token().split("_")
    return f"{boot}_{ns}_4194303_1"  # no such process (pid_max's last pid, never started)


def install_dir(run_dir: Path, name: str, owner: str | None) -> Path:
    d = run_dir / name
    (d / "dockerd").mkdir(parents=True)
    (d / "top").mkdir()
    if owner is not None:
        (d / "owner").write_text(owner)
    return d


def test_only_a_dead_owners_leftovers_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setattr(leftovers, "RUN_DIR", run_dir)
    alive = install_dir(run_dir, "install-alive", leftovers.owner_token())
    unowned = install_dir(run_dir, "install-unowned", None)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep\n")
    (victim / "owner").write_text(dead_owner())
    (run_dir / "install-link").symlink_to(victim)
    # A dead owner whose pidfile names a process that is not its dockerd.
    stranger = subprocess.Popen(["sleep", "300"])
    named = install_dir(run_dir, "install-named", dead_owner())
    (named / "dockerd" / "dockerd.pid").write_text(f"{stranger.pid}\n")
    # A dead owner with a mount in it that cannot go (a process works in it).
    busy = install_dir(run_dir, "install-busy", dead_owner())
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(busy / "top")], check=True)
    (busy / "top" / "file").write_text("on the mount\n")
    user = subprocess.Popen(["sleep", "300"], cwd=busy / "top")
    try:
        done = flow.remove_stale()
        assert stranger.poll() is None, "a process that is not the install's dockerd was killed"
        assert alive.is_dir() and unowned.is_dir()
        assert (victim / "precious").read_text() == "keep\n"
        assert (run_dir / "install-link").is_symlink()
        assert not named.exists() and done == [f"removed {named}, left by a killed install"]
        assert (busy / "top" / "file").read_text() == "on the mount\n"  # nothing deleted
    finally:
        for proc in (stranger, user):
            proc.kill()
            proc.wait()
        subprocess.run(["umount", str(busy / "top")], check=False)
