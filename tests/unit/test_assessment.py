"""Boot assessment the systemd way, as far as rEFInd allows (issue 17, point 4).

What needs no partition: the bad mark's reason and the bootloader's limit in
``status`` (the wizard's Python and the booted system's shell, busybox sh and
dash, give the same JSON and the same line), ``dockerboot-mark-good``'s
checks of a running systemd up to the point where it would mount the
partition (a stub ``systemctl``: DOCKERBOOT_SYSTEMCTL), and
``dockerboot-mark-bad`` in the top layer.  The marks themselves, on a real
loop btrfs: ``tests/integration/hook/test_hook_markbad.py``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.genhelp import image_id
from tests.unit.test_selfupdate import SETTINGS, SHELLS, auto_env, status_pair
from wizard.boot.status import ASSESSMENT, status, summary
from wizard.common.resources import assets_dir
from wizard.toplayer import selfupdate

MARK_GOOD = assets_dir() / "hook/dockerboot-mark-good"
BOOT = (f"ref=desk:1\nid={image_id('two')}\nconfigured_id={image_id('two')}\n"
        "kernel=6.1.0-31-amd64\ntries=1\ngeneration=2\n")
REASON = "boot-complete.target inactive, 1 failed unit(s): dbw-check.service"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_bad_mark_and_its_reason_in_both_status(shell: str, tmp_path: Path) -> None:
    bad = f"{image_id('x')} 2\n{REASON}\n"
    mine, py = status_pair(shell, tmp_path / "bad", BOOT, bad)
    assert mine == py, (mine, py)
    assert py["failed"] == {"id": image_id("x"), "tries": 2, "reason": REASON}
    # rEFInd counts no boots: said in both, in the same words.
    assert py["assessment"] == ASSESSMENT and ASSESSMENT["bootloader_counts"] is False
    assert "pick Previous generation in rEFInd's menu" in str(ASSESSMENT["why"])
    # Out of tries (the hook's own record, one line): no reason.
    mine, py = status_pair(shell, tmp_path / "tries", BOOT, f"{image_id('x')} 2\n")
    assert mine == py and py["failed"]["reason"] is None


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("line", ["a\x01b", "caf\u00e9", "\x7f", "", "x\ty"])
def test_a_reason_that_is_not_plain_text_is_null_in_both(shell: str, line: str,
                                                         tmp_path: Path) -> None:
    mine, py = status_pair(shell, tmp_path, BOOT, f"{image_id('x')} 2\n{line}\nmore\n")
    assert mine == py, (mine, py)
    assert py["failed"]["reason"] is None


@pytest.mark.parametrize("shell", SHELLS)
def test_the_status_text_says_why_an_image_is_not_booted(shell: str, tmp_path: Path) -> None:
    env, _ = auto_env(tmp_path, "sha256:" + "0" * 64, [])
    state = tmp_path / "top/boot_docker/state"
    state.mkdir(parents=True)
    (state / "boot").write_text(BOOT)
    for failed, said in ((f"{image_id('x')} 2\n{REASON}\n", f"marked bad ({REASON})"),
                         (f"{image_id('x')} 3\n", "tried 3 times and never marked good")):
        (state / "failed").write_text(failed)
        line = (f"image @{image_id('x')[7:19]} is not booted while configured: {said}")
        assert line in summary(status(tmp_path / "top", SETTINGS))
        script = ('docker() { return 1; }; set -- status; '
                  f'. {assets_dir() / "selfupdate/dockerboot-update"}')
        r = subprocess.run([*shell.split(), "-c", script], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert f"dockerboot-update: {line}\n" in r.stdout, r.stdout


# --- dockerboot-mark-good's checks, before it mounts anything ---

SYSTEMCTL = """#!/bin/sh
echo "$*" >>"$STUB/calls"
case $1 in
    is-active) cat "$STUB/target"; [ "$(cat "$STUB/target")" = active ] ;;
    show) cat "$STUB/nfailed" ;;
    list-units) cat "$STUB/failed" ;;
    *) exit 1 ;;
esac
"""


def mark(tmp_path: Path, shell: str, *args: str, target: str = "active", nfailed: str = "0",
         failed: str = "", cmdline: str = "root=/dev/dbw-no-such-disk") -> \
        subprocess.CompletedProcess:
    """mark-good with a stub systemctl and a boot file naming image x; the root= given
    names no device, so a run that gets as far as mounting stops there (one line)."""
    stub = tmp_path / "stub"
    stub.mkdir(exist_ok=True)
    (stub / "systemctl").write_text(SYSTEMCTL)
    (stub / "systemctl").chmod(0o755)
    (stub / "target").write_text(target + "\n")
    (stub / "nfailed").write_text(nfailed + "\n")
    (stub / "failed").write_text(failed)
    (tmp_path / "boot").write_text(f"ref=desk:1\nid={image_id('x')}\n")
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    env = {"PATH": "/usr/bin:/bin", "STUB": str(stub),
           "DOCKERBOOT_SYSTEMCTL": str(stub / "systemctl"),
           "DOCKERBOOT_BOOTFILE": str(tmp_path / "boot"),
           "DOCKERBOOT_CMDLINE_FILE": str(tmp_path / "cmdline"),
           "DOCKERBOOT_MNT": str(tmp_path / "mnt")}
    return subprocess.run([*shell.split(), str(MARK_GOOD), *args], env=env, text=True,
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("shell", SHELLS)
def test_a_failed_check_makes_the_boot_bad(shell: str, tmp_path: Path) -> None:
    """boot-complete.target not reached or a failed unit: bad, named in one line.  With
    dockerboot.tries=0 (counting off) nothing is marked; the line still says why."""
    r = mark(tmp_path, shell, target="inactive", nfailed="2",
             failed="dbw-check.service loaded failed failed Check\nx.mount loaded failed "
                    "failed X\n", cmdline="root=/dev/dbw-no-such-disk dockerboot.tries=0")
    assert r.returncode == 1 and r.stderr == "", r.stderr
    x12 = image_id("x")[7:19]
    assert r.stdout.splitlines() == [
        f"dockerboot-mark-good: image {x12} (desk:1): boot-complete.target inactive, 2 failed "
        "unit(s): dbw-check.service x.mount; dockerboot.tries=0 turns boot counting off: "
        "nothing marked bad (nor good)"]
    calls = (tmp_path / "stub/calls").read_text().splitlines()
    assert calls[:2] == ["is-active boot-complete.target", "show -p NFailedUnits --value"]
    assert not (tmp_path / "mnt").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_sound_boot_goes_on_to_mark_good(shell: str, tmp_path: Path) -> None:
    r = mark(tmp_path, shell, cmdline="root=/dev/dbw-no-such-disk dockerboot.tries=0")
    # As far as the mount: the one line of a missing partition, nothing about the checks.
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert r.stderr.startswith("dockerboot-mark-good: the root partition /dev/dbw-no-such-disk "
                               "is not there — ")
    assert "list-units" not in (tmp_path / "stub/calls").read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_mark_bad_by_hand_and_its_mistakes(shell: str, tmp_path: Path) -> None:
    r = mark(tmp_path, shell, "--bad", "too", "slow",
             cmdline="root=/dev/dbw-no-such-disk dockerboot.tries=000")
    assert r.returncode == 1 and r.stdout.splitlines() == [
        f"dockerboot-mark-bad: image {image_id('x')[7:19]} (desk:1): dockerboot-mark-bad: too "
        "slow; dockerboot.tries=0 turns boot counting off: nothing marked bad (nor good)"]
    # By hand, systemd is not asked: the user said it.
    assert not (tmp_path / "stub/calls").exists()
    r = mark(tmp_path, shell, "--good")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == ["dockerboot-mark-good: unknown argument --good — run it "
                                     "without arguments, or dockerboot-mark-bad [REASON]"]


def test_mark_bad_is_in_the_top_layer_and_linked(tmp_path: Path) -> None:
    files = selfupdate.top_files(SETTINGS)
    text, mode = files[selfupdate.MARK_BAD]
    assert mode == 0o755 and text.decode().endswith(
        'exec /usr/local/lib/dockerboot/mark-good --bad "$@"\n')
    link = files[f"{selfupdate.UNITS}/dockerboot-update-link.service"][0].decode()
    assert f"ExecStart=/bin/ln -sfn /{selfupdate.MARK_BAD} /usr/local/sbin/dockerboot-mark-bad" \
        in link
    # Without the hook's script (an image without systemd): one line, exit 1.
    (tmp_path / "mark-bad").write_bytes(text)
    for shell in SHELLS:
        r = subprocess.run([*shell.split(), str(tmp_path / "mark-bad")], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "its boots are not assessed" in r.stderr
    r = subprocess.run(["shellcheck", "-s", "sh", str(tmp_path / "mark-bad")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
