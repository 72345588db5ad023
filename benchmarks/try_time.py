"""Benchmark: ``dockerboot-wizard try`` — seconds to the login prompt and the scratch space used.

On a sandbox disk (GPT, btrfs, a private dockerd) with the sample image
with systemd applied (initramfs-tools, ``console=ttyS0``), the installed
``try --headless --json`` runs while the lab's dockerd keeps running.  Each
run prints the seconds from ``try``'s start to the login prompt (copy and
boot), the boot alone, the copy (the difference), the bytes copied from the
partition and the scratch disk's bytes on disk (sparse), and the accelerator.

    sudo python3 -m benchmarks.try_time [--runs 1] [--accel auto|kvm|tcg]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from tests.lab import scenario

IMAGE = "bench/try:latest"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dbw-bench-try-", dir="/var/tmp"))
    machine = scenario.new_machine(work)
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="bench", systemd=True)
        r = scenario.run_apply(daemon, machine, "--image", IMAGE, "--kernel-options",
                               "console=ttyS0", "--yes")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        image_bytes = int(daemon.docker("image", "inspect", "-f", "{{.Size}}",
                                        IMAGE).stdout.strip())
        print(f"sample image {IMAGE}: {image_bytes / 2**20:.0f} MiB (docker's size)")
        print(f"{'run':>3} {'to login s':>10} {'boot s':>7} {'copy s':>7} "
              f"{'scratch MiB':>11} {'accel':>5}  ok")
        for n in range(args.runs):
            r = subprocess.run([scenario.wizard_command(), "try", "--label", machine.label,
                                "--headless", "--json", "--accel", args.accel,
                                "--timeout", "1800"],
                               env=daemon.env(), capture_output=True, text=True, timeout=3600)
            out = json.loads(r.stdout)
            print(f"{n + 1:>3} {out['seconds']:>10.1f} {out['boot_seconds']:>7.1f} "
                  f"{out['seconds'] - out['boot_seconds']:>7.1f} "
                  f"{out['scratch_bytes'] / 2**20:>11.0f} {out['accel']:>5}  {out['ok']}")
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
