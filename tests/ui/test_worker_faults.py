"""Any fault of a worker (OSError, docker error, a bug) shows one line; no screen waits."""

from __future__ import annotations

import errno
import os

import docker.errors
import pytest
from textual.widgets import DataTable, Static

from screens.wizard_app import make_app
from tests.ui.conftest import SIZE, settle
from tests.ui.fakes import PART, FakeServices
from wizard.config import Settings
from wizard.flow import Step, WizardState

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/mnt/top/boot_docker/initrd.img")
EIO = OSError(errno.EIO, os.strerror(errno.EIO))
FAULTS = {
    "oserror": (ENOSPC, "No space left on device writing /mnt/top/boot_docker/initrd.img"),
    "eio": (EIO, "Input/output error"),
    "docker": (docker.errors.APIError("500 Server Error: boom"), "the Docker daemon failed"),
    "bug": (RuntimeError("something odd"), "unexpected RuntimeError: something odd"),
}


def raising(exc: BaseException):
    def method(*args: object, **kwargs: object):
        raise exc
    return method


def one_line(text: str, words: str) -> None:
    assert words in text, text
    assert "Traceback" not in text


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_partition_list_fault_is_shown_and_r_retries(kind: str) -> None:
    exc, words = FAULTS[kind]
    fake = FakeServices()
    good = fake.partitions
    fake.partitions = raising(exc)  # type: ignore[method-assign]
    app = make_app(fake, start_at=Step.PARTITION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        status = str(app.screen.query_one("#status", Static).render())
        one_line(status, words)
        assert "r retries" in status
        assert app.screen.query_one("#partitions", DataTable).row_count == 0
        fake.partitions = good  # type: ignore[method-assign]
        await pilot.press("r")
        await settle(pilot)
        assert app.screen.query_one("#partitions", DataTable).row_count == 2


async def test_one_unreadable_partition_keeps_the_others() -> None:
    fake = FakeServices()
    fake.has_data_root = lambda p: (_ for _ in ()).throw(EIO) if p.label == "data" \
        else p.label == PART.label  # type: ignore[method-assign]
    app = make_app(fake, start_at=Step.PARTITION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#partitions", DataTable).row_count == 2
        one_line(str(app.screen.query_one("#status", Static).render()), "data: Input/output")


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_images_list_fault_is_shown(kind: str) -> None:
    exc, words = FAULTS[kind]
    fake = FakeServices()
    fake.images = raising(exc)  # type: ignore[method-assign]
    chosen = WizardState(settings=Settings(label=PART.label, image=""))
    app = make_app(fake, start_at=Step.IMAGE, state=chosen)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        one_line(str(app.screen.query_one("#resolved", Static).render()), words)


# The Top layer step's workers: tests/ui/test_toplayer_screen.py (the one error path).
