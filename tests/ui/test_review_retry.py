"""Every Apply attempt runs on a plan made for it; Review holds nothing while shown or left."""

from __future__ import annotations

from screens.review import ErrorModal, ReviewScreen
from tests.ui.conftest import SIZE
from tests.ui.fakes_late import FakeLateServices
from tests.ui.test_late_screens import Host, state, text_of
from wizard.flow import Back, Next


class CountingServices(FakeLateServices):
    """Remembers each preview's plan (the plan each apply made is in ``applied_plans``)."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[object] = []

    def preview(self, st, *, cancel):
        preview = super().preview(st, cancel=cancel)
        assert self.open_sessions == 0  # the preview let its session go
        self.plans.append(preview.plan)
        return preview


async def _apply(app: Host, pilot) -> None:
    await pilot.press("a")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_a_second_apply_after_a_failure_uses_a_new_plan() -> None:
    services = CountingServices()
    services.fail_apply = True
    app = Host(lambda: ReviewScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(services.plans) == 1
        await _apply(app, pilot)
        assert isinstance(app.screen, ErrorModal)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(services.plans) == 2  # planned again after the failed attempt
        assert "made again" in text_of(app.screen, "#status")
        services.fail_apply = False
        await _apply(app, pilot)
    # Each attempt planned again for itself, from what was on disk then.
    assert len(services.applied_plans) == 2
    assert services.applied_plans[1] is not services.applied_plans[0]
    assert not any(p is q for p in services.applied_plans for q in services.plans)
    assert services.open_sessions == 0  # the failed attempt's session was closed too
    assert isinstance(app.outcomes[0], Next)


async def test_a_cancelled_apply_is_planned_again_too() -> None:
    services = CountingServices()
    app = Host(lambda: ReviewScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        screen.post_message(ReviewScreen.Failed("apply cancelled", [], cancelled=True,
                                                applying=True))
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(services.plans) == 2
        assert "Cancelled: apply cancelled" in text_of(screen, "#status")


async def test_back_from_review_leaves_nothing_held() -> None:
    services = CountingServices()
    app = Host(lambda: ReviewScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(services.plans) == 1 and services.open_sessions == 0  # shown, not held
        await pilot.press("b")
        await pilot.pause()
    assert services.open_sessions == 0
    assert not any(name == "apply" for name, _ in services.calls)
    assert isinstance(app.outcomes[0], Back)


async def test_back_while_the_preview_is_made_cancels_it_and_leaves_nothing_held() -> None:
    services = CountingServices()
    services.block_preview = True
    app = Host(lambda: ReviewScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert services.preview_started.wait(5)
        assert services.open_sessions == 1  # the preview's session, while it plans
        await pilot.press("b")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert services.open_sessions == 0 and services.plans == []
    assert isinstance(app.outcomes[0], Back)
