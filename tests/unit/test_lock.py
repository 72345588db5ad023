"""One run per partition: ``boot_docker/.lock``; and execute refuses a plan whose mount is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wizard.common.lock import LockedError, partition_lock
from wizard.flows import apply
from wizard.settings.config import Settings

TRY_LOCK = """
import sys
from wizard.common.lock import LockedError, partition_lock
try:
    with partition_lock(sys.argv[1], "lab"):
        print("got it")
except LockedError as e:
    print(e)
    sys.exit(1)
"""


def other_process(boot: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", TRY_LOCK, str(boot)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)


def test_a_second_process_gets_one_line_naming_the_holder(tmp_path: Path) -> None:
    boot = tmp_path / "boot_docker"
    with partition_lock(boot, "lab") as path:
        assert path.read_text() == f"{os.getpid()}\n"
        r = other_process(boot)
        assert r.returncode == 1
        assert r.stdout == (f"another dockerboot-wizard (pid {os.getpid()}) is working on lab "
                            "— wait for it to finish\n")
    assert other_process(boot).stdout == "got it\n"


def test_release_leaves_nothing_behind_on_a_fresh_partition(tmp_path: Path) -> None:
    with partition_lock(tmp_path / "boot_docker", "lab"):
        assert (tmp_path / "boot_docker" / ".lock").exists()
    assert list(tmp_path.iterdir()) == []


def test_release_keeps_an_existing_boot_dir_and_what_was_written(tmp_path: Path) -> None:
    boot = tmp_path / "boot_docker"
    with partition_lock(boot, "lab"):
        (boot / "vmlinuz").write_text("k")
    assert [p.name for p in boot.iterdir()] == ["vmlinuz"]


def test_the_same_process_twice_is_refused_too(tmp_path: Path) -> None:
    # flock belongs to the open file: a second open in this process conflicts as well.
    with partition_lock(tmp_path, "lab"), pytest.raises(LockedError, match="working on lab"):
        with partition_lock(tmp_path, "lab"):
            pass


def test_execute_refuses_when_the_top_level_is_no_longer_mounted(tmp_path: Path) -> None:
    top = tmp_path / "mnt"
    top.mkdir()
    session = apply.Session(Settings(label="lab", image="desk:1"), None,  # type: ignore[arg-type]
                            top, None, top / "docker",  # type: ignore[arg-type]
                            top_dev=os.stat(top).st_dev)
    with pytest.raises(apply.TargetGoneError) as e:
        apply.check_target(session)
    assert str(e.value) == f"the partition lab is no longer mounted at {top} — run apply again"
