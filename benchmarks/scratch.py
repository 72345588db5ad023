"""What the timing benchmarks share: their ``--runs`` option and a scratch lab with one image."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.lab import lab, qemu
from wizard.flows import apply


def parse_runs(doc: str | None) -> argparse.Namespace:
    """The command line of a timing benchmark: ``--runs N`` (median shown)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median shown)")
    return parser.parse_args()


@contextlib.contextmanager
def scratch_lab(prefix: str, image: str) -> Iterator[tuple[lab.DockerDisk, Path]]:
    """As root: a lab disk in /var/tmp with ``image`` and an empty ESP, removed after."""
    apply.require_root()
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        with lab.docker_disk(work) as dd:
            lab.import_rootfs(dd.daemon, image)
            esp = work / "esp"
            qemu.make_esp(esp)
            yield dd, esp
    finally:
        shutil.rmtree(work, ignore_errors=True)
