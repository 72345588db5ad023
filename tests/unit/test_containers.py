"""The one throwaway-container helper: options, one error type, removal on every exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from wizard.common import leftovers
from wizard.common.errors import Cancelled, ImageError
from wizard.store.containers import ASSETS_MOUNT, throwaway


class FakeContainer:
    def __init__(self, start_error: Exception | None = None) -> None:
        self.start_error, self.removed = start_error, False

    def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error

    def remove(self, force: bool = False) -> None:
        assert force
        self.removed = True


class FakeClient:
    def __init__(self, create_error: Exception | None = None,
                 start_error: Exception | None = None) -> None:
        self.containers = self
        self.create_error, self.start_error = create_error, start_error
        self.made: list[FakeContainer] = []
        self.kwargs: dict[str, Any] = {}

    def create(self, image: str, command: list[str] | None, **kwargs: Any) -> FakeContainer:
        if self.create_error is not None:
            raise self.create_error
        self.kwargs = {"image": image, "command": command, **kwargs}
        self.made.append(FakeContainer(self.start_error))
        return self.made[-1]


def test_options_network_labels_and_read_only_assets(tmp_path: Path) -> None:
    client = FakeClient()
    with throwaway(client, "img:1", purpose="probe", command=["-c", "true"],
                   entrypoint="/bin/sh", assets=tmp_path / "assets",
                   writable={tmp_path / "out": "/out"}) as box:
        box.start()
    kw = client.kwargs
    assert kw["network_disabled"] is True and kw["network_mode"] == "none"
    assert kw["labels"][leftovers.LABEL] == "probe" and leftovers.OWNER_LABEL in kw["labels"]
    assert kw["volumes"] == {str(tmp_path / "assets"): {"bind": ASSETS_MOUNT, "mode": "ro"},
                             str(tmp_path / "out"): {"bind": "/out", "mode": "rw"}}
    assert kw["user"] == "0:0" and "stdin_open" not in kw
    assert client.made[0].removed


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(),
                                   Cancelled("cancelled")])
def test_removed_on_every_exit(error: BaseException) -> None:
    client = FakeClient()
    with pytest.raises(type(error)), throwaway(client, "img:1", purpose="probe"):
        raise error
    assert client.made[0].removed


def test_removed_when_a_generator_is_closed_early() -> None:
    client = FakeClient()

    def gen():
        with throwaway(client, "img:1", purpose="initramfs"):
            yield 1
            yield 2

    g = gen()
    next(g)
    g.close()
    assert client.made[0].removed


@pytest.mark.parametrize("error, match", [
    (docker.errors.ImageNotFound("No such image: img:1"), "img:1 is not present locally"),
    (docker.errors.NotFound("404 Client Error: not found"), "img:1 is not present locally"),
    (docker.errors.APIError("500 Server Error", explanation="disk full"),
     "could not create a probe container of img:1: disk full"),
])
def test_create_errors_are_one_image_error(error: Exception, match: str) -> None:
    with pytest.raises(ImageError, match=match) as info, \
            throwaway(FakeClient(create_error=error), "img:1", purpose="probe"):
        pass
    assert info.value.fix and "\n" not in str(info.value)


def test_start_errors_are_image_errors_and_the_container_goes() -> None:
    no_shell = docker.errors.APIError(
        "400", explanation='exec: "/bin/sh": stat /bin/sh: no such file or directory')
    client = FakeClient(start_error=no_shell)
    with pytest.raises(ImageError, match="image img:1 has no /bin/sh"), \
            throwaway(client, "img:1", purpose="probe", entrypoint="/bin/sh") as box:
        box.start()
    assert client.made[0].removed
    client = FakeClient(start_error=docker.errors.APIError("500", explanation="oops"))
    with pytest.raises(ImageError, match="could not start a probe container of img:1: oops"), \
            throwaway(client, "img:1", purpose="probe") as box:
        box.start()
    assert client.made[0].removed


def test_api_error_in_the_block_is_an_image_error() -> None:
    client = FakeClient()
    with pytest.raises(ImageError, match="docker failed with the probe container"), \
            throwaway(client, "img:1", purpose="probe"):
        raise docker.errors.APIError("500", explanation="wait failed")
    assert client.made[0].removed
