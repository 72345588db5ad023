"""Passwords are read exactly and without echo; every name is checked before any mount."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from wizard.cli import main as cli
from wizard.cli.precheck import first_line, read_password_file, read_passwords
from wizard.common.errors import WizardError
from wizard.flows import apply as apply_mod


@pytest.mark.parametrize("char", ["\v", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                                  "\u2029", ":", "é", " "])
def test_only_newline_ends_the_password(tmp_path: Path, char: str) -> None:
    f = tmp_path / "pw"
    f.write_bytes(f"ab{char}cd\nsecond line\n".encode())
    assert read_passwords(["alice"], [str(f)]) == {"alice": f"ab{char}cd"}


def test_one_trailing_cr_is_dropped(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"s3cret\r\nnext\r\n")
    assert read_passwords(["alice"], [str(f)]) == {"alice": "s3cret"}


def test_a_cr_inside_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"s3c\r\r\n")
    with pytest.raises(WizardError, match="line break") as e:
        read_passwords(["alice"], [str(f)])
    assert "\n" not in str(e.value) and "s3c" not in str(e.value)


def test_no_final_newline_is_fine() -> None:
    assert first_line(b"pw", "x") == "pw"


@pytest.mark.parametrize("data", [b"", b"\n", b"\r\n", b"\nsecond\n"])
def test_empty_first_line_is_refused(tmp_path: Path, data: bytes) -> None:
    f = tmp_path / "pw"
    f.write_bytes(data)
    with pytest.raises(WizardError, match="empty"):
        read_passwords(["alice"], [str(f)])


def test_not_utf8_is_one_line(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"caf\xe9\n")
    with pytest.raises(WizardError) as e:
        read_passwords(["alice"], [str(f)])
    assert "not UTF-8" in str(e.value) and "\n" not in str(e.value)
    assert "caf" not in str(e.value)  # no part of the secret in the message


def test_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WizardError, match="is a directory"):
        read_passwords(["alice"], [str(tmp_path)])


def test_missing_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WizardError, match="cannot read password file .*No such file"):
        read_passwords(["alice"], [str(tmp_path / "nope")])


def test_unreadable_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "pw"
    f.write_text("x\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, os.strerror(13), str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(WizardError, match="Permission denied"):
        read_passwords(["alice"], [str(f)])


def test_stdin_pipe_reads_the_exact_first_line() -> None:
    stdin = io.BytesIO("a\vb\x85c\r\nrest\n".encode())
    assert read_passwords(["alice"], ["-"], stdin=stdin) == {"alice": "a\vb\x85c"}


def test_stdin_terminal_asks_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked = []
    monkeypatch.setattr("sys.stdin", Tty(""))
    got = read_password_file("-", "alice", ask=lambda prompt: asked.append(prompt) or "typed")
    assert got == "typed" and "alice" in asked[0] and "not shown" in asked[0]


def test_default_terminal_reader_is_getpass() -> None:
    import getpass
    import inspect

    assert inspect.signature(read_password_file).parameters["ask"].default is getpass.getpass


def test_user_twice_and_bad_user_name(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("x\n")
    with pytest.raises(WizardError, match="given twice"):
        read_passwords(["alice", "alice"], [str(f), str(f)])
    with pytest.raises(WizardError, match="invalid user name"):
        read_passwords(["Bad User"], [str(f)])


# --- everything is checked before the daemon or a mount ---

BAD_ARGS = [
    (["--hostname", "bad_host!"], "invalid hostname"),
    (["--hostname=-x"], "invalid hostname"),
    (["--user", "Root!", "--password-file", "/dev/null"], "invalid user name"),
    (["--admin", "Bob"], "invalid administrator name"),
    (["--image", "UPPER:case"], "invalid image reference"),
    (["--image", "debian:"], "empty tag"),
    (["--kernel-options", "rootflags=subvol=docker"], "rootflags=subvol="),
    (["--kernel-options", 'quiet "x'], "cannot carry"),
    (["--label", "my disk"], "invalid partition label"),
    (["--label", 'a"b'], "invalid partition label"),
    (["--esp", "/nonexistent-esp"], "--esp /nonexistent-esp is not a directory"),
    (["--refind-conf", "/"], "is a directory"),
    (["--refind-conf", "/nonexistent/refind.conf"], "does not exist"),
    (["--default-entry", "maybe"], "invalid default entry choice 'maybe'"),
]


@pytest.mark.parametrize(("extra", "words"), BAD_ARGS)
def test_bad_input_is_refused_before_the_daemon_and_the_mount(
        extra: list[str], words: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")

    def no_session(*a: object, **k: object) -> None:
        raise AssertionError("open_session was called")

    monkeypatch.setattr(apply_mod, "open_session", no_session)
    args = ["apply", "--label", "lab", "--image", "debian:12", *extra, "--yes"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
