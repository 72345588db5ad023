"""review and report: the boot entry's preview, the sections and the text of a plan."""

from __future__ import annotations

from pathlib import Path

from tests.unit.plans import SETTINGS, make_plan
from wizard.flows import apply, review
from wizard.flows.flow import ROUTES, Mode
from wizard.flows.report import render_plan


def test_refind_preview_diff_and_idempotence():
    first = review.refind_preview(SETTINGS, "refind.conf", b"timeout 5\n")
    assert "volume dbw" in first.entry and "+menuentry" in first.diff
    assert first.new.startswith(b"timeout 5\n")
    again = review.refind_preview(SETTINGS, "refind.conf", first.new)
    assert again.diff == "" and again.new == first.new


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
