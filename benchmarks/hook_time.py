"""Benchmark: the boot hook's own time, for a small and a large image, side by side.

Boots a sandbox disk in QEMU (TCG) through rEFInd twice: once into a small
image (the debootstrapped base plus the test init) — the baseline — and once
into a large one (the same plus many extra layers and files).  The hook
prints ``uptime A -> B`` on the serial console; its time is B - A.  The
snapshot is O(1) and only the image's own layer metadata is read, so the
ratio should stay near 1.  A third boot of the small image with a user made
by the wizard shows the cost of merging the image's accounts into the top
layer's passwd/group/shadow/gshadow (last: the user stays in the top layer).
With ``--others N`` both images boot again, before that, once N more
one-layer images are in the store (N more tags in repositories.json, N more
layerdb entries and subvolumes).  ``--machine`` adds what users boot: the
sample systemd image with a real machine's top layer (a user who is an
administrator, home, journal, the docker store and the booted system's own
updater).

    sudo python3 -m benchmarks.hook_time [--layers 12] [--files 3000] [--runs 3]
                                         [--others 200] [--machine] [--baseline DIR]
                                         [--small-only] [--interleave] [--keep]

``--interleave``: small and large only, their boots alternating on one
applied disk (the default entry's ``docker_image=`` rewritten before each):
the layers ratio measured under the same load.

With ``--baseline DIR`` (another checkout, e.g. ``git archive main | tar -x
-C /tmp/base``) each image is applied with DIR's wizard and hook first (its
apply builds that initramfs), then with this one's; the boots then alternate
between the two initramfs files (the default entry's ``initrd`` line is
rewritten before each boot): same disk, same store, same load.  The ``base
s`` column and new/base come from the same run.  ``--small-only``: the small
image alone.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import statistics
import tarfile
import tempfile
from pathlib import Path

import docker

from tests.lab import lab, scenario

# The test init never marks a boot good: without dockerboot.tries=0 every
# third boot of an image would take the hook's out-of-tries path instead of
# the everyday one (a booted system with systemd is marked good at each boot).
KERNEL_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10 dockerboot.tries=0"
HOOK_LINE = re.compile(r"dockerboot: .* \(uptime ([0-9.]+) -> ([0-9.]+)\)")


def hook_seconds(serial: str) -> float:
    match = HOOK_LINE.search(serial)
    if not match:
        raise SystemExit("no hook timing line in the serial log:\n" + serial[-3000:])
    return float(match.group(2)) - float(match.group(1))


def build_large(host: str, base: str, tag: str, layers: int, files: int, workdir: Path) -> None:
    """``base`` plus ``layers`` layers of ``files`` small files and one 64 MiB file each."""
    client = docker.DockerClient(base_url=host, timeout=1800)
    previous = base
    for n in range(layers):
        ctx = workdir / f"layer{n}"
        (ctx / "data").mkdir(parents=True)
        for i in range(files):
            (ctx / "data" / f"f{i}").write_text(f"layer {n} file {i}\n")
        with open(ctx / "blob", "wb") as f:
            f.truncate(0)
            f.write(bytes(64 << 20))
        (ctx / "Dockerfile").write_text(
            f"FROM {previous}\nCOPY data /opt/bench/{n}/\nCOPY blob /opt/bench/{n}.blob\n")
        previous = f"{tag}-part{n}" if n < layers - 1 else tag
        client.images.build(path=str(ctx), tag=previous, network_mode="none", rm=True)
        shutil.rmtree(ctx)
    client.close()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def load_others(daemon: lab.Dockerd, count: int, workdir: Path) -> None:
    """``count`` one-layer images with distinct content, by one ``docker load``."""
    archive, manifest = workdir / "others.tar", []
    with tarfile.open(archive, "w") as out:
        for n in range(count):
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as tar:
                _add(tar, f"other/{n}", f"other image {n}\n".encode())
            diff = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
            config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
            name = hashlib.sha256(config).hexdigest()
            _add(out, f"{name}.json", config)
            _add(out, f"{n}/layer.tar", layer.getvalue())
            manifest.append({"Config": f"{name}.json", "RepoTags": [f"bench/other-{n}:latest"],
                             "Layers": [f"{n}/layer.tar"]})
        _add(out, "manifest.json", json.dumps(manifest).encode())
    daemon.docker("load", "-q", "-i", archive, timeout=900)
    archive.unlink()


def image_facts(host: str, tag: str) -> tuple[int, float]:
    client = docker.DockerClient(base_url=host)
    image = client.images.get(tag)
    layers, size = len(image.attrs["RootFS"]["Layers"]), image.attrs["Size"] / 2**20
    client.close()
    return layers, size


@contextlib.contextmanager
def wizard_from(checkout: Path | None):
    """The wizard (and its assets) that ``apply`` runs: ``checkout``'s, else this one's."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(checkout or Path(__file__).resolve().parents[1])
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


INITRD_LINE = re.compile(r"^(\s*initrd\s+)(\S+)$", re.M)


def default_initrd(machine: scenario.Machine, path: str | None = None) -> str:
    """The default (first) entry's initrd; with ``path``, rewritten to it first."""
    conf = machine.refind_conf.read_text()
    start = conf.index('menuentry "Docker image')
    match = INITRD_LINE.search(conf, start)
    if match is None:
        raise SystemExit("no initrd line in the default entry of refind.conf")
    if path is not None:
        conf = conf[:match.start(2)] + path + conf[match.end(2):]
        machine.refind_conf.write_text(conf)
        return path
    return match.group(2)


IMAGE_WORD = re.compile(r"\bdocker_image=(\S+)")


def interleaved(machine: scenario.Machine, small: str, large: str, runs: int
                ) -> tuple[float, float]:
    """Median hook seconds of ``small`` and ``large``, their boots alternating.

    One apply (``large``, which also builds the initramfs both share: same
    kernel), then the default entry's ``docker_image=`` is rewritten before
    each boot: both images boot on the same disk under the same load, each
    after a boot of the other (its ``.previous`` is the other's rw layer).
    """
    apply_and_boot(machine, large, "ilarge", 0)
    times: dict[str, list[float]] = {small: [], large: []}
    for run in range(runs):
        for tag, name in ((small, "ismall"), (large, "ilarge")):
            conf = machine.refind_conf.read_text()
            start = conf.index('menuentry "Docker image')
            found = IMAGE_WORD.search(conf, start)
            if found is None:
                raise SystemExit("no docker_image= in the default entry of refind.conf")
            machine.refind_conf.write_text(conf[:found.start(1)] + tag + conf[found.end(1):])
            times[tag].append(boot_once(machine, f"{name}{run}"))
    print(f"interleaved: small {times[small]} large {times[large]}", flush=True)
    return statistics.median(times[small]), statistics.median(times[large])


def measure(machine: scenario.Machine, tag: str, name: str, runs: int,
            *user: str, baseline: Path | None = None) -> tuple[float, int, float, float | None]:
    """Median hook seconds, layers, size MiB, and the baseline's median (or None)."""
    if baseline is None:
        with wizard_from(None):
            return (*apply_and_boot(machine, tag, name, runs, *user), None)
    with wizard_from(baseline):
        apply_and_boot(machine, tag, f"base-{name}", 0, *user)
    old = default_initrd(machine)
    with wizard_from(None):
        _, layers, size = apply_and_boot(machine, tag, name, 0, *user)
    new = default_initrd(machine)
    times: dict[str, list[float]] = {old: [], new: []}
    for run in range(runs):  # alternating: the load of the machine changes over time
        for initrd, label in ((old, "base-"), (new, "")):
            default_initrd(machine, initrd)
            times[initrd].append(boot_once(machine, f"{label}{name}{run}"))
    default_initrd(machine, new)
    print(f"{name}: base {times[old]} new {times[new]}", flush=True)
    return statistics.median(times[new]), layers, size, statistics.median(times[old])


def boot_once(machine: scenario.Machine, name: str) -> float:
    serial, facts = scenario.boot(machine, name)
    if facts.get("done") != "yes":
        raise SystemExit(f"{name}: boot failed:\n{serial[-3000:]}")
    return hook_seconds(serial)


def apply_and_boot(machine: scenario.Machine, tag: str, name: str, runs: int,
                   *user: str) -> tuple[float, int, float]:
    with scenario.docker_on(machine) as daemon:
        result = scenario.run_apply(daemon, machine, "--image", tag, "--kernel-options",
                                    KERNEL_OPTIONS, "--yes", *user,
                                    password="bench-pass" if user else None)
        if result.returncode:
            raise SystemExit(result.stdout[-3000:] + result.stderr)
        layers, size = image_facts(daemon.host, tag)
    # The machine is noisy: the median of a few boots.
    times = [boot_once(machine, f"{name}{run}") for run in range(runs)]
    return (statistics.median(times) if times else 0.0), layers, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="boots per image (median shown)")
    parser.add_argument("--others", type=int, default=0,
                        help="then boot both again with this many other images in the store")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout: each image boots with its hook too (same disk)")
    parser.add_argument("--small-only", action="store_true",
                        help="the small image only (no large image, others or user)")
    parser.add_argument("--interleave", action="store_true",
                        help="only small and large, their boots alternating on one apply "
                             "(the layers ratio under the same load)")
    parser.add_argument("--machine", action="store_true",
                        help="also the sample systemd image with a real machine's top layer "
                             "(a user and admin, home, journal, the in-system updater)")
    args = parser.parse_args()
    bl = args.baseline.resolve() if args.baseline else None
    workdir = Path(tempfile.mkdtemp(prefix="dbw-bench-", dir="/var/tmp"))
    try:
        machine = scenario.new_machine(workdir, size="16G")
        with scenario.docker_on(machine) as daemon:
            scenario.build_image(daemon, "initramfs-tools", "bench/small:latest", marker="small")
            if args.machine:
                scenario.build_image(daemon, "initramfs-tools", "bench/machine:latest",
                                     marker="machine", systemd=True)
            if not args.small_only:
                build_large(daemon.host, "bench/small:latest", "bench/large:latest", args.layers,
                            args.files, workdir)
        runs = args.runs
        if args.interleave:
            small, large = interleaved(machine, "bench/small:latest", "bench/large:latest", runs)
            print(f"interleaved, median of {runs}: small {small:.3f} s, large {large:.3f} s, "
                  f"large / small {large / small:.2f}x")
            return
        rows = [("small (baseline)",
                 *measure(machine, "bench/small:latest", "small", runs, baseline=bl))]
        if not args.small_only:
            rows.append(("large", *measure(machine, "bench/large:latest", "large", runs,
                                           baseline=bl)))
        if args.others and not args.small_only:
            with scenario.docker_on(machine) as daemon:
                load_others(daemon, args.others, workdir)
            rows += [(f"small + {args.others} others",
                      *measure(machine, "bench/small:latest", "osmall", runs, baseline=bl)),
                     (f"large + {args.others} others",
                      *measure(machine, "bench/large:latest", "olarge", runs, baseline=bl))]
        if args.machine:
            # What users boot: the sample systemd image with a real machine's top layer
            # (home, journal, docker store and the booted system's updater are apply's
            # defaults; plus a user who is an administrator).  The test init still
            # powers the VM off: the hook's work does not depend on the init.
            rows.append(("systemd + machine", *measure(
                machine, "bench/machine:latest", "machine", runs, "--user", "alice",
                "--admin", "alice", baseline=bl)))
        # Last: the user stays in the top layer for every later apply.
        if not args.small_only:
            rows.append(("small + a user", *measure(machine, "bench/small:latest", "user", runs,
                                                    "--user", "alice", baseline=bl)))
        base = rows[0][1]
        print(f"{'image':18} {'layers':>6} {'size MiB':>9} {'hook s':>7} {'ratio':>6}"
              + (f" {'base s':>7} {'ratio':>6} {'new/base':>8}" if bl else ""))
        for name, seconds, layers, size, old in rows:
            line = f"{name:18} {layers:6d} {size:9.0f} {seconds:7.3f} {seconds / base:6.2f}x"
            if old is not None:
                line += f" {old:7.3f} {old / rows[0][4]:6.2f}x {seconds / old:8.2f}"
            print(line)
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
