"""Bounded backups: refind.conf/config backups and top-layer backup stamps, pruned safely."""

from __future__ import annotations

import os
from pathlib import Path

from wizard import atomic, leftovers, toplayer


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


def test_toplayer_backups_keep_n_stamps_and_one_password_hash(tmp_path: Path) -> None:
    backups = tmp_path / "backups" / "toplayer"
    stamps = ["20240101T000000Z", "20240102T000000Z", "20240103T000000Z", "20240103T000000Z-1",
              "20240104T000000Z"]
    for s in stamps:
        (backups / s / "etc").mkdir(parents=True)
        (backups / s / "etc" / "hostname").write_text(s)
        (backups / s / "etc" / "shadow").write_text(f"root:$6$hash-{s}:1::::::\n")
    notes = tmp_path / "backups" / "notes.txt"
    notes.write_text("mine")
    (backups / "notes.txt").write_text("mine too")
    (backups / "mine").mkdir()
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "shadow").write_text("host shadow")
    # A stamp whose etc/ is a symlink out of the backups: never deleted through.
    evil = backups / "20240103T120000Z"
    evil.mkdir()
    (evil / "etc").symlink_to(outside / "etc")
    toplayer.prune_backups(backups, keep=3)
    left = sorted(d.name for d in backups.iterdir() if d.name[0].isdigit())
    assert left == ["20240103T000000Z-1", "20240103T120000Z", "20240104T000000Z"]
    shadows = sorted(backups.glob("*/etc/shadow"))
    assert [p.parent.parent.name for p in shadows if not p.parent.is_symlink()] == [
        "20240104T000000Z"]
    assert (outside / "etc" / "shadow").read_text() == "host shadow"
    assert (backups / "20240103T000000Z-1" / "etc" / "hostname").exists()
    assert notes.read_text() == "mine" and (backups / "notes.txt").exists()
    assert (backups / "mine").is_dir()


def test_apply_changes_prunes(tmp_path: Path) -> None:
    from wizard.config import Settings

    s = Settings(label="x", image="i:t")
    for i in range(6):
        change = toplayer.FileChange("etc/shadow", None, f"root:h{i}:1::::::\n".encode(),
                                     mode=0o640)
        toplayer.apply_changes(tmp_path, s, [change, toplayer.FileChange(
            "etc/hostname", None, f"h{i}\n".encode())])
        os.utime(tmp_path)  # distinct stamps come from the -N suffix within one second
    root = toplayer.backup_root(tmp_path, s)
    stamps = [d for d in root.iterdir()]
    assert len(stamps) == toplayer.KEEP_STAMPS
    assert len(list(root.glob("*/etc/shadow"))) == 1
    staging = toplayer.staging_dir(toplayer.toplayer_dir(tmp_path, s))
    assert staging.is_dir() and not list(staging.iterdir())
    assert not list(toplayer.toplayer_dir(tmp_path, s).rglob("*.tmp"))


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


def test_unfinished_backup_copies_and_staging_temps_are_removed(tmp_path: Path) -> None:
    from wizard.config import Settings

    s = Settings(label="x", image="i:t")
    root = toplayer.backup_root(tmp_path, s)
    half = root / "20240101T000000Z" / "etc" / ".hostname.abcd1234.tmp"
    half.parent.mkdir(parents=True)
    half.write_text("ha")
    staging = toplayer.staging_dir(toplayer.toplayer_dir(tmp_path, s))
    staging.mkdir(parents=True)
    (staging / ".shadow.zz_z1234.tmp").write_text("half a shadow")
    toplayer.apply_changes(tmp_path, s, [toplayer.FileChange("etc/hostname", None, b"h\n")])
    assert not half.exists() and not list(staging.iterdir())
