"""``wizard.flows.changes``: one request, a preview that lets its session go, an apply
that closes it.

The session is faked (no partition, no daemon): what matters here is when it
is opened and closed, what the request resolves to, and that secrets stay
out of ``repr``.  The real session is exercised in
tests/integration/test_real_services.py.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.plans import PART, make_plan
from wizard.common.errors import Cancelled, ConfigError, InitramfsError
from wizard.common.events import Event, StepDone, StepStarted, check_cancel
from wizard.flows import apply, changes
from wizard.flows.apply import Session
from wizard.flows.flow import Mode, WizardState
from wizard.settings.config import Settings

SETTINGS = Settings(label="dbw", image="desk:1", hostname="desk1")
SECRET = "hunter2-very-secret"


class FakeCore:
    """``open_session``/``make_plan``/``execute`` stand-ins recording the session's life."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.open = 0
        self.opened: list[bool] = []
        """``lock`` of each session opened."""
        self.plans: list[tuple[dict[str, str], tuple[str, ...], Path | None, dict]] = []
        self.written: list[str] = []

    @contextlib.contextmanager
    def open_session(self, settings: Settings, *, lock: bool = True) -> Iterator[Session]:
        self.open += 1
        self.opened.append(lock)
        try:
            yield Session(replace(settings, docker_path="docker"), PART, self.top,
                          None, self.top / "docker")  # type: ignore[arg-type]
        finally:
            self.open -= 1

    def make_plan(self, session, passwords, *, cancel=None, steps=apply.EXECUTE_STEPS,
                  staged=None, edits=None) -> apply.Plan:
        assert self.open == 1
        self.plans.append((passwords, steps, staged, edits))
        return make_plan(session.top, session.settings, staged=staged)

    def execute(self, session, plan, *, cancel=None, steps=apply.EXECUTE_STEPS
                ) -> Iterator[Event]:
        assert self.open == 1 and plan.top == session.top
        for step in steps:
            check_cancel(cancel)  # as the real one: between steps
            yield StepStarted(step, f"writing {step}")
            self.written.append(step)
            yield StepDone(step)


@pytest.fixture
def core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCore:
    fake = FakeCore(tmp_path)
    monkeypatch.setattr(apply, "open_session", fake.open_session)
    monkeypatch.setattr(apply, "make_plan", fake.make_plan)
    monkeypatch.setattr(apply, "execute", fake.execute)
    return fake


def test_request_repr_never_shows_a_password_or_an_edit() -> None:
    request = changes.ApplyRequest(SETTINGS, passwords={"alice": SECRET},
                                   edits={"etc/shadow": f"alice:{SECRET}:1::::::\n".encode()})
    for text in (repr(request), str(request)):
        assert SECRET not in text and "desk1" in text


def test_request_refuses_an_unknown_step() -> None:
    with pytest.raises(ValueError, match="everything"):
        changes.ApplyRequest(SETTINGS, steps=("toplayer", "everything"))


def test_preview_closes_its_session_and_returns_plain_data(core: FakeCore) -> None:
    request = changes.ApplyRequest(SETTINGS, passwords={"alice": SECRET},
                                   steps=apply.TOPLAYER_ONLY, edits={"etc/motd": b"hi\n"})
    preview = changes.preview(request)
    assert core.open == 0 and core.opened == [True]
    assert core.plans == [({"alice": SECRET}, apply.TOPLAYER_ONLY, None, {"etc/motd": b"hi\n"})]
    assert preview.steps == apply.TOPLAYER_ONLY
    assert not hasattr(preview.plan, "session")
    assert preview.plan.settings.docker_path == "docker"
    titles = [s.title for s in preview.sections]
    assert titles[0] == "Summary" and not any("refind.conf" in t for t in titles)
    assert "etc/hostname" in preview.text and "boot entry kept as it is" in preview.text
    changes.preview(request)  # nothing held: a second one runs right away
    assert core.open == 0 and len(core.plans) == 2


def test_dry_run_preview_takes_no_lock(core: FakeCore) -> None:
    changes.preview(changes.ApplyRequest(SETTINGS), lock=False)
    assert core.opened == [False]


def test_preview_validates_before_anything_is_opened(core: FakeCore) -> None:
    bad = replace(SETTINGS, kernel_options="rootflags=subvol=docker")
    with pytest.raises(ConfigError, match="rootflags=subvol="):
        changes.preview(changes.ApplyRequest(bad))
    with pytest.raises(ConfigError, match="rootflags=subvol="):
        next(changes.apply(changes.ApplyRequest(bad)))
    assert core.opened == []


def test_apply_plans_again_and_closes_its_session_at_the_end(core: FakeCore) -> None:
    request = changes.ApplyRequest(SETTINGS, steps=apply.TOPLAYER_ONLY)
    changes.preview(request)
    gen = changes.apply(request)
    assert core.opened == [True]  # a generator: nothing opened before it is iterated
    events = list(gen)
    assert [e.step for e in events if isinstance(e, StepDone)] == ["toplayer", "config"]
    assert core.opened == [True, True] and len(core.plans) == 2 and core.open == 0


def test_apply_closes_its_session_when_the_consumer_stops_early(core: FakeCore) -> None:
    gen = changes.apply(changes.ApplyRequest(SETTINGS))
    first = next(gen)
    assert isinstance(first, StepStarted) and core.open == 1
    gen.close()
    assert core.open == 0 and core.written == []


def test_apply_closes_its_session_when_cancelled(core: FakeCore) -> None:
    cancel = threading.Event()
    gen = changes.apply(changes.ApplyRequest(SETTINGS, steps=apply.TOPLAYER_ONLY),
                        cancel=cancel)
    next(gen)
    cancel.set()
    with pytest.raises(Cancelled):
        list(gen)
    assert core.open == 0 and core.written == ["toplayer"]
    cancel_first = threading.Event()
    cancel_first.set()
    with pytest.raises(Cancelled):
        next(changes.apply(changes.ApplyRequest(SETTINGS), cancel=cancel_first))
    assert core.opened == [True]  # a cancelled apply opens nothing


def test_staged_build_is_resolved_in_the_session_only_for_the_initramfs_step(
        core: FakeCore, tmp_path: Path) -> None:
    staged = "boot_docker/.build-abc"
    changes.preview(changes.ApplyRequest(SETTINGS, staged=staged))
    changes.preview(changes.ApplyRequest(SETTINGS, steps=apply.TOPLAYER_ONLY, staged=staged))
    assert [p[2] for p in core.plans] == [tmp_path / staged, None]


@pytest.mark.parametrize("staged", ["/boot_docker/.build-x", "boot_docker/../etc",
                                    "boot_docker/vmlinuz", "other/.build-x",
                                    "boot_docker/.build-x/deeper"])
def test_a_staged_path_outside_the_boot_dir_is_refused(core: FakeCore, staged: str) -> None:
    with pytest.raises(InitramfsError, match="not a staged build"):
        changes.preview(changes.ApplyRequest(SETTINGS, staged=staged))
    assert core.plans == []


def test_request_for_a_wizard_state_takes_its_mode_steps() -> None:
    state = WizardState(settings=SETTINGS, mode=Mode.RECONFIGURE_TOPLAYER,
                        passwords={"alice": SECRET}, toplayer_edits={"etc/motd": b"hi\n"},
                        staged_initramfs="boot_docker/.build-x")
    request = changes.request_for(state)
    assert request.settings == SETTINGS and request.steps == apply.TOPLAYER_ONLY
    assert request.passwords == {"alice": SECRET} and request.edits == {"etc/motd": b"hi\n"}
    assert request.staged == "boot_docker/.build-x"
    assert changes.request_for(state, ("bootloader",)).steps == ("bootloader",)
    with pytest.raises(ValueError, match="no settings"):
        changes.request_for(WizardState())


def test_execute_refuses_a_plan_made_on_another_top_level(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, SETTINGS)
    other = Session(SETTINGS, PART, tmp_path / "elsewhere", None,  # type: ignore[arg-type]
                    tmp_path / "docker")
    with pytest.raises(apply.PlanError, match="made for LABEL=dbw"):
        list(apply.execute(other, plan, steps=apply.TOPLAYER_ONLY))
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "boot_docker").exists()
