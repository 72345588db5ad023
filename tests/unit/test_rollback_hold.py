"""A rollback holds (issue 17, point 2): the automatic update never undoes it.

Generations 1 (v1) and 2 (v2), then ``rollback``: generation 3 boots v1 pinned
by ID.  Any write of the docker store starts the booted system's
``dockerboot-update --auto``; while the tag still names the image the user
turned away from, it must do nothing (and say why in one line), and
``status`` must not advise an update.  A tag moved to another image, or an
update run by hand, returns to the tag.  The wizard's Python (``plan_update``
with ``auto``, ``status``) and the shell (busybox sh and dash, against a stub
docker) give the same answers.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.genhelp import FakeClient, FakeDocker, image_id, inputs, make_gen
from wizard.boot import bootloader, generations
from wizard.boot.generation_record import GenerationError, encode, from_json
from wizard.boot.status import status, summary
from wizard.common.resources import assets_dir
from wizard.flows import update
from wizard.flows.apply import Session
from wizard.settings.config import Settings
from wizard.toplayer import selfupdate

SHELLS = ["busybox sh", "dash"]
IMAGE = "desk:1"
V1, V2, V3 = image_id("v1"), image_id("v2"), image_id("v3")
ASSETS = "a" * 64

STUB_DOCKER = r"""#!/bin/sh
echo "$*" >>"$STUB/calls"
case $1 in
    image) case $* in *.Id*) cat "$STUB/tag" ;; *) echo 0 ;; esac ;;
    run) printf 'kernel 6.1.0-31-amd64 /boot/vmlinuz\ngenerator mkinitramfs /x\nbtrfs /x\n' ;;
    *) exit 1 ;;
esac
"""


def short(i: str) -> str:
    return i.removeprefix("sha256:")[:12]


class Lab:
    """A partition with generations 1 (v1), 2 (v2) and the wizard's rollback to v1."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.top = tmp_path / "top"
        self.boot = self.top / "boot_docker"
        self.boot.mkdir(parents=True)
        self.conf = tmp_path / "esp/refind.conf"
        self.conf.parent.mkdir()
        self.settings = Settings(label="dockerboot", image=IMAGE, refind_conf=str(self.conf))
        self.store = FakeDocker()
        self.store.add_image("v1")
        self.store.add_image("v2", IMAGE)
        self.store.add_image("v3")
        make_gen(self.boot, 1, "v1", ref=IMAGE)
        make_gen(self.boot, 2, "v2", ref=IMAGE)
        inv = generations.load(self.boot)
        self.conf.write_text("timeout 5\n" + bootloader.render_entries(
            self.settings, inv.get(2), inv.get(1)))

    def session(self) -> Session:
        return Session(self.settings, None, self.top, FakeClient(self.store),  # type: ignore[arg-type]
                       self.top / "docker", top_dev=None)

    def tag(self, iid: str) -> None:
        self.store.tags[IMAGE] = iid

    def rollback(self) -> None:
        session = self.session()
        plan = update.plan_rollback(session)
        list(update.execute(session, plan))
        assert generations.load(self.boot).newest.pinned  # type: ignore[union-attr]

    def shell(self, shell: str, *args: str) -> subprocess.CompletedProcess:
        """The booted system's dockerboot-update against a stub docker whose tag is the store's."""
        stub = self.tmp / "stub"
        (stub / "bin").mkdir(parents=True, exist_ok=True)
        (stub / "bin/docker").write_text(STUB_DOCKER)
        (stub / "bin/docker").chmod(0o755)
        (stub / "tag").write_text(self.store.tags[IMAGE] + "\n")
        lib = self.tmp / "lib"
        (lib / "assets/selfupdate").mkdir(parents=True, exist_ok=True)
        for part in (*selfupdate.PARTS, "assets/selfupdate/probe-image.sh"):
            (lib / part).write_bytes((assets_dir() / "selfupdate" / part.split("/")[-1])
                                     .read_bytes())
        conf = "".join(line + "\n" for line in selfupdate.render_conf(self.settings).decode()
                       .splitlines() if not line.startswith("assets_initramfs_tools="))
        (self.tmp / "update.conf").write_text(conf + f"assets_initramfs_tools={ASSETS}\n")
        (self.tmp / "cmdline").write_text("quiet\n")
        env = {"PATH": f"{stub}/bin:/usr/bin:/bin", "STUB": str(stub),
               "DOCKERBOOT_UPDATE_CONF": str(self.tmp / "update.conf"),
               "DOCKERBOOT_UPDATE_LIB": str(lib), "DOCKERBOOT_TOP": str(self.top),
               "DOCKERBOOT_REFIND_CONF": str(self.conf),
               "DOCKERBOOT_CMDLINE": str(self.tmp / "cmdline")}
        # docker as a function: the command sets its own PATH.
        script = ('docker() { "$STUB/bin/docker" "$@"; }; '
                  f'set -- {" ".join(args)}; . {assets_dir() / "selfupdate/dockerboot-update"}')
        return subprocess.run([*shell.split(), "-c", script], capture_output=True, text=True,
                              env=env, timeout=60)

    def py_status(self) -> dict[str, Any]:
        tag = self.store.tags[IMAGE]
        out = status(self.top, self.settings, tag_id=tag, tag_inputs=inputs(),
                     cmdline="quiet\n", refind_conf=self.conf)
        return json.loads(json.dumps(out))


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    # No real store: the tag "has a root", and a probe of any image finds generation 1's inputs.
    monkeypatch.setattr(update.images, "resolve_subvolume", lambda *a: None)
    target = update.initramfs.BuildTarget("initramfs-tools", "6.1.0-31-amd64", "/boot/vmlinuz")
    monkeypatch.setattr(update.initramfs, "detect", lambda client, image: target)
    monkeypatch.setattr(update, "fingerprint", lambda *a: inputs())
    lab = Lab(tmp_path)
    lab.rollback()
    return lab


def test_rollback_records_what_it_turned_away_from(lab: Lab) -> None:
    inv = generations.load(lab.boot)
    new = inv.newest
    assert new is not None and new.number == 3 and new.pinned and new.image_id == V1
    assert new.rolled_back_from == (V2,)
    rb = lab.py_status()["rollback"]
    assert rb == {"generation": 3, "image_id": V1, "since": new.created, "from": [V2],
                  "holds": True}


def test_the_automatic_update_leaves_a_holding_rollback_alone(lab: Lab) -> None:
    plan = update.plan_update(lab.session(), auto=True)
    assert plan.new is None and plan.refind_conf is None
    assert "moved" not in plan.text.split(":")[0]
    [line] = [ln for ln in plan.text.splitlines() if "rollback" in ln]
    assert "does nothing" in line and f"@{short(V2)}" in line and f"@{short(V1)}" in line


@pytest.mark.parametrize("shell", SHELLS)
def test_the_shells_automatic_update_leaves_a_holding_rollback_alone(lab: Lab,
                                                                     shell: str) -> None:
    before = lab.conf.read_bytes()
    r = lab.shell(shell, "--auto")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{IMAGE} moved" not in r.stdout, r.stdout        # the untrue line of the issue
    assert len(r.stdout.splitlines()) == 1, r.stdout               # one line: why nothing is done
    [line] = r.stdout.splitlines()
    assert "rollback" in line and "does nothing" in line and f"@{short(V2)}" in line, line
    assert [g.number for g in generations.load(lab.boot).generations] == [2, 3]
    assert lab.conf.read_bytes() == before
    # The same line as the wizard's automatic update.
    assert line.removeprefix("dockerboot-update: ") == update.plan_update(
        lab.session(), auto=True).reasons[0]


@pytest.mark.parametrize("shell", SHELLS)
def test_an_update_by_hand_returns_to_the_tag(lab: Lab, shell: str) -> None:
    plan = update.plan_update(lab.session())
    assert plan.new is not None and not plan.new.record.pinned
    assert plan.new.record.image_id == V2 and f"{IMAGE} moved" not in plan.text
    r = lab.shell(shell)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{IMAGE} moved" not in r.stdout and "is a rollback to @" in r.stdout, r.stdout
    new = generations.load(lab.boot).newest
    assert new is not None and new.number == 4 and not new.pinned and new.image_id == V2


@pytest.mark.parametrize("shell", SHELLS)
def test_a_tag_moved_to_another_image_ends_the_hold(lab: Lab, shell: str) -> None:
    lab.tag(V3)
    plan = update.plan_update(lab.session(), auto=True)
    assert plan.new is not None and plan.new.record.image_id == V3
    out = lab.py_status()
    assert out["rollback"]["holds"] is False and out["pending"]["update"] is True
    r = lab.shell(shell, "--auto")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "moved since the rollback" in r.stdout, r.stdout
    new = generations.load(lab.boot).newest
    assert new is not None and new.number == 4 and not new.pinned and new.image_id == V3
    assert "loader boot_docker/gen/4/vmlinuz" in lab.conf.read_text()
    assert "rolled back" not in lab.conf.read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_status_does_not_advise_an_update_while_the_rollback_holds(lab: Lab,
                                                                   shell: str) -> None:
    out = lab.py_status()
    assert out["pending"]["update"] is False
    text = "\n".join(summary(out))
    assert "run: dockerboot-wizard update" not in text
    assert "rollback" in text and "holds" in text and f"@{short(V2)}" in text
    assert out["rollback"]["since"] in text
    r = lab.shell(shell, "status", "--json")
    assert r.returncode == 0, r.stderr
    mine = json.loads(r.stdout)
    assert mine["rollback"] == out["rollback"] and mine["pending"] == out["pending"]
    mine.pop("problems"), out.pop("problems")
    assert mine == out
    r = lab.shell(shell, "status")
    assert r.returncode == 0, r.stderr
    assert "run dockerboot-update" not in r.stdout and "holds" in r.stdout, r.stdout
    assert f"@{short(V2)}" in r.stdout and out["rollback"]["since"] in r.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_a_rollback_recorded_by_an_earlier_version_still_holds(lab: Lab, shell: str) -> None:
    """An older pinned record has no rolled_back_from: it loads, and the previous
    generation's image (the one it was rolled back from) stands in for it."""
    rec = lab.boot / "gen/3/generation.json"
    data = json.loads(rec.read_text())
    del data["rolled_back_from"]
    rec.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    gen = generations.load(lab.boot).newest
    assert gen is not None and gen.pinned and gen.rolled_back_from is None
    assert encode(gen) == rec.read_bytes()          # written back as it was
    assert lab.py_status()["rollback"]["from"] == [V2]
    assert update.plan_update(lab.session(), auto=True).new is None
    r = lab.shell(shell, "--auto")
    assert r.returncode == 0 and "does nothing" in r.stdout, r.stdout + r.stderr
    assert generations.load(lab.boot).newest.number == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("away", [["nonsense"], "sha256:" + "1" * 64, [1]])
def test_a_bad_rolled_back_from_is_refused(lab: Lab, away: object) -> None:
    data = json.loads((lab.boot / "gen/3/generation.json").read_text())
    with pytest.raises(GenerationError, match="rolled_back_from"):
        from_json({**data, "rolled_back_from": away}, 3)
    unpinned = json.loads((lab.boot / "gen/2/generation.json").read_text())
    with pytest.raises(GenerationError, match="rolled_back_from"):
        from_json({**unpinned, "rolled_back_from": [V1]}, 2)
    assert replace(generations.load(lab.boot).get(2), pinned=False).rolled_back_from is None  # type: ignore[arg-type]
