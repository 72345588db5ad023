"""Benchmark: the boot hook's image resolve, before and after the layerdb walk.

On a loop btrfs (``lab.docker_disk``) two docker data-roots hold the same
three images: the debootstrapped sample rootfs imported (1 layer) and images
built FROM it with COPY of tiny files, 3 and 30 layers in all (no RUN, no
network); the second data-root also holds 200 tiny imported images with
distinct content: 200 more layerdb entries and repositories.json keys.

Each cell times ``dockerboot_resolve`` (image name -> top-layer subvolume)
of the core under ``busybox sh`` on this host, the run directory already
there as in ``dockerboot_main``, coreutils ``sha256sum`` in LIBEXEC as in the
initramfs.  BEFORE is the newest committed core without the layerdb walk
(``--before`` names another revision), AFTER the working tree's.  A sample is
one shell resolving ``--calls`` times (ms per resolve); rows and versions are
interleaved, the median of ``--runs`` samples is shown.  Processes per
resolve (forks, counted once with ``strace -f``) are what costs under QEMU
TCG, ~30 ms each, while a fork is well under a millisecond here.

    sudo python3 -m benchmarks.hook_resolve [--runs 7] [--calls 20]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import lab
from wizard.store.images import resolve_subvolume

ROOT = Path(__file__).resolve().parents[1]
CORE = "assets/hook/dockerboot-core.sh"
SMALL = "bench/small:1"
IMAGES = {1: SMALL, 3: "bench/tall:3", 30: "bench/tall:30"}
OTHERS = 200
STORES = {0: "docker", OTHERS: "docker-others"}   # others in the store -> data-root


def before_core(rev: str | None, out: Path) -> str:
    """The core at ``rev``, or at the newest commit whose core has no layerdb walk,
    with the parts it sources from its own directory (``out``'s)."""
    revs = [rev] if rev else subprocess.run(
        ["git", "-C", str(ROOT), "log", "--format=%H", "--", CORE],
        text=True, capture_output=True, check=True).stdout.split()
    for r in revs:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{r}:{CORE}"],
                              text=True, capture_output=True, check=True).stdout
        if rev or "_db_lwalk" not in text:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
            names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", r,
                                    f"{Path(CORE).parent}/"],
                                   text=True, capture_output=True, check=True).stdout.split()
            for name in names:
                if name.endswith(".sh") and name != CORE:
                    (out.parent / Path(name).name).write_text(subprocess.run(
                        ["git", "-C", str(ROOT), "show", f"{r}:{name}"],
                        text=True, capture_output=True, check=True).stdout)
            return r[:10]
    raise SystemExit("no committed core without the layerdb walk: give --before REV")


def fill_store(daemon: lab.Dockerd, work: Path, others: int) -> None:
    """The sample rootfs, 3- and 30-layer images FROM it, and ``others`` tiny images."""
    lab.import_rootfs(daemon, SMALL)
    ctx = work / "ctx"
    ctx.mkdir(exist_ok=True)
    for i in range(29):
        (ctx / f"f{i:02}").write_text(f"tiny layer {i}\n")
    for layers, tag in IMAGES.items():
        if layers > 1:
            copies = "".join(f"COPY f{i:02} /opt/f{i:02}\n" for i in range(layers - 1))
            (ctx / "Dockerfile").write_text(f"FROM {SMALL}\n{copies}")
            daemon.docker("build", "-q", "--network", "none", "-t", tag, ctx, timeout=900)

    def one(i: int) -> None:
        tar = lab.tar_of(work / f"other-{i}.tar", {"etc/other": f"other image {i}\n"})
        daemon.docker("import", tar, f"bench/other-{i}:1")
        tar.unlink()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(others)))


def resolve_cmd(core: Path, data_root: Path, ref: str, calls: int) -> list[str]:
    script = ('set -u; . "$1"; i=0; while [ "$i" -lt "$4" ]; do '
              'dockerboot_resolve "$2" "$3" || exit 1; i=$((i + 1)); done')
    return ["busybox", "sh", "-c", script, "bench", str(core), str(data_root), ref, str(calls)]


def run_env(work: Path, run_dir: Path) -> dict[str, str]:
    """The core's environment: LIBEXEC with coreutils sha256sum, the run directory
    (on tmpfs as /run at boot; it exists, as in dockerboot_main)."""
    lx = work / "libexec"
    if not lx.exists():
        lx.mkdir()
        (lx / "sha256sum").symlink_to("/usr/bin/sha256sum")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKERBOOT_")}
    env.update(DOCKERBOOT_RUNDIR=str(run_dir), DOCKERBOOT_LIBEXEC=str(lx))
    return env


def timed(cmd: list[str], env: dict[str, str], calls: int) -> tuple[float, str]:
    """Milliseconds per resolve, and the (last) subvolume printed."""
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, text=True, capture_output=True, check=True).stdout
    return (time.perf_counter() - start) * 1000 / calls, out.splitlines()[-1]


def forks(cmd: list[str], env: dict[str, str], work: Path) -> int | str:
    """Processes one resolve starts: clone/fork/vfork calls that made a child
    (``strace -f``; "-" without strace)."""
    if shutil.which("strace") is None:
        return "-"
    log = work / "strace.log"
    subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e", "trace=clone,clone3,fork,vfork",
                    *cmd], env=env, capture_output=True, check=True)
    return sum(1 for line in log.read_text().splitlines() if re.search(r"\) += \d+$", line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="samples per cell (median shown)")
    parser.add_argument("--calls", type=int, default=20, help="resolves per sample")
    parser.add_argument("--before", help="git revision of the BEFORE core")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loop devices, btrfs, a private dockerd)")
    work = Path(tempfile.mkdtemp(prefix="dbw-bench-resolve-", dir="/var/tmp"))
    shm = Path("/dev/shm")
    run_dir = Path(tempfile.mkdtemp(prefix="dbw-bench-run-", dir=shm if shm.is_dir() else work))
    try:
        cores = {"before": work / "before" / "dockerboot-core.sh", "after": ROOT / CORE}
        rev = before_core(args.before, cores["before"])
        with lab.docker_disk(work) as dd:
            fill_store(dd.daemon, work, 0)
            lab.run("btrfs", "subvolume", "create", dd.top / STORES[OTHERS])
            with lab.dockerd(dd.top / STORES[OTHERS]) as d2:
                fill_store(d2, work, OTHERS)
            lab.run("sync")
            rows = measure(dd.top, cores, args.runs, args.calls, run_env(work, run_dir), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    report(rows, rev, args.runs, args.calls)


Cell = tuple[int, int]                    # (layers, other images)
VERSIONS = ("before", "after")


@dataclass
class Row:
    """One cell: ms per resolve of each sample, and processes per resolve."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VERSIONS})
    forks: dict[str, int | str] = field(default_factory=dict)

    def median(self, version: str) -> float:
        return statistics.median(self.ms[version])


def measure(top: Path, cores: dict[str, Path], runs: int, calls: int, env: dict[str, str],
            work: Path) -> dict[Cell, Row]:
    cells = [(layers, others) for others in STORES for layers in IMAGES]
    rows = {cell: Row() for cell in cells}
    for layers, others in cells:
        data_root = top / STORES[others]
        expected = str(resolve_subvolume(data_root, IMAGES[layers]))
        for version in VERSIONS:
            cmd = resolve_cmd(cores[version], data_root, IMAGES[layers], 1)
            _, got = timed(cmd, env, 1)
            assert got == expected, (version, layers, others, got, expected)
            rows[(layers, others)].forks[version] = forks(cmd, env, work)
    for n in range(runs):  # interleaved: machine noise hits every cell alike
        for layers, others in cells:
            for version in VERSIONS if n % 2 == 0 else VERSIONS[::-1]:
                cmd = resolve_cmd(cores[version], top / STORES[others], IMAGES[layers], calls)
                rows[(layers, others)].ms[version].append(timed(cmd, env, calls)[0])
    return rows


def report(rows: dict[Cell, Row], rev: str, runs: int, calls: int) -> None:
    print(f"{'image':10} {'others':>6} {'before ms':>10} {'after ms':>9} {'after÷before':>13}"
          f" {'forks before/after':>19}")
    for (layers, others), row in rows.items():
        before, after = row.median("before"), row.median("after")
        name = f"{layers} layer" + ("s" if layers > 1 else "")
        print(f"{name:10} {others:6} {before:10.2f} {after:9.2f} {after / before:12.2f}×"
              f" {row.forks['before']:>10}/{row.forks['after']}")
    print()
    print(f"{'ratio':28} {'before':>8} {'after':>8}")
    for others in STORES:
        r = [rows[(30, others)].median(v) / rows[(3, others)].median(v) for v in VERSIONS]
        print(f"{f'30 vs 3 layers, {others} others':28} {r[0]:7.2f}× {r[1]:7.2f}×")
    for layers in IMAGES:
        r = [rows[(layers, OTHERS)].median(v) / rows[(layers, 0)].median(v) for v in VERSIONS]
        print(f"{f'{OTHERS} vs 0 others, {layers} layer(s)':28} {r[0]:7.2f}× {r[1]:7.2f}×")
    print(f"(busybox sh, median of {runs} samples of {calls} resolves each, interleaved; "
          f"before = core at {rev})")


if __name__ == "__main__":
    main()
