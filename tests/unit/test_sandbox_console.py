"""The serial-console driver against a fake getty on a pty (no QEMU): login, run, errors.

The fake prints what a booted Debian prints on its serial line: a login
prompt, a password prompt, kernel log lines in between, "Login incorrect"
for a wrong password, and a real ``sh -i`` after a right one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.common.errors import SandboxError, WizardError
from wizard.sandbox.console import Console, SerialTimeout

FAKE_GETTY = r"""
stty -echo
echo '[    3.141593] random: crng init done'
while :; do
  printf 'fakebox login: '
  read -r user
  [ -n "$user" ] || continue
  # LOSE_FIRST: the first name typed is lost in boot noise; getty waits for a newline.
  [ -n "${LOSE_FIRST:-}" ] && { LOSE_FIRST=; read -r _; continue; }
  printf 'Password: '
  read -r pw
  if [ "$user" = alice ] && [ "$pw" = "s3cret pw" ]; then
    echo 'Last login: never'
    stty echo
    sh -i
    stty -echo
  else
    sleep 0.2; echo; echo 'Login incorrect'
  fi
done
"""


@pytest.fixture
def console(tmp_path: Path):
    c = Console.spawn(["sh", "-c", FAKE_GETTY], tmp_path / "console.log", timeout=60)
    try:
        yield c
    finally:
        c.close()


def test_login_then_commands_with_status_and_output(console: Console) -> None:
    console.login("alice", "s3cret pw", timeout=20)
    assert console.run("echo alice") == (0, "alice")
    assert console.run("false")[0] == 1
    # Several lines, stderr too, a status from a function; kernel lines are dropped.
    status, out = console.run("printf 'a\\nb\\n'; echo err >&2; "
                              "echo '[   32.803433] Initializing XFRM netlink socket'; "
                              "f() { return 3; }; f")
    assert (status, out) == (3, "a\nb\nerr")
    console.logout()
    assert "fakebox login:" in console.log.read_text()
    assert "s3cret" not in console.log.read_text()  # typed, never printed


def test_wrong_password_is_one_line_error(console: Console) -> None:
    with pytest.raises(SandboxError) as err:
        console.login("alice", "wrong", timeout=20)
    assert "refused the login of 'alice'" in str(err.value)
    assert "\n" not in str(err.value)


def test_timeout_names_what_and_shows_the_console(console: Console) -> None:
    with pytest.raises(SerialTimeout) as err:
        console.expect("never printed", timeout=1, what="the moon")
    assert isinstance(err.value, AssertionError) and isinstance(err.value, WizardError)
    assert "no the moon on the serial console within 1s" in err.value.problem
    assert "fakebox login:" in str(err.value)  # the console's tail
    assert str(console.log) in str(err.value)


def test_login_nudges_getty_when_no_password_prompt_comes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("wizard.sandbox.console.NUDGE", 1.0)
    c = Console.spawn(["env", "LOSE_FIRST=1", "sh", "-c", FAKE_GETTY], tmp_path / "log",
                      timeout=30)
    try:
        c.login("alice", "s3cret pw", timeout=20)
        assert c.run("echo ok") == (0, "ok")
        assert c.log.read_text().count("fakebox login:") == 2
    finally:
        c.close()


def test_qemu_exit_is_reported(tmp_path: Path) -> None:
    c = Console.spawn(["sh", "-c", "echo bye"], tmp_path / "log", timeout=10)
    try:
        with pytest.raises(SerialTimeout, match="QEMU exited while waiting for login prompt"):
            c.login("alice", "pw")
        assert c.wait_exit(5) == 0
    finally:
        c.close()


def test_headless_demo_without_login_prompt_fails_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io

    from wizard.cli import sandbox as cli

    class Box:  # a sandbox whose "VM" prints firmware noise and powers off
        @contextlib.contextmanager
        def console(self, **_kw):
            c = Console.spawn(["sh", "-c", "echo BdsDxe: loading"], tmp_path / "log", timeout=10)
            try:
                yield c
            finally:
                c.close()

    monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal: the demo logs in itself
    with pytest.raises(SandboxError) as err:
        cli._console(Box(), ("alice",), lambda _line: None)
    assert not isinstance(err.value, SerialTimeout)
    assert "\n" not in str(err.value)
    assert "no shell on the sandbox's serial console" in str(err.value)
    assert str(tmp_path / "log") in str(err.value)
