"""Step 5: build kernel + initramfs inside a throwaway container of the boot image.

The generator the image itself uses (initramfs-tools, dracut or mkinitcpio)
runs in a container of that image, so kernel, initramfs modules and
``/lib/modules`` of the booted root always match.  The wizard's hook assets
are bind-mounted read-only; the results land in a scratch directory next to
``boot_dir`` and are renamed over ``vmlinuz``/``initrd.img`` only when both
are complete, so a failed or cancelled build leaves the old pair untouched.
Finding what to build for (``detect``) lives in ``wizard.boot.initramfs_detect``
and is re-exported here.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.boot.initramfs_detect import GENERATORS as GENERATORS
from wizard.boot.initramfs_detect import BuildTarget as BuildTarget
from wizard.boot.initramfs_detect import ProbeResult as ProbeResult
from wizard.boot.initramfs_detect import choose_target as choose_target
from wizard.boot.initramfs_detect import detect as detect
from wizard.boot.initramfs_detect import newest_kernel as newest_kernel
from wizard.boot.initramfs_detect import parse_probe as parse_probe
from wizard.boot.initramfs_detect import version_key as version_key
from wizard.common.atomic import replace_atomic
from wizard.common.errors import InitramfsError
from wizard.common.events import Event, LogLine, Progress, StepDone, StepStarted, check_cancel
from wizard.common.resources import assets_dir
from wizard.store.containers import ASSETS_MOUNT, throwaway

if TYPE_CHECKING:  # the SDK costs ~0.1 s: imported where it is used
    import docker
    from docker.models.containers import Container

# Phases announced by assets/build-initramfs.sh, mapped to coarse progress.
_PHASES = (("installing the dockerboot hook", 0.05), ("running ", 0.15),
           ("copying kernel", 0.9), ("done", 1.0))
# Milestones the generators themselves print (mkinitramfs prints nothing).
_MILESTONES = (("*** Including modules done ***", 0.4),                  # dracut
               ("*** Resolving executable dependencies ***", 0.5),
               ("*** Creating image file", 0.7),
               ("==> Starting build:", 0.2),                            # mkinitcpio
               ("==> Generating module dependencies", 0.6),
               ("==> Creating ", 0.7))
_TAIL_LINES = 40
SCRATCH_PREFIX = ".build-"
"""Scratch/staged build directories inside ``boot_dir`` start with this."""
STAGED_KERNEL = "vmlinuz.new"
"""Name of the built kernel inside a scratch/staged directory."""
STAGED_INITRD = "initrd.img.new"
"""Name of the built initramfs inside a scratch/staged directory."""


class InitramfsBuildError(InitramfsError):
    """The generator (or the build script) failed; ``log_tail`` holds its last lines."""

    def __init__(self, problem: str, fix: str = "", log_tail: list[str] | None = None) -> None:
        super().__init__(problem, fix)
        self.log_tail: list[str] = list(log_tail or [])
        """The last lines of the container's output, for an error view."""


def phase_progress(line: str) -> float | None:
    """Coarse progress (0..1) a build log line stands for, else None.

    Knows the build script's ``dockerboot-build:`` phases and a few
    milestones dracut and mkinitcpio print; callers keep progress monotonic.
    """
    if line.startswith("dockerboot-build: "):
        what = line.removeprefix("dockerboot-build: ")
        return next((f for prefix, f in _PHASES if what.startswith(prefix)), None)
    return next((f for needle, f in _MILESTONES if needle in line), None)


def failure_message(target: BuildTarget, tail: list[str]) -> str:
    """The one-line problem for a failed build, taken from the script's error line."""
    for line in reversed(tail):
        if line.startswith("dockerboot-build: error: "):
            return line.removeprefix("dockerboot-build: error: ")
    return f"{target.generator} failed for kernel {target.kver}"


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Split a docker log byte stream (arbitrary chunk borders) into text lines."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *done, buf = buf.split(b"\n")
        for raw in done:
            yield raw.decode("utf-8", "replace").rstrip("\r")
    if buf:
        yield buf.decode("utf-8", "replace").rstrip("\r")


def build(client: docker.DockerClient, image: str, target: BuildTarget, boot_dir: Path, *,
          image_name: str, image_tag: str, cancel: threading.Event,
          assets: Path | None = None,
          stage_only: bool = False) -> Generator[Event, None, Path | None]:
    """Build kernel + initramfs in a container of ``image`` into ``boot_dir``.

    Yields ``StepStarted``, one ``LogLine`` per output line, coarse
    ``Progress`` and finally ``StepDone``.  ``boot_dir/vmlinuz`` and
    ``boot_dir/initrd.img`` are replaced (fsync + rename) only after both new
    files are complete and non-empty.  The scratch directory and the
    container are removed in every case.

    Args:
        client: a ``docker.DockerClient``.
        image: image reference to run (usually ``f"{image_name}:{image_tag}"``).
        target: what ``detect`` found.
        boot_dir: the ``boot_docker`` directory on the btrfs partition.
        image_name: default image name baked into ``/etc/docker-btrfs.json``.
        image_tag: default tag baked into ``/etc/docker-btrfs.json``.
        cancel: set it to stop: the container is killed, nothing is replaced.
        assets: assets directory to mount (default: ``resources.assets_dir()``).
        stage_only: build but replace nothing: the finished pair stays in its
            scratch directory inside ``boot_dir`` (``STAGED_KERNEL`` and
            ``STAGED_INITRD``), the final ``StepDone`` names it, and the
            generator returns it (``staged = yield from build(...)``) for
            ``install_staged`` to swap in later.

    Returns:
        The staged directory with ``stage_only``, else None.

    Raises:
        Cancelled: ``cancel`` was set; the old kernel/initramfs are untouched.
        InitramfsBuildError: the generator failed (``log_tail`` has its last lines).
        ImageError: the image does not exist locally, or docker cannot create or
            start the container.

    """
    boot_dir = Path(boot_dir)
    assets = Path(assets) if assets is not None else assets_dir()
    yield StepStarted("initramfs", f"Building {target.generator} initramfs for kernel "
                                   f"{target.kver} in {image}")
    check_cancel(cancel)
    boot_dir.mkdir(parents=True, exist_ok=True)
    # Earlier builds never installed (a crash, an abandoned wizard) are stale now.
    remove_stale_builds(boot_dir)
    # Same filesystem as boot_dir, so the final renames are atomic.
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=boot_dir))
    keep_scratch = False
    try:
        with throwaway(client, image, purpose="initramfs", entrypoint="/bin/sh",
                       command=[f"{ASSETS_MOUNT}/build-initramfs.sh", target.generator,
                                target.kver, "/out", image_name, image_tag],
                       assets=assets, writable={scratch: "/out"}) as box:
            box.start()
            with _killed_on_cancel(box.container, cancel):
                tail: deque[str] = deque(maxlen=_TAIL_LINES)
                done = 0.0
                yield Progress(done, 1.0, "starting")
                for line in _lines(box.container.logs(stream=True, follow=True)):
                    tail.append(line)
                    yield LogLine(line)
                    fraction = phase_progress(line)
                    if fraction is not None and fraction > done:
                        done = fraction
                        yield Progress(fraction, 1.0, line.removeprefix("dockerboot-build: "))
                    check_cancel(cancel)
                status = box.container.wait().get("StatusCode", -1)
        check_cancel(cancel)
        if status != 0:
            raise InitramfsBuildError(
                f"building the initramfs in {image} failed: {failure_message(target, list(tail))}",
                "see the build log; fix the image (its Dockerfile) and run the step again",
                list(tail))
        new_kernel, new_initrd = scratch / STAGED_KERNEL, scratch / STAGED_INITRD
        for f in (new_kernel, new_initrd):
            if not f.is_file() or f.stat().st_size == 0:
                raise InitramfsBuildError(f"the build in {image} left no complete {f.name}",
                                          "see the build log and run the step again",
                                          list(tail))
        if stage_only:
            keep_scratch = True
            yield StepDone("initramfs", f"staged in {scratch} ({target.generator}, "
                                        f"kernel {target.kver}); nothing replaced yet")
            return scratch
        replace_atomic(new_initrd, boot_dir / "initrd.img")
        replace_atomic(new_kernel, boot_dir / "vmlinuz")
        yield StepDone("initramfs", f"{boot_dir / 'vmlinuz'} and {boot_dir / 'initrd.img'} "
                                    f"({target.generator}, kernel {target.kver})")
        return None
    finally:
        # Also on GeneratorExit (the consumer stopped iterating): the container
        # is gone already (``throwaway``), no scratch files stay, the old pair
        # is untouched.
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def install_staged(staged_dir: Path, boot_dir: Path) -> tuple[Path, Path]:
    """Swap a ``build(..., stage_only=True)`` result in: the atomic renames, then cleanup.

    The initramfs is renamed first and the kernel last, exactly as ``build``
    does, so the pair is only ever mixed if the machine dies between two
    renames on the same filesystem.

    Args:
        staged_dir: the directory ``build`` returned (inside ``boot_dir``).
        boot_dir: the ``boot_docker`` directory to install into.

    Returns:
        The installed ``(vmlinuz, initrd.img)`` paths.

    Raises:
        InitramfsError: the staged pair is missing or incomplete.

    """
    staged_dir, boot_dir = Path(staged_dir), Path(boot_dir)
    new_kernel, new_initrd = staged_dir / STAGED_KERNEL, staged_dir / STAGED_INITRD
    for f in (new_kernel, new_initrd):
        if not f.is_file() or f.stat().st_size == 0:
            raise InitramfsError(f"the staged build in {staged_dir} has no complete {f.name}",
                                 "build the initramfs again")
    kernel, initrd = boot_dir / "vmlinuz", boot_dir / "initrd.img"
    replace_atomic(new_initrd, initrd)
    replace_atomic(new_kernel, kernel)
    shutil.rmtree(staged_dir, ignore_errors=True)
    return kernel, initrd


def remove_stale_builds(boot_dir: Path) -> list[Path]:
    """Remove every scratch/staged build directory in ``boot_dir``; return what went.

    ``build`` calls it first: one wizard configures a partition at a time, so
    any earlier ``.build-*`` directory is a leftover (a crash, a quit).
    """
    gone = []
    with contextlib.suppress(FileNotFoundError):
        for entry in Path(boot_dir).iterdir():
            if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir() \
                    and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
                gone.append(entry)
    return gone


def discard_staged(boot_dir: Path, staged_dir: Path) -> bool:
    """Remove one staged build that will not be installed; True if it was there.

    Raises:
        InitramfsError: ``staged_dir`` is not a build directory directly in ``boot_dir``
            (refused: nothing else is ever removed).

    """
    boot_dir, staged_dir = Path(boot_dir), Path(staged_dir)
    if staged_dir.parent.resolve() != boot_dir.resolve() \
            or not staged_dir.name.startswith(SCRATCH_PREFIX) or staged_dir.is_symlink():
        raise InitramfsError(f"{staged_dir} is not a staged build in {boot_dir}",
                             "remove it by hand if it is a leftover")
    if not staged_dir.is_dir():
        return False
    shutil.rmtree(staged_dir, ignore_errors=True)
    return True


@contextlib.contextmanager
def _killed_on_cancel(container: Container, cancel: threading.Event) -> Iterator[None]:
    """Kill ``container`` when ``cancel`` is set while the block runs.

    A silent generator must still be cancellable: killing the container
    ends its log stream, which the block is reading.
    """
    import docker.errors
    import requests.exceptions

    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(0.2):
                # It may have exited on its own in the meantime, or the daemon died.
                with contextlib.suppress(docker.errors.DockerException,
                                         requests.exceptions.RequestException):
                    container.kill()
                return

    threading.Thread(target=watch, name="initramfs-cancel", daemon=True).start()
    try:
        yield
    finally:
        # Before the container is removed: no kill of a removed container.
        finished.set()
