"""``make demo``: the whole job on a disposable sandbox disk, headless.

Creates a loop-backed GPT disk (ESP with rEFInd + btrfs), runs a private
dockerd on it, builds a small bootable Debian image (debootstrap, cached),
runs ``dockerboot-wizard apply`` exactly as a user would, then boots the disk
in QEMU through rEFInd and shows the console.  Everything is removed at the
end unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from tests.lab import scenario


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the sandbox disk")
    parser.add_argument("--generator", default="initramfs-tools",
                        choices=["initramfs-tools", "dracut"])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dockerboot-demo-", dir="/var/tmp"))
    try:
        print(f"sandbox: {workdir}", flush=True)
        machine = scenario.new_machine(workdir)
        image = "demo/desktop:latest"
        with scenario.docker_on(machine) as daemon:
            print("building the sample image (first run: debootstrap, a few minutes)…",
                  flush=True)
            scenario.build_image(daemon, args.generator, image, marker="demo image")
            print(f"$ dockerboot-wizard apply --label {machine.label} --image {image} "
                  "--hostname demo-box --user demo --password-file … --yes", flush=True)
            result = scenario.run_apply(
                daemon, machine, "--image", image, "--hostname", "demo-box", "--user", "demo",
                "--kernel-options", "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10",
                "--yes", password="demo")
            print(result.stdout)
            if result.returncode:
                print(result.stderr, file=sys.stderr)
                return result.returncode
        print("booting the sandbox disk in QEMU through rEFInd…", flush=True)
        serial, facts = scenario.boot(machine, "demo")
        print(serial)
        return 0 if facts.get("done") == "yes" else 1
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
