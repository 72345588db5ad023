"""Headless CLI: bad input gives one line and a non-zero exit, no traceback."""

import subprocess
import sys

import pytest

from wizard.cli import apply as cli_apply
from wizard.cli import main as cli
from wizard.cli import output
from wizard.cli.precheck import read_passwords
from wizard.common.errors import ConfigError
from wizard.settings.config import Settings


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "wizard.cli", *args], input=stdin,
                          capture_output=True, text=True)


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "apply" in capsys.readouterr().out


def test_apply_needs_label():
    r = run_cli("apply", "--image", "a:b")
    assert r.returncode == 2 and "--label" in r.stderr


def test_not_root_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli.main(["apply", "--label", "x", "--image", "a:b", "--yes"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "root" in err and "sudo" in err


def test_user_without_password_file_is_refused():
    with pytest.raises(ConfigError) as e:
        read_passwords(["alice"], [])
    assert "--password-file" in str(e.value)


def test_password_file_read_first_line_only(tmp_path):
    f = tmp_path / "pw"
    f.write_text("s3cret pass\nignored\n")
    assert read_passwords(["alice"], [str(f)]) == {"alice": "s3cret pass"}


def test_empty_or_missing_password_file(tmp_path):
    f = tmp_path / "pw"
    f.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_passwords(["alice"], [str(f)])
    with pytest.raises(ConfigError, match="cannot read"):
        read_passwords(["alice"], [str(tmp_path / "nope")])


def test_settings_need_image_without_saved_config():
    args = cli.build_parser().parse_args(["apply", "--label", "x"])
    with pytest.raises(ConfigError, match="--image"):
        cli_apply.settings_from_args(args, None)


def test_settings_merge_over_saved():
    saved = Settings(label="x", image="old:1", hostname="keep", users=("alice",))
    args = cli.build_parser().parse_args(["apply", "--label", "x", "--image", "new:2"])
    merged = cli_apply.settings_from_args(args, saved)
    assert merged.image == "new:2" and merged.hostname == "keep" and merged.users == ("alice",)


def test_confirm_refuses_without_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConfigError, match="--yes"):
        output.confirm("Apply?")


def _sandbox_args(*argv: str):
    import argparse

    from wizard.cli.sandbox import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["sandbox", *argv])


@pytest.mark.parametrize(("answer", "boots"), [("", True), ("y", True), ("YES\n", True),
                                               ("n", False), ("no", False), ("later", False)])
def test_sandbox_asks_before_booting_in_a_terminal(answer, boots):
    from wizard.cli.sandbox import wants_boot

    asked = []
    assert wants_boot(_sandbox_args(), lambda q: asked.append(q) or answer) is boots
    assert asked and "QEMU" in asked[0] and "[Y/n]" in asked[0]


def test_sandbox_boot_flag_never_asks_and_no_terminal_never_boots():
    from wizard.cli.sandbox import wants_boot

    def refuse(_question):
        raise AssertionError("asked although --boot was given")

    assert wants_boot(_sandbox_args("--boot"), refuse) is True
    assert wants_boot(_sandbox_args(), None) is False


def test_sandbox_boot_question_closed_stdin_means_no():
    from wizard.cli.sandbox import wants_boot

    def eof(_question):
        raise EOFError

    assert wants_boot(_sandbox_args(), eof) is False


def test_cli_toplayer_only_refuses_boot_options():
    parser = cli.build_parser()
    ok = parser.parse_args(["apply", "--label", "x", "--toplayer-only", "--hostname", "h"])
    assert ok.toplayer_only
    cli_apply.check_toplayer_only(ok)
    bad = parser.parse_args(["apply", "--label", "x", "--toplayer-only", "--image", "a:b",
                             "--kernel-options", "quiet"])
    with pytest.raises(ConfigError) as e:
        cli_apply.check_toplayer_only(bad)
    assert "--image, --kernel-options" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("argv", "saved", "want"), [
    ([], True, True), ([], False, False),
    (["--no-keep-previous-root"], True, False), (["--keep-previous-root"], False, True),
])
def test_keep_previous_root_flag_merges_over_saved(argv, saved, want):
    base = Settings(label="x", image="a:b", keep_previous_root=saved)
    args = cli.build_parser().parse_args(["apply", "--label", "x", *argv])
    assert cli_apply.settings_from_args(args, base).keep_previous_root is want


def test_toplayer_only_refuses_keep_previous_root():
    # It changes the boot entry, which --toplayer-only does not write.
    args = cli.build_parser().parse_args(["apply", "--label", "x", "--toplayer-only",
                                          "--no-keep-previous-root"])
    with pytest.raises(ConfigError, match="keep-previous-root"):
        cli_apply.check_toplayer_only(args)


# --- the user's own default_selection: apply asks, or refuses in one line naming the flag ---

def _plan(conf: str, choice: str = ""):
    from types import SimpleNamespace
    return SimpleNamespace(refind_old=conf.encode(), chain=None,
                           settings=Settings(label="lab", image="a:b", default_entry=choice))


def test_a_distributions_grub_asks_for_its_default_too(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from wizard.loaders import esp_plan
    custom = esp_plan.CustomWrite(tmp_path / "custom.cfg", None, b"x", "debian")
    plan = SimpleNamespace(refind_old=None, chain=esp_plan.ChainPlan(tmp_path, [], [], "", custom),
                           settings=Settings(label="lab", image="a:b"))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConfigError) as e:
        cli_apply._ask_default_entry(plan, True)
    assert "debian's GRUB has its own default entry" in e.value.problem
    assert "--default-entry yes" in e.value.fix and "\n" not in str(e.value)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(cli_apply, "confirm", lambda question: "debian's GRUB" in question)
    assert cli_apply._ask_default_entry(plan, False) == "yes"
    plan.settings = Settings(label="lab", image="a:b", default_entry="no")
    assert cli_apply._ask_default_entry(plan, False) == ""


def test_own_default_selection_without_the_flag_refuses_in_one_line(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    for yes in (True, False):
        with pytest.raises(ConfigError) as e:
            cli_apply._ask_default_entry(_plan("timeout 5\ndefault_selection Windows\n"), yes)
        line = str(e.value)
        assert "\n" not in line and "--default-entry yes" in line and "--default-entry no" in line
        assert "line 2: default_selection Windows" in line


def test_no_question_without_an_own_setting_or_with_an_answer(monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli_apply._ask_default_entry(_plan("timeout 5\n#default_selection 1\n"), True) == ""
    assert cli_apply._ask_default_entry(_plan("default_selection 1\n", "no"), True) == ""


@pytest.mark.parametrize(("answer", "want"), [("y", "yes"), ("", "no")])
def test_own_default_selection_is_asked_on_a_terminal(monkeypatch, capsys, answer, want):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    assert cli_apply._ask_default_entry(_plan("default_selection 1\n"), False) == want
    assert "line 1: default_selection 1" in capsys.readouterr().out


def test_default_entry_flag_merges_over_saved_and_is_saved():
    saved = Settings(label="lab", image="a:b", default_entry="no")
    args = cli.build_parser().parse_args(["apply", "--label", "lab"])
    assert cli_apply.settings_from_args(args, saved).default_entry == "no"
    args = cli.build_parser().parse_args(["apply", "--label", "lab", "--default-entry", "yes"])
    assert cli_apply.settings_from_args(args, saved).default_entry == "yes"
