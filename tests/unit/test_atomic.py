"""atomic: files replaced whole or not at all, their backups bounded and pruned safely,
the temp files of a killed run recognised (and only those)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wizard.common import atomic, leftovers


def _stamped(directory: Path, name: str, stamps: list[str]) -> list[Path]:
    out = []
    for stamp in stamps:
        p = directory / f"{name}.dockerboot-{stamp}.bak"
        p.write_text(stamp)
        out.append(p)
    return out


def test_prune_keeps_the_newest_and_never_a_users_file(tmp_path: Path) -> None:
    conf = tmp_path / "refind.conf"
    conf.write_text("x")
    old = _stamped(tmp_path, "refind.conf", ["20240101T000000Z", "20240101T000000Z-1",
                                             "20250101T000000Z", "20260101T000000Z",
                                             "20230101T000000Z"])
    users = [tmp_path / n for n in ("refind.conf.bak", "refind.conf.dockerboot-mine.bak",
                                    "other.conf.dockerboot-20200101T000000Z.bak")]
    for u in users:
        u.write_text("mine")
    link = tmp_path / "refind.conf.dockerboot-20100101T000000Z.bak"
    link.symlink_to(users[0])
    gone = atomic.prune_backups(conf, keep=3)
    assert sorted(gone) == sorted([old[4], old[0]])
    assert all(p.exists() for p in old[1:4]) and all(u.read_text() == "mine" for u in users)
    assert link.is_symlink()


def test_write_atomic_bounds_backups_and_cleans_a_killed_runs_temp_files(tmp_path: Path) -> None:
    conf = tmp_path / "refind.conf"
    conf.write_text("v0")
    stale = [tmp_path / ".refind.conf.abcd1234.tmp",
             tmp_path / ".refind.conf.dockerboot-20240101T000000Z.bak.abcd_234.tmp"]
    for s in stale:
        s.write_text("half")
    keep = tmp_path / ".refind.conf.mine.tmp"  # not the wizard's name pattern
    keep.write_text("mine")
    for i in range(1, 6):
        atomic.write_atomic(conf, f"v{i}".encode())
    backups = sorted(tmp_path.glob("refind.conf.dockerboot-*.bak"))
    assert len(backups) == atomic.KEEP_BACKUPS
    assert sorted(b.read_text() for b in backups) == ["v2", "v3", "v4"]
    assert not any(s.exists() for s in stale) and keep.read_text() == "mine"
    assert conf.read_text() == "v5"


def test_syncfs_and_copy_durable(tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_bytes(b"data")
    os.chmod(src, 0o640)
    dst = tmp_path / "b"
    atomic.copy_durable(src, dst)
    assert dst.read_bytes() == b"data" and dst.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    atomic.syncfs(tmp_path)
    atomic.syncfs(tmp_path / "missing")  # falls back to sync(2)


def test_temp_name_pattern_is_strict() -> None:
    p = leftovers.temp_name_pattern("shadow")
    assert p.match(".shadow.abcd_12X.tmp")
    assert not p.match(".shadow.tmp") and not p.match("shadow.abcd1234.tmp")
    assert not p.match(".shadow.abcd1234.tmp.x")


def test_write_atomic_backs_up_and_keeps_mode(tmp_path):
    f = tmp_path / "refind.conf"
    f.write_bytes(b"old\r\ncontent")
    os.chmod(f, 0o640)
    backup = atomic.write_atomic(f, b"new")
    assert f.read_bytes() == b"new"
    assert backup is not None and backup.read_bytes() == b"old\r\ncontent"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    assert atomic.write_atomic(f, b"new") is None  # unchanged: no rewrite, no backup
    assert not list(tmp_path.glob(".*tmp"))


def test_write_atomic_failure_leaves_old_file(tmp_path, monkeypatch):
    f = tmp_path / "x"
    f.write_bytes(b"keep me")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_atomic(f, b"new", backup=False)
    assert f.read_bytes() == b"keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
