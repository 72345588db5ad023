"""Every Apply attempt runs on a plan made for it; leaving Review releases the plan."""

from __future__ import annotations

from screens.review import ErrorModal, ReviewScreen
from tests.ui.conftest import SIZE
from tests.ui.fakes_late import FakeLateServices
from tests.ui.test_late_screens import Host, state, text_of
from wizard.flow import Back, Next


class CountingServices(FakeLateServices):
    """Remembers which plan each execute got."""

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[object] = []
        self.executed: list[object] = []

    def plan(self, st, *, cancel):
        plan = super().plan(st, cancel=cancel)
        self.plans.append(plan)
        return plan

    def execute(self, plan, *, steps, cancel):
        self.executed.append(plan)
        yield from super().execute(plan, steps=steps, cancel=cancel)


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
    assert services.executed == [services.plans[0], services.plans[1]]
    assert services.executed[1] is not services.executed[0]
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


async def test_back_from_review_releases_the_plan() -> None:
    services = CountingServices()
    app = Host(lambda: ReviewScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
    assert ("release_plan", None) in services.calls
    assert isinstance(app.outcomes[0], Back)
