"""users: names and passwords checked before any container, account files read and tarred."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from wizard.common.errors import ToplayerError
from wizard.toplayer import users
from wizard.toplayer.files import FileInfo
from wizard.toplayer.users import read_account_files, validate_user

SHADOW = (b"root:*:19000:0:99999:7:::\n"
          b"alice:$y$j9T$saltsalt$hashhashhash:19000:0:99999:7:::\n")


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
