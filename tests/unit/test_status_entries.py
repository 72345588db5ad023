"""``status`` tells what the bootloader will really boot (issue 17, point 5).

(a) A kill between "the new generation appears" and "refind.conf names it":
the default entry still boots the generation before; status reads the
wizard's block in refind.conf and reports the unnamed newest generation as
pending (the next update names it), never as the default and up to date.
(b) The in-system "nothing to deploy" path (the tag moved, same kernel and
inputs, no generation written): the default entry boots the tag, so the new
image boots at the next boot with the current generation: no update is
pending.  The wizard's Python and the booted system's shell (busybox sh and
dash) say the same, and their JSON is equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.genhelp import make_gen
from tests.unit.test_rollback_hold import IMAGE, SHELLS, V2, V3, Lab, short
from wizard.boot import generations
from wizard.boot.status import summary


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)       # generations 1 (v1) and 2 (v2), the entries naming 2 and 1


def same_json(lab: Lab, shell: str) -> dict:
    py = lab.py_status()
    r = lab.shell(shell, "status", "--json")
    assert r.returncode == 0, r.stderr
    mine = json.loads(r.stdout)
    assert bool(mine["problems"]) == bool(py["problems"]), (mine, py)
    # The same things are problems (each tool words its own lines).
    assert {**mine, "problems": []} == {**py, "problems": []}
    return py


@pytest.mark.parametrize("shell", SHELLS)
def test_the_entries_are_read(lab: Lab, shell: str) -> None:
    out = same_json(lab, shell)
    assert out["entries"] == {"default": 2, "previous": 1}
    assert out["pending"]["update"] is False and out["pending"]["unnamed"] is None


@pytest.mark.parametrize("shell", SHELLS)
def test_an_unnamed_newest_generation_is_pending_not_the_default(lab: Lab, shell: str) -> None:
    make_gen(lab.boot, 3, "v3", ref=IMAGE)     # appeared; refind.conf was never written
    lab.tag(V3)
    out = same_json(lab, shell)
    assert out["generation"]["number"] == 3 and out["entries"] == {"default": 2, "previous": 1}
    assert out["pending"]["unnamed"] == 3 and out["pending"]["update"] is True
    assert any("not named by the boot entries" in r for r in out["pending"]["reasons"])
    text = summary(out)
    assert f"default entry: generation 2, kernel 6.1.0-31-amd64, image @{short(V2)}" in text
    assert "up to date" not in "\n".join(text)
    assert any(line.startswith("update pending: generation 3 is not named") for line in text)
    r = lab.shell(shell, "status")
    assert r.returncode == 0, r.stderr
    assert "default entry: generation 2," in r.stdout and "up to date" not in r.stdout
    assert "generation 3 is not named by the boot entries" in r.stdout, r.stdout
    assert "run: dockerboot-update" in r.stdout
    # The next update names it; then status agrees.
    r = lab.shell(shell)
    assert r.returncode == 0 and "do not name generation 3 yet" in r.stdout, r.stdout + r.stderr
    out = same_json(lab, shell)
    assert out["entries"] == {"default": 3, "previous": 2} and out["pending"]["update"] is False


@pytest.mark.parametrize("shell", SHELLS)
def test_nothing_to_deploy_is_not_pending_for_ever(lab: Lab, shell: str) -> None:
    lab.tag(V3)                                 # same kernel and inputs as generation 2
    r = lab.shell(shell, "--auto")
    assert r.returncode == 0 and "nothing to deploy" in r.stdout, r.stdout + r.stderr
    assert [g.number for g in generations.load(lab.boot).generations] == [1, 2]
    out = same_json(lab, shell)
    pending = out["pending"]
    assert pending["image_changed"] is True and pending["build_needed"] is False
    assert pending["update"] is False
    assert pending["reasons"][-1] == (f"the next boot snapshots @{short(V3)} with generation 2: "
                                      "no update needed")
    text = "\n".join(summary(out))
    assert "run: dockerboot-wizard update" not in text and "up to date" in text
    assert "no update needed" in text
    r = lab.shell(shell, "status")
    assert r.returncode == 0, r.stderr
    assert "run" not in r.stdout.replace("dockerboot-update:", "") and "up to date" in r.stdout
    assert f"the next boot snapshots @{short(V3)} with generation 2" in r.stdout, r.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_malformed_or_missing_entries_are_not_guessed(lab: Lab, shell: str) -> None:
    text = lab.conf.read_text()
    lab.conf.write_text(text + text.split("timeout 5\n")[1])          # two blocks
    out = same_json(lab, shell)
    assert out["entries"] is None and out["pending"]["unnamed"] is None
    lab.conf.write_text("timeout 5\n")                               # no block
    out = same_json(lab, shell)
    assert out["entries"] is None
