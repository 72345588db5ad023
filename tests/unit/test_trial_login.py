"""``try --user/--password-file``: the headless try logs in and reports systemd's failed units.

A fake VM prints a boot and then runs a fake getty on its pty (no QEMU):
a login prompt, a password prompt that does not echo, "Login incorrect"
for a wrong password, and a real ``sh -i`` after the right one, with a fake
``systemctl`` on its PATH.  The password must never show up in what the try
prints, returns or leaves in its serial log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.genhelp import make_gen
from wizard.boot import generations
from wizard.cli import main as cli
from wizard.common.events import drive
from wizard.settings.config import Settings
from wizard.trial import guest, plan, run

SETTINGS = Settings(label="dbw-lab", image="desktop:latest", kernel_options="console=ttyS0")
PASSWORD = "pw of alice 7#x"

# The guest: hook lines and a systemd unit line, then getty; after a right
# password an interactive shell whose PATH starts with the fake systemctl.
FAKE_VM = r"""
stty -echo
printf 'dockerboot: docker_rwlayer is now a fresh snapshot of desktop:latest\r\n'
printf '[  OK  ] Started serial-getty@ttyS0.service.\r\n\r\n'
printf 'Debian GNU/Linux 12 trybox ttyS0\r\n\r\n'
while :; do
  printf 'trybox login: '
  read -r user
  [ -n "$user" ] || continue
  printf 'Password: '
  read -r pw
  if [ "$user" = alice ] && [ "$pw" = "$PW" ]; then
    echo 'Last login: never'
    stty echo
    PATH="$FAKEBIN:$PATH" sh -i
    stty -echo
  else
    sleep 0.2; echo; echo 'Login incorrect'
  fi
done
"""


def fake_systemctl(bin_dir: Path, failed: str) -> None:
    bin_dir.mkdir()
    tool = bin_dir / "systemctl"
    tool.write_text("#!/bin/sh\n"
                    'case "$1" in\n'
                    f"  is-system-running) echo {'degraded' if failed else 'running'} ;;\n"
                    f"  --failed) printf '{failed}' ;;\n"
                    "esac\n")
    tool.chmod(0o755)


def prepared_vm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failed: str = "",
                password: str = PASSWORD) -> run.Prepared:
    make_gen(tmp_path / "boot_docker", 1, "img1")
    target = plan.choose(SETTINGS, generations.load(tmp_path / "boot_docker"), None)
    prepared = run.Prepared(tmp_path, target, plan.Machine(2048, 1, "tcg", "asked for"),
                            "none", "dbw-lab", ("desktop:latest",), 0, keep=True)
    fake_systemctl(tmp_path / "fakebin", failed)
    monkeypatch.setattr(prepared, "command", lambda: [
        "env", f"PW={password}", f"FAKEBIN={tmp_path / 'fakebin'}", "sh", "-c", FAKE_VM])
    return prepared


def no_password_in(result: run.Result, events: list[str]) -> None:
    text = json.dumps(result.to_json()) + "\n".join(events) + repr(result)
    assert PASSWORD not in text
    assert PASSWORD not in result.prepared.log.read_text(errors="replace")


def test_the_login_reports_no_failed_unit_and_the_try_is_ok(tmp_path, monkeypatch):
    prepared = prepared_vm(tmp_path, monkeypatch)
    events: list[str] = []
    result = drive(run.watch(prepared, timeout=60, login=guest.Credentials("alice", PASSWORD)),
                   lambda e: events.append(str(getattr(e, "text", e))))
    out = result.to_json()
    assert out["ok"] and out["reason"] == "", out
    assert (out["user"], out["logged_in"], out["system_state"], out["failed_units"]) == \
        ("alice", True, "running", [])
    assert out["login_line"] == "trybox login:"
    assert out["console_tail"][-1] == "trybox login:"  # the boot's, not the session's text
    assert any("logged in as alice: systemd running, no failed unit" in e for e in events)
    no_password_in(result, events)


def test_failed_units_are_listed_and_make_the_try_not_ok(tmp_path, monkeypatch):
    failed = ("mnt-data.mount loaded failed failed /mnt/data\\n"
              "[  OK  ] Reached target noise.\\n"
              "dbw-x@1.service loaded failed failed X\\n"
              "dockerboot-update.service loaded failed failed dockerboot: update\\n")
    prepared = prepared_vm(tmp_path, monkeypatch, failed)
    result = drive(run.watch(prepared, timeout=60, login=guest.Credentials("alice", PASSWORD)))
    out = result.to_json()
    assert out["failed_units"] == ["mnt-data.mount", "dbw-x@1.service",
                                   "dockerboot-update.service"], out
    # The hook's lines are the boot's, not a unit description the session printed.
    assert out["hook_lines"] == ["dockerboot: docker_rwlayer is now a fresh snapshot of "
                                 "desktop:latest"]
    assert out["system_state"] == "degraded" and out["logged_in"]
    assert not out["ok"] and out["reason"] == ("failed units: mnt-data.mount, dbw-x@1.service, "
                                               "dockerboot-update.service")


def test_a_wrong_password_is_one_line_not_an_exception(tmp_path, monkeypatch):
    prepared = prepared_vm(tmp_path, monkeypatch)
    events: list[str] = []
    result = drive(run.watch(prepared, timeout=60,
                             login=guest.Credentials("alice", "not the " + PASSWORD)),
                   lambda e: events.append(str(getattr(e, "text", e))))
    out = result.to_json()
    assert result.login_prompt and not out["ok"] and not out["logged_in"]
    assert out["failed_units"] is None
    assert out["reason"] == "no shell as alice: the guest refused the login of 'alice'", out
    assert "\n" not in out["reason"]
    assert "not the " + PASSWORD not in json.dumps(out) + "\n".join(events)


def test_a_password_the_guest_echoes_is_blanked(tmp_path, monkeypatch):
    """A guest that shows the password (a broken getty) leaves no trace of it."""
    prepared = prepared_vm(tmp_path, monkeypatch)
    monkeypatch.setattr(prepared, "command", lambda: [
        "sh", "-c", "printf 'box login: '; read u; printf 'Password: '; read p; "
                    "echo \"you typed $p\"; echo 'Login incorrect'; sleep 30"])
    result = drive(run.watch(prepared, timeout=30, login=guest.Credentials("alice", PASSWORD)))
    assert not result.ok
    assert f"you typed {guest.HIDDEN}" in prepared.log.read_text()
    no_password_in(result, [])
    assert PASSWORD not in repr(guest.Credentials("alice", PASSWORD))


def test_the_human_summary_says_the_login_and_the_failed_units(tmp_path, monkeypatch):
    prepared = prepared_vm(tmp_path, monkeypatch, "a.service loaded failed failed A\\n")
    result = drive(run.watch(prepared, timeout=60, login=guest.Credentials("alice", PASSWORD)))
    from wizard.cli.trial import _summary

    lines = _summary(result)
    assert "  login: logged in as alice: systemd degraded, failed units: a.service" in lines
    assert lines[-1] == "try: NOT OK — failed units: a.service"


@pytest.mark.parametrize(("extra", "words"), [
    (["--user", "alice", "--password-file", "{missing}"],
     "cannot read password file {missing}: No such file or directory"),
    (["--user", "alice", "--password-file", "{dir}"], "is a directory"),
    (["--user", "alice", "--password-file", "{empty}"], "the password for alice is empty"),
    (["--user", "alice"], "--user and --password-file go together"),
    (["--password-file", "{empty}"], "--user and --password-file go together"),
    (["--user", "Bad User", "--password-file", "{empty}"], "invalid user name"),
    (["--console", "--user", "alice", "--password-file", "{pw}"], "for the headless try"),
])
def test_a_bad_login_input_is_one_line_and_nothing_boots(
        tmp_path, monkeypatch, capsys, extra: list[str], words: str):
    def nothing_may_start(*_a, **_k):
        raise AssertionError("the try started")

    monkeypatch.setattr(run, "prepare", nothing_may_start)
    monkeypatch.setattr(run, "run", nothing_may_start)
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    names = {"{missing}": str(tmp_path / "missing"), "{dir}": str(tmp_path),
             "{empty}": str(tmp_path / "empty"), "{pw}": str(tmp_path / "pw")}

    def fill(text: str) -> str:
        for key, value in names.items():
            text = text.replace(key, value)
        return text

    code = cli.main(["try", "--label", "dbw-lab", "--headless" if "--console" not in extra
                     else "--timeout=1", *[fill(a) for a in extra]])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    assert fill(words) in err and "Traceback" not in err and PASSWORD not in err
