"""Top layer, pure parts: hostnames, file changes, backups, diffs, user input, tar helpers."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from wizard import users
from wizard.config import Settings
from wizard.diffs import redact_shadow, unified_diff
from wizard.errors import ToplayerError
from wizard.toplayer import (
    FileChange,
    FileInfo,
    apply_change,
    apply_changes,
    backup_root,
    diff_text,
    ensure_toplayer,
    plan_hostname,
    validate_hostname,
)
from wizard.users import read_account_files, validate_user

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


def test_diff_only_redacted_change_still_reported() -> None:
    old = b"alice:$6$a$b:1::::::\n"
    diff = unified_diff(old, b"alice:$6$a$c:1::::::\n", "etc/shadow", secret=True)
    assert "$6$" not in diff and "alice:<new hash redacted>" in diff
    assert unified_diff(old, old, "etc/shadow", secret=True) == ""


def test_redact_gshadow_and_hash_as_last_field() -> None:
    text = "sudo:*::alice\nadm:$6$x$y::\nweird:$6$x$z\n"
    assert redact_shadow(text) == ("sudo:*::alice\nadm:<hash redacted>::\n"
                                   "weird:<hash redacted>\n")


def test_diff_binary_and_missing_newline() -> None:
    assert unified_diff(b"a\0b", b"c", "bin/x") == "Binary file bin/x differs (3 -> 1 bytes)\n"
    assert "\\ No newline at end of file" in unified_diff(b"a\n", b"a\nb", "f")


@pytest.mark.parametrize("name, pw, match", [
    ("Alice", "pw", "invalid user name"),
    ("1alice", "pw", "invalid user name"),
    ("al ice", "pw", "invalid user name"),
    ("a" * 33, "pw", "invalid user name"),
    ("alice", "", "empty password"),
    ("alice", "pw\nroot:pw", "line break"),
])
def test_bad_users(name: str, pw: str, match: str) -> None:
    with pytest.raises(ToplayerError, match=match) as info:
        validate_user(name, pw)
    assert pw == "" or pw not in str(info.value)


def test_bad_user_rejected_before_any_container() -> None:
    class NoDocker:
        def __getattr__(self, name: str) -> None:
            raise AssertionError("docker must not be touched")

    with pytest.raises(ToplayerError, match="invalid user name"):
        users.create_users(NoDocker(), "img:1", [("Bad", "pw")])  # type: ignore[arg-type]


def test_tar_round_trip_keeps_metadata() -> None:
    files = {"shadow": FileInfo(SHADOW, 0o640, 0, 42), "passwd": FileInfo(b"root\n", 0o644, 0, 0)}
    data = users._tar(files)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = tf.getnames()
    assert names == ["shadow", "passwd"]
    # get_archive returns one member per call, in chunks.
    one = users._tar({"shadow": files["shadow"]})
    assert users._untar_one([one[:100], one[100:]]) == files["shadow"]


def test_read_account_files(tmp_path: Path) -> None:
    assert read_account_files(tmp_path) == {}
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/shadow").write_bytes(SHADOW)
    os.chmod(tmp_path / "etc/shadow", 0o640)
    assert read_account_files(tmp_path) == {"shadow": FileInfo(SHADOW, 0o640, 0, 0)}


def test_scrub_removes_passwords_from_log_lines() -> None:
    line = "chpasswd: (user alice) pam_chauthtok() failed for s3cret!"
    assert "s3cret!" not in users._scrub(line, ["s3cret!"])


def test_diff_of_an_absolute_path_has_git_style_headers():
    diff = unified_diff(b"a\n", b"b\n", "/boot/efi/EFI/refind/refind.conf")
    assert diff.splitlines()[:2] == ["--- a/boot/efi/EFI/refind/refind.conf",
                                     "+++ b/boot/efi/EFI/refind/refind.conf"]
