"""Any fault of a Top-layer worker (OSError, docker error, a bug) is shown; no screen waits.

The other steps' workers: the one error path in each screen's own test module.
"""

from __future__ import annotations

import errno
import os

import docker.errors
import pytest

from screens.toplayer import ToplayerScreen
from tests.ui.conftest import SIZE
from tests.ui.fakes_late import FakeLateServices
from tests.ui.test_late_screens import Host, state, text_of

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


@pytest.mark.parametrize("method", ["toplayer_files", "image_file"])
@pytest.mark.parametrize("kind", list(FAULTS))
async def test_toplayer_lookups_fault_notifies_and_never_stays_loading(
        kind: str, method: str) -> None:
    exc, words = FAULTS[kind]
    services = FakeLateServices()
    setattr(services, method, raising(exc))
    app = Host(lambda: ToplayerScreen(state(), services))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        if method == "image_file":
            screen = app.screen
            screen._with_image_file("etc/fstab", "open")
            screen.current = "etc/fstab"
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "loading" not in text_of(screen, "#path")
        shown = [str(n.message) for n in app._notifications]
        assert any(words in n for n in shown), shown
