"""Every OSError, docker and requests error (and a bug) ends in one line on the CLI."""

from __future__ import annotations

import errno
import os

import docker.errors
import pytest
import requests.exceptions

from wizard.cli import main as cli
from wizard.common.errors import WizardError
from wizard.common.faults import describe, message, one_line

CASES = [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/mnt/p/boot_docker/x"),
     "No space left on device writing /mnt/p/boot_docker/x — free space"),
    (OSError(errno.EIO, os.strerror(errno.EIO)), "Input/output error — the disk reported"),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/boot/efi/x"),
     "Permission denied on /boot/efi/x — run as root"),
    (FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/mnt/gone"),
     "No such file or directory at /mnt/gone — check that the partition"),
    (OSError(errno.EROFS, os.strerror(errno.EROFS), "/esp/refind.conf"),
     "Read-only file system writing /esp/refind.conf — remount it read-write"),
    (docker.errors.APIError("500 Server Error\nfor url"), "the Docker daemon failed: 500"),
    (docker.errors.NotFound("No such container: abc"), "the Docker daemon failed"),
    (requests.exceptions.ConnectionError("Connection aborted."), "the Docker daemon failed"),
    (requests.exceptions.ReadTimeout("read timed out"), "the Docker daemon failed"),
    (RuntimeError("boom\nsecond line"), "unexpected RuntimeError: boom second line"),
]


@pytest.mark.parametrize(("exc", "words"), CASES)
def test_describe_is_one_line_problem_and_fix(exc: BaseException, words: str) -> None:
    line = message(exc)
    assert words in line and "\n" not in line and " — " in line


@pytest.mark.parametrize(("exc", "words"), CASES)
def test_cli_main_prints_one_line_and_exits_1(exc: BaseException, words: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: object) -> int:
        raise exc

    monkeypatch.setattr(cli, "cmd_images", boom)
    monkeypatch.delenv("DOCKERBOOT_WIZARD_DEBUG", raising=False)
    assert cli.main(["images"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_a_wizard_error_with_a_line_break_still_prints_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def boom(args: object) -> int:
        raise WizardError("docker said:\nno", "fix it")

    monkeypatch.setattr(cli, "cmd_images", boom)
    assert cli.main(["images"]) == 1
    assert capsys.readouterr().err == "dockerboot-wizard: docker said: no — fix it\n"


def test_wizard_errors_pass_through_describe() -> None:
    e = WizardError("p", "f")
    assert describe(e) is e and one_line("a\r\nb\n") == "a b"
