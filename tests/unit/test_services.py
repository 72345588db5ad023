"""RealServices' pure parts: the pull stream turned into events (no registry needed)."""

import threading

import pytest

from wizard.common.errors import Cancelled, ImageError
from wizard.common.events import LogLine, Progress
from wizard.flows.services import RealServices, Services, pull_events

# What client.api.pull(..., stream=True, decode=True) yields (moby jsonmessage).
STREAM = [
    {"status": "Pulling from library/debian", "id": "12"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "aaa"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bbb"},
    {"status": "Downloading", "progressDetail": {"current": 50, "total": 100}, "id": "aaa"},
    {"status": "Downloading", "progressDetail": {"current": 100, "total": 300}, "id": "bbb"},
    {"status": "Download complete", "progressDetail": {}, "id": "aaa"},
    {"status": "Pull complete", "progressDetail": {}, "id": "bbb"},
    {"status": "Digest: sha256:" + "f" * 64},
    {"status": "Status: Downloaded newer image for debian:12"},
]


def test_pull_events_sum_layer_progress_and_pass_status_lines():
    events = list(pull_events(STREAM))
    progress = [(e.current, e.total) for e in events if isinstance(e, Progress)]
    assert progress[0] == (50, 100)
    assert progress[1] == (150, 400)  # the total grows as layers are announced
    assert progress[-1] == (400, 400)
    lines = [e.text for e in events if isinstance(e, LogLine)]
    assert lines[0] == "12: Pulling from library/debian"
    assert lines[-1] == "Status: Downloaded newer image for debian:12"
    assert not any("Downloading" in line for line in lines)  # progress, not log spam


def test_pull_events_raise_in_band_errors():
    stream = [{"status": "Pulling"}, {"errorDetail": {"message": "manifest unknown"},
                                      "error": "manifest unknown"}]
    with pytest.raises(ImageError, match="manifest unknown"):
        list(pull_events(stream))


def test_pull_events_stop_when_cancelled():
    cancel = threading.Event()
    seen = []

    def stream():
        yield STREAM[0]
        cancel.set()
        yield STREAM[1]
        raise AssertionError("read on after the cancel")

    with pytest.raises(Cancelled):
        for event in pull_events(stream(), cancel):
            seen.append(event)
    assert len(seen) == 1


FIRST_SCREENS = {"environment", "partitions", "watch_partitions", "saved_config",
                 "has_data_root", "docker_status", "images", "resolve", "pull",
                 "detect_initramfs"}


def test_real_services_has_the_first_screens_protocol_methods():
    assert FIRST_SCREENS <= {n for n in dir(Services) if not n.startswith("_")}
    assert FIRST_SCREENS <= set(dir(RealServices))
