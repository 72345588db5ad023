"""toplayer: hostnames, file changes written with backups outside the top layer, the
backups kept bounded, the diffs shown for a change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wizard.common.errors import ToplayerError
from wizard.settings.config import Settings
from wizard.toplayer import files as toplayer
from wizard.toplayer.files import (
    FileChange,
    apply_change,
    apply_changes,
    backup_root,
    diff_text,
    ensure_toplayer,
    plan_hostname,
    validate_hostname,
)

SETTINGS = Settings(label="x", image="img:1")
SHADOW = (b"root:*:19000:0:99999:7:::\n"
          b"alice:$y$j9T$saltsalt$hashhashhash:19000:0:99999:7:::\n")


@pytest.mark.parametrize("name", ["desk", "desk-01", "a", "x" * 63, "host.example.org",
                                  "1host", "A1-b2"])
def test_valid_hostnames(name: str) -> None:
    assert validate_hostname(name) == name


@pytest.mark.parametrize("name", ["", "-desk", "desk-", "x" * 64, "a..b", "a_b", "dé",
                                  "a b", ".a", "a.", "a/b", ("a" * 63 + ".") * 4 + "a"])
def test_invalid_hostnames(name: str) -> None:
    with pytest.raises(ToplayerError, match="invalid hostname") as info:
        validate_hostname(name)
    assert "1-63" in info.value.fix


def test_plan_hostname_new_and_existing(tmp_path: Path) -> None:
    change = plan_hostname(tmp_path, "desk")
    assert change == FileChange("etc/hostname", None, b"desk\n", 0o644, 0, 0, False)
    assert change.changed
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_bytes(b"old\n")
    change = plan_hostname(tmp_path, "desk")
    assert change.old == b"old\n" and change.changed
    assert diff_text(change) == ("--- a/etc/hostname\n+++ b/etc/hostname\n"
                                 "@@ -1 +1 @@\n-old\n+desk\n")
    with pytest.raises(ToplayerError):
        plan_hostname(tmp_path, "bad_name")


def test_ensure_toplayer_mode(tmp_path: Path) -> None:
    (tmp_path / "boot_docker/toplayer").mkdir(parents=True, mode=0o777)
    os.chmod(tmp_path / "boot_docker/toplayer", 0o777)
    path = ensure_toplayer(tmp_path, SETTINGS)
    assert path == tmp_path / "boot_docker/toplayer"
    st = path.stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o700, 0, 0)


def test_apply_new_file_creates_dirs_0755(tmp_path: Path) -> None:
    old_umask = os.umask(0o077)
    try:
        top = ensure_toplayer(tmp_path, SETTINGS)
        change = FileChange("etc/ssh/sshd_config.d/x.conf", None, b"x\n", 0o600)
        assert apply_change(top, change, tmp_path / "bk") is None
    finally:
        os.umask(old_umask)
    for d in ("etc", "etc/ssh", "etc/ssh/sshd_config.d"):
        assert (top / d).stat().st_mode & 0o777 == 0o755, d
    f = top / "etc/ssh/sshd_config.d/x.conf"
    assert f.read_bytes() == b"x\n" and f.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "bk").exists()


def test_apply_replaces_with_backup_outside_toplayer(tmp_path: Path) -> None:
    top = ensure_toplayer(tmp_path, SETTINGS)
    (top / "etc").mkdir()
    (top / "etc/shadow").write_bytes(SHADOW)
    os.chmod(top / "etc/shadow", 0o640)
    os.chown(top / "etc/shadow", 0, 42)
    new = SHADOW + b"bob:$6$s$h:19000:0:99999:7:::\n"
    change = FileChange("etc/shadow", SHADOW, new, 0o640, 0, 42, secret=True)
    backups = apply_changes(tmp_path, SETTINGS, [change])
    assert len(backups) == 1
    saved = backups[0]
    root = backup_root(tmp_path, SETTINGS)
    assert root == tmp_path / "boot_docker/backups/toplayer"
    assert saved.is_relative_to(root) and saved.relative_to(root).parts[1:] == ("etc", "shadow")
    assert saved.read_bytes() == SHADOW
    assert (saved.stat().st_mode & 0o777, saved.stat().st_gid) == (0o640, 42)
    assert root.stat().st_mode & 0o777 == 0o700
    st = (top / "etc/shadow").stat()
    assert (top / "etc/shadow").read_bytes() == new
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, 42)
    # Nothing but the file itself in the top layer's etc (no .bak, no temp files).
    assert sorted(p.name for p in (top / "etc").iterdir()) == ["shadow"]
    # Applying the same change again writes nothing and makes no backup.
    assert apply_changes(tmp_path, SETTINGS, [change]) == []
    # Same relpath backed up twice within one second gets a second directory.
    newer = FileChange("etc/shadow", new, SHADOW, 0o640, 0, 42, secret=True)
    second = apply_change(top, newer, root, stamp=saved.relative_to(root).parts[0])
    assert second is not None and second != saved and second.read_bytes() == new


def test_backup_root_when_toplayer_is_boot_dir(tmp_path: Path) -> None:
    seed = Settings(label="x", image="i:1", toplayer_path="boot_docker")
    root = backup_root(tmp_path, seed)
    assert not root.is_relative_to(tmp_path / "boot_docker")


@pytest.mark.parametrize("rel", ["/etc/passwd", "../etc/passwd", "etc/../../x", ""])
def test_apply_refuses_escaping_paths(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ToplayerError, match="invalid top-layer path"):
        apply_change(tmp_path, FileChange(rel, None, b"x"), tmp_path / "bk")


def test_apply_refuses_symlinked_dir(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (top / "etc").symlink_to(outside)
    with pytest.raises(ToplayerError, match="is a symlink"):
        apply_change(top, FileChange("etc/passwd", None, b"x"), tmp_path / "bk")
    assert list(outside.iterdir()) == []


def test_diff_redacts_hashes_and_shows_changes() -> None:
    new = SHADOW.replace(b"hashhashhash", b"otherhash") + b"bob:$6$s$bobhash:1::::::\n"
    change = FileChange("etc/shadow", SHADOW, new, 0o640, 0, 42, secret=True)
    diff = diff_text(change)
    assert "hashhash" not in diff and "otherhash" not in diff and "bobhash" not in diff
    assert "-alice:<hash redacted>:19000" in diff
    assert "+alice:<new hash redacted>:19000" in diff
    assert "+bob:<hash redacted>:1::::::" in diff
    assert " root:*:19000" in diff  # locked entries carry no secret


def test_diff_against_image_when_toplayer_has_no_file() -> None:
    change = FileChange("etc/passwd", None, b"root:x:0:0::/root:/bin/sh\nalice:x:1000\n",
                        image_old=b"root:x:0:0::/root:/bin/sh\n")
    diff = diff_text(change)
    assert "image's own file" in diff and "+alice:x:1000" in diff
    assert "-root" not in diff


# --- backups ---

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


def test_unfinished_backup_copies_and_staging_temps_are_removed(tmp_path: Path) -> None:
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
