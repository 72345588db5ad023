"""Benchmark: does the UI stay responsive while an initramfs builds?

The Initramfs screen is opened in the real app (headless, 100x32) and the
event loop's lag is sampled every 10 ms — how late a timer fires is how
late a key press would be handled — side by side in the same run:

- idle: the screen shown, nothing running (the baseline);
- building: the build running in its thread worker, streaming log lines.

By default the build is the UI tests' fake, made to stream ``--lines`` log
lines (what a verbose dracut run prints) while blocking its thread between
them, as the real build blocks on the container.  ``--real`` builds the
sample image's initramfs for real in a throwaway sandbox (root, minutes:
loop disk, private dockerd, container build).

    python3 -m benchmarks.tui_responsiveness [--lines 3000] [--real]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from screens.boot.initramfs import InitramfsScreen  # noqa: E402
from screens.wizard_app import make_app  # noqa: E402
from tests.ui.fakes import SETTINGS, FakeServices  # noqa: E402
from wizard.common.events import Event, LogLine, Progress, StepDone  # noqa: E402
from wizard.flows.flow import Step, WizardState  # noqa: E402

TICK = 0.010


class StreamingBuild(FakeServices):
    """The fake build, streaming ``lines`` log lines over ~``seconds``."""

    def __init__(self, lines: int, seconds: float) -> None:
        super().__init__()
        self.lines, self.seconds = lines, seconds

    def build_initramfs(self, state: WizardState, *,
                        cancel: threading.Event) -> Generator[Event, None, str]:
        pause = self.seconds / self.lines
        for i in range(self.lines):
            time.sleep(pause)  # the thread blocks, as on the container's output
            yield LogLine(f"dracut: including module {i}: /usr/lib/modules/… ({i * 37} bytes)")
            if i % 50 == 0:
                yield Progress(i, self.lines, "building")
        yield StepDone("initramfs", "staged")
        return "boot_docker/.build-bench"


@contextlib.contextmanager
def real_services() -> Iterator[tuple[object, WizardState]]:
    """A sandbox with the sample image, and RealServices pointed at it."""
    from wizard.flows.services import RealServices
    from wizard.sandbox import sandbox

    with sandbox(log=lambda line: print(f"  sandbox: {line}", flush=True)) as box:
        os.environ.update(box.env())
        yield RealServices(), WizardState(settings=box.settings())


async def lag_samples(until: threading.Event | asyncio.Event, limit: float) -> list[float]:
    """How late (ms) each 10 ms timer fired, until ``until`` is set or ``limit`` s passed."""
    loop = asyncio.get_running_loop()
    out, end = [], loop.time() + limit
    while not until.is_set() and loop.time() < end:
        before = loop.time()
        await asyncio.sleep(TICK)
        out.append(max(0.0, (loop.time() - before - TICK) * 1000))
    return out


async def measure(services, state: WizardState, idle_seconds: float) -> dict[str, list[float]]:
    app = make_app(services, start_at=Step.INITRAMFS, state=state)
    built = threading.Event()
    async with app.run_test(size=(100, 32)) as pilot:
        while not isinstance(app.screen, InitramfsScreen):
            await pilot.pause(0.01)
        screen = app.screen
        # Auto-build starts on detect: wait for it, then measure it; idle comes after.
        while not screen.building:
            await pilot.pause(0.001)

        async def watch() -> None:
            while screen.building:
                await asyncio.sleep(0.05)
            built.set()

        watcher = asyncio.create_task(watch())
        building = await lag_samples(built, limit=1800)
        await watcher
        idle = await lag_samples(threading.Event(), limit=idle_seconds)
        assert screen.state.staged_initramfs, "the build did not finish"
    return {"idle": idle, "building": building}


def summary(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return (f"{len(samples):6d} ticks  median {statistics.median(samples):6.1f} ms  "
            f"p95 {q[94]:6.1f} ms  max {max(samples):7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=3000, help="log lines of the fake build")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of the fake build")
    parser.add_argument("--real", action="store_true", help="a real build in a sandbox (root)")
    args = parser.parse_args()
    if args.real:
        with real_services() as (services, state):
            result = asyncio.run(measure(services, state, idle_seconds=5))
    else:
        services = StreamingBuild(args.lines, args.seconds)
        state = WizardState(settings=SETTINGS)
        result = asyncio.run(measure(services, state, idle_seconds=args.seconds))
    idle, building = result["idle"], result["building"]
    print(f"event-loop lag, 10 ms timer, Initramfs screen ({'real' if args.real else 'fake'} "
          "build)")
    print(f"  idle     {summary(idle)}")
    print(f"  building {summary(building)}")
    med = [max(statistics.median(s), 0.01) for s in (building, idle)]
    top = [max(statistics.quantiles(s, n=100)[94], 0.01) for s in (building, idle)]
    print(f"  ratio building/idle: median {med[0] / med[1]:.2f}x, p95 {top[0] / top[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
