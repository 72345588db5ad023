"""Benchmark: a full apply vs reconfiguring only the top layer, side by side.

On a loop btrfs disk with a private dockerd (btrfs driver), the debootstrapped
sample image and an ESP with rEFInd, each row times preview + apply through
``RealServices`` (what the TUI's Review step runs):

- full apply: probe container, initramfs build in a container, boot entry,
  top layer, saved config (``Mode.FULL``);
- top layer, as planned before: the full plan (probe container, ESP lookup)
  but only the top layer and the config written (one plan, no preview: the
  other rows plan twice, for the preview and again in apply);
- top layer only (``Mode.RECONFIGURE_TOPLAYER``): the image resolve, the top
  layer and the config — no container, no ESP.

Each run writes a different hostname, so every run really writes.

    sudo python3 -m benchmarks.reconfigure_time [--runs 3]
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from benchmarks.scratch import parse_runs, scratch_lab
from benchmarks.table import print_ratios
from wizard.flows import apply
from wizard.flows.flow import Mode, WizardState
from wizard.flows.services import RealServices
from wizard.settings.config import Settings

IMAGE = "bench/reconfigure:latest"


def run_mode(services: RealServices, settings: Settings, mode: Mode) -> None:
    """``RealServices.preview`` + ``apply`` for ``mode``, as the Review step runs them."""
    state = WizardState(settings=settings, saved=settings, mode=mode)
    services.preview(state, cancel=threading.Event())
    list(services.apply(state, cancel=threading.Event()))


def run_old_toplayer(settings: Settings) -> None:
    """What a top-layer change cost before plans were limited to the mode's steps."""
    with apply.open_session(settings) as session:
        plan = apply.make_plan(session, {}, steps=apply.EXECUTE_STEPS)
        list(apply.execute(session, plan, steps=apply.TOPLAYER_ONLY))


def timed(fn: Callable[..., None], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    args = parse_runs(__doc__)
    with scratch_lab("dbw-bench-reconf-", IMAGE) as (dd, esp):
        os.environ["DOCKER_HOST"] = dd.daemon.host
        rows = measure(Settings(label=dd.disk.label, image=IMAGE, esp=str(esp)), args.runs)
    print_ratios(rows, header="preview + apply", base="full apply", ratio="full ÷ this")
    print(f"({args.runs} runs each, interleaved; the first full apply is not counted)")


def measure(settings: Settings, runs: int) -> dict[str, list[float]]:
    services = RealServices()
    run_mode(services, replace(settings, hostname="warm-up"), Mode.FULL)  # caches warm
    rows: dict[str, list[float]] = {"full apply": [], "top layer (full plan, before)": [],
                                    "top layer only (reconfigure mode)": []}
    for n in range(runs):  # interleaved: machine noise hits every row alike
        rows["full apply"].append(timed(
            run_mode, services, replace(settings, hostname=f"full-{n}"), Mode.FULL))
        rows["top layer (full plan, before)"].append(timed(
            run_old_toplayer, replace(settings, hostname=f"old-{n}")))
        rows["top layer only (reconfigure mode)"].append(timed(
            run_mode, services, replace(settings, hostname=f"top-{n}"),
            Mode.RECONFIGURE_TOPLAYER))
    return rows


if __name__ == "__main__":
    main()
