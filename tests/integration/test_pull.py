"""The Image step's pull, for real: RealServices.pull against a real dockerd and a local registry.

No Docker Hub: an image made in the lab daemon is ``docker save``d, served by
``tests/lab/registry.py`` on 127.0.0.1 and removed locally, so the pull
really downloads its layer.  The pull must report growing progress, end with
the image listed and resolvable to its btrfs subvolume (what the Image
screen shows), stop when cancelled, and fail in one line for an unknown tag.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab import lab, registry
from wizard.common.errors import Cancelled, ImageError
from wizard.common.events import LogLine, Progress
from wizard.flows.services import RealServices

pytestmark = pytest.mark.lab

SOURCE = "dbw-src/pulled:1"
MARKER = "pulled through a registry\n"


@dataclass
class PullLab:
    daemon: lab.Dockerd
    registry: registry.Registry

    def ref(self, tag: str = "1") -> str:
        return f"{self.registry.host}/dbw/pulled:{tag}"


def layer_tar(path: Path) -> Path:
    """One layer: a marker file and 3 MiB that gzip cannot shrink (a visible download)."""
    return lab.tar_of(path, {"etc/dbw-pulled-marker": MARKER, "opt/noise.bin": os.urandom(3 << 20)})


@pytest.fixture(scope="module")
def pull_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PullLab]:
    work = tmp_path_factory.mktemp("pull")
    with lab.docker_disk(work, size="2G") as dd, registry.serving() as reg, \
            pytest.MonkeyPatch.context() as mp:
        dd.daemon.docker("import", layer_tar(work / "layer.tar"), SOURCE)
        saved = work / "saved.tar"
        dd.daemon.docker("save", "-o", saved, SOURCE)
        reg.add_saved(saved.read_bytes(), "dbw/pulled", "1")
        dd.daemon.docker("rmi", SOURCE)  # the layer must really come over the wire
        mp.setenv("DOCKER_HOST", dd.daemon.host)
        yield PullLab(dd.daemon, reg)


def test_pull_shows_progress_then_the_image_is_listed_and_resolves(pull_lab: PullLab) -> None:
    services = RealServices()
    pull_lab.registry.throttle = 0.01
    events = list(services.pull(pull_lab.ref(), cancel=threading.Event()))
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and all(p.total for p in progress), events
    assert progress[-1].current == progress[-1].total  # the bar ends full
    assert len({p.current for p in progress}) > 1  # it moved while downloading
    assert any("Downloaded newer image" in e.text for e in events if isinstance(e, LogLine))
    assert any(line.startswith("GET /v2/dbw/pulled/blobs/") for line in pull_lab.registry.served)

    assert pull_lab.ref() in {i.ref for i in services.images()}
    subvolume = services.resolve(pull_lab.ref())
    assert (subvolume / "etc/dbw-pulled-marker").read_text() == MARKER


def test_cancel_stops_a_running_pull(pull_lab: PullLab) -> None:
    reg = pull_lab.registry
    reg.manifests[("dbw/pulled", "slow")] = reg.manifests[("dbw/pulled", "1")]
    pull_lab.daemon.docker("rmi", pull_lab.ref())  # download again, slowly
    reg.throttle = 0.3  # ~15 s for the layer: a cancel must not wait for it
    cancel = threading.Event()
    seen: list[object] = []
    with pytest.raises(Cancelled):
        for event in RealServices().pull(pull_lab.ref("slow"), cancel=cancel):
            seen.append(event)
            if isinstance(event, Progress) and event.current:
                cancel.set()
    reg.throttle = 0.0
    assert not any(isinstance(e, LogLine) and "Downloaded newer image" in e.text for e in seen)


def test_unknown_tag_is_one_line_error(pull_lab: PullLab) -> None:
    with pytest.raises(ImageError) as info:
        list(RealServices().pull(pull_lab.ref("no-such-tag"), cancel=threading.Event()))
    message = str(info.value)
    assert "\n" not in message and "no-such-tag" in message and " — " in message
