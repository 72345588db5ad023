"""Benchmark: ``update`` when only the image changed, side by side with a full apply.

On a loop btrfs disk with a private dockerd (btrfs driver), the debootstrapped
sample image and an ESP with rEFInd, each row times the installed command
line (what a user runs, process start included):

- ``apply`` of the same settings: probe container, initramfs build, entries;
- ``update`` after the tag moved to a new image with the same kernel: the
  newest pair is copied (reflink) as a new generation, no build (target < 2 s);
- ``update`` when nothing moved: "up to date", no container.

Every ``update`` row really moves the tag first (a ``docker commit``, not timed).

    sudo python3 -m benchmarks.update_time [--runs 3]
"""

from __future__ import annotations

import subprocess
import time

from benchmarks.scratch import parse_runs, scratch_lab
from benchmarks.table import print_ratios
from tests.lab import lab, scenario

IMAGE = "bench/update:latest"


def cli(dd: lab.DockerDisk, *args: str) -> float:
    """Run the installed CLI; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([scenario.wizard_command(), *args, "--label", dd.disk.label, "--yes"],
                   env=dd.daemon.env(), check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def move_tag(dd: lab.DockerDisk, n: int) -> None:
    dd.daemon.docker("create", "--name", f"bench-{n}", "--network", "none", IMAGE, "/bin/true")
    dd.daemon.docker("commit", "--change", f"LABEL bench={n}", f"bench-{n}", IMAGE)
    dd.daemon.docker("rm", f"bench-{n}")


def main() -> None:
    args = parse_runs(__doc__)
    rows: dict[str, list[float]] = {"apply (build)": [], "update, image moved, same kernel": [],
                                    "update, nothing moved": []}
    with scratch_lab("dbw-bench-update-", IMAGE) as (dd, esp):
        cli(dd, "apply", "--image", IMAGE, "--esp", str(esp))  # warm-up, not counted
        for n in range(args.runs):  # interleaved: machine noise hits every row alike
            rows["apply (build)"].append(cli(dd, "apply", "--esp", str(esp)))
            move_tag(dd, n)
            rows["update, image moved, same kernel"].append(cli(dd, "update"))
            rows["update, nothing moved"].append(cli(dd, "update"))
    print_ratios(rows, header="command", base="apply (build)", ratio="apply ÷ this")
    print(f"({args.runs} runs each, interleaved; the first apply is not counted)")


if __name__ == "__main__":
    main()
