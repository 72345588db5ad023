"""Benchmark: ``dockerboot-wizard try`` — seconds to the login prompt and the scratch space used.

On a sandbox disk (GPT, btrfs, a private dockerd) with the sample image
with systemd applied (initramfs-tools, ``console=ttyS0``), the installed
``try --headless --json`` runs while the lab's dockerd keeps running.  Then,
for each size of ``--sizes-gib`` (default 1), an image of that size is made
for real — the sample plus one layer of incompressible (random) data filling
it up to the size — applied, and tried the same way.  Each run prints the
seconds from ``try``'s start to the login prompt (copy and boot), the boot
alone, the copy (the difference), the scratch disk's bytes on disk (sparse)
and the accelerator.

    sudo python3 -m benchmarks.try_time [--runs 1] [--accel auto|kvm|tcg] [--sizes-gib 1 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from tests.lab import lab, scenario

IMAGE = "bench/try:latest"
FILLER = "/var/lib/dbw-bench-filler"
"""Where the big images' random data lies in the image."""


def image_mib(daemon: lab.Dockerd, tag: str) -> float:
    """Docker's size of the image (all its layers), in MiB."""
    return int(daemon.docker("image", "inspect", "-f", "{{.Size}}", tag).stdout.strip()) / 2**20


def sized_image(daemon: lab.Dockerd, work: Path, gib: float, base_mib: float) -> str:
    """``IMAGE`` plus one layer of random bytes, ``gib`` GiB in all; its tag."""
    tag = f"bench/try:{gib:g}g"
    filler = max(1, round(gib * 1024 - base_mib))
    ctx = work / f"ctx-{gib:g}g"
    ctx.mkdir()
    # Random: a compressing filesystem or docker's own copy cannot make it smaller.
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\nRUN head -c {filler}M /dev/urandom > {FILLER}\n")
    daemon.docker("build", "-q", "--network", "none", "-t", tag, ctx, timeout=1800)
    return tag


def measure(daemon: lab.Dockerd, machine: scenario.Machine, tag: str, runs: int,
            accel: str) -> None:
    """Apply ``tag`` to the machine, then ``runs`` headless tries: one row each."""
    r = scenario.run_apply(daemon, machine, "--image", tag, "--kernel-options",
                           "console=ttyS0", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    size = image_mib(daemon, tag)
    for n in range(runs):
        r = subprocess.run([scenario.wizard_command(), "try", "--label", machine.label,
                            "--headless", "--json", "--accel", accel, "--timeout", "1800"],
                           env=daemon.env(), capture_output=True, text=True, timeout=3600)
        assert r.stdout.strip(), r.stderr[-3000:]
        out = json.loads(r.stdout)
        print(f"{tag:>18} {size:>9.0f} {n + 1:>3} {out['seconds']:>10.1f} "
              f"{out['boot_seconds']:>7.1f} {out['seconds'] - out['boot_seconds']:>7.1f} "
              f"{out['scratch_bytes'] / 2**20:>11.0f} {out['accel']:>5}  {out['ok']}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    parser.add_argument("--sizes-gib", type=float, nargs="*", default=[1.0],
                        help="also images of these sizes (the sample plus random data); "
                             "none: the sample only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dbw-bench-try-", dir="/var/tmp"))
    # Room for the sample, the bigger images and what apply keeps of each.
    size = f"{max(8, int(4 + 3 * max(args.sizes_gib, default=0)))}G"
    machine = scenario.new_machine(work, size=size)
    try:
        with scenario.docker_on(machine) as daemon:
            scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="bench", systemd=True)
            base = image_mib(daemon, IMAGE)
            print(f"sample image {IMAGE}: {base:.0f} MiB (docker's size)")
            print(f"{'image':>18} {'MiB':>9} {'run':>3} {'to login s':>10} {'boot s':>7} "
                  f"{'copy s':>7} {'scratch MiB':>11} {'accel':>5}  ok", flush=True)
            measure(daemon, machine, IMAGE, args.runs, args.accel)
            for gib in args.sizes_gib:
                measure(daemon, machine, sized_image(daemon, work, gib, base), args.runs,
                        args.accel)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


if __name__ == "__main__":
    main()
