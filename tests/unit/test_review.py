"""review and report: the boot entry's preview, the sections and the text of a plan."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.genhelp import image_id, inputs, make_gen
from tests.unit.plans import SETTINGS, TARGET, ImagesOnly, make_plan, session
from wizard.boot.bootloader import render_entries
from wizard.boot.generations import new_record
from wizard.flows import apply, changes, review
from wizard.flows.flow import ROUTES, Mode, WizardState
from wizard.flows.report import render_plan
from wizard.settings.config import Settings


@pytest.fixture
def on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A partition at ``tmp_path`` with generation 1 and refind.conf: sessions open there."""
    conf = tmp_path / "refind.conf"
    conf.write_bytes(b"timeout 5\n")
    make_gen(tmp_path / SETTINGS.boot_dir, 1, "a")

    @contextlib.contextmanager
    def open_session(settings, *, lock=True):
        yield session(tmp_path, settings, ImagesOnly())

    def resolve(root, image):
        (root / "sub").mkdir(parents=True, exist_ok=True)
        return root / "sub"

    monkeypatch.setattr(apply, "open_session", open_session)
    monkeypatch.setattr(apply.images, "resolve_subvolume", resolve)
    monkeypatch.setattr(apply.initramfs, "detect", lambda client, image: TARGET)
    monkeypatch.setattr(apply, "locate_refind", lambda settings: (conf, []))
    return tmp_path


@pytest.mark.parametrize("mode", [Mode.FULL, Mode.REWRITE_BOOT_ENTRY])
def test_boot_step_and_review_show_the_block_apply_writes(on_disk: Path, mode: Mode):
    state = WizardState(settings=SETTINGS, mode=mode)
    shown = changes.boot_entries(state)  # the Bootloader step
    review_of = changes.preview(changes.request_for(state))  # the Review
    applied = apply.make_plan(session(on_disk, SETTINGS, ImagesOnly()), {},
                              steps=state.writes)  # what apply plans and writes
    assert applied.refind_new is not None and applied.refind_block is not None
    # A full apply adds generation 2 (1 is on disk); rewriting the entry names 1 again.
    n = 2 if mode is Mode.FULL else 1
    assert f"loader boot_docker/gen/{n}/vmlinuz" in applied.refind_block
    assert f"dockerboot.generation={n}" in applied.refind_block
    assert applied.refind_block in applied.refind_new.decode()
    assert shown.entry == applied.refind_block and shown.new == applied.refind_new
    body = {s.title: s.body for s in review_of.sections}
    assert body["rEFInd entries (the block written into refind.conf)"] == \
        applied.refind_block.rstrip("\n")
    # The Review's kernel command line is the default entry's, with its generation.
    line = next(x for x in body["Summary"].splitlines() if x.startswith("Kernel command line"))
    assert line.endswith(f" dockerboot.generation={n}")
    assert line.removeprefix("Kernel command line: ") in applied.refind_block


def test_entry_title_is_the_one_render_entries_writes():
    s = Settings(label="dbw", image="dockerboot/sample")  # the tag made explicit, as apply does
    block = render_entries(replace(s, image="dockerboot/sample:latest"),
                           new_record(1, inputs(), "dockerboot/sample:latest", image_id("a")))
    assert f'menuentry "{review.entry_title(s)}" {{' in block
    assert review.entry_title(s) == "Docker image dockerboot/sample:latest"


def test_review_sections_follow_the_mode(tmp_path: Path):
    plan = make_plan(tmp_path)
    full = [x.title for x in review.sections(plan, ROUTES[Mode.FULL].writes)]
    top = [x.title for x in review.sections(plan, ROUTES[Mode.RECONFIGURE_TOPLAYER].writes)]
    assert any("initrd.img" in t for t in full) and any("refind.conf" in t for t in full)
    assert not any("initrd.img" in t or "refind.conf" in t for t in top)
    assert any(t.endswith("etc/hostname") for t in top)
    body = {x.title: x.body for x in review.sections(plan)}
    assert "root=LABEL=dbw" in body["Summary"]
    assert "+desk1" in body[f"{tmp_path}/boot_docker/toplayer/etc/hostname"]


def test_report_and_review_of_a_toplayer_only_plan(tmp_path: Path):
    plan = make_plan(tmp_path, target=None, refind_conf=None, refind_old=None,
                     refind_new=None)
    text = render_plan(plan, apply.TOPLAYER_ONLY)
    assert "etc/hostname" in text and "+desk1" in text
    assert "kernel + initramfs generations kept" in text and "kept as they are" in text
    assert "boot entry kept as it is" in text and "dockerboot-wizard.toml" in text
    assert "Initramfs:" not in text
    titles = [s.title for s in review.sections(plan, apply.TOPLAYER_ONLY)]
    assert not any("refind.conf" in t or "initrd.img" in t for t in titles)
    full = render_plan(make_plan(tmp_path))
    assert "initramfs-tools, kernel 6.1.0-18-amd64" in full and "+# new" in full
