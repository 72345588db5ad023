"""Step 5: build kernel + initramfs inside a throwaway container of the boot image.

The generator the image itself uses (initramfs-tools, dracut or mkinitcpio)
runs in a container of that image, so kernel, initramfs modules and
``/lib/modules`` of the booted root always match.  The wizard's hook assets
are bind-mounted read-only; the results land in a scratch directory next to
``boot_dir`` and are renamed over ``vmlinuz``/``initrd.img`` only when both
are complete, so a failed or cancelled build leaves the old pair untouched.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from wizard.atomic import replace_atomic
from wizard.errors import DockerError, ImageError, InitramfsError
from wizard.events import Event, LogLine, Progress, StepDone, StepStarted, check_cancel
from wizard.resources import assets_dir

GENERATORS = ("dracut", "mkinitcpio", "initramfs-tools")
"""Supported generators, in the order preferred when an image has several.

Debian keeps ``initramfs-tools-core`` (and so ``mkinitramfs``) installed next
to dracut, and Arch can carry dracut beside mkinitcpio: the one a user added
on purpose is the likelier choice, hence dracut first."""

_BINARY_TO_GENERATOR = {"mkinitramfs": "initramfs-tools", "dracut": "dracut",
                        "mkinitcpio": "mkinitcpio"}

# Runs as /bin/sh -c in the image; prints "kernel <kver> <path>", "generator
# <binary>" and "btrfs <path>" lines.  /lib is often a symlink to /usr/lib,
# so the same kernel may be listed twice; the parser deduplicates.
PROBE = r"""
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for d in /lib/modules/* /usr/lib/modules/*; do
  [ -d "$d" ] || continue
  k=${d##*/}
  for f in "/boot/vmlinuz-$k" "$d/vmlinuz"; do
    if [ -f "$f" ]; then echo "kernel $k $f"; break; fi
  done
done
for g in mkinitramfs dracut mkinitcpio; do
  p=$(command -v "$g" 2>/dev/null) && echo "generator $g $p"
done
p=$(command -v btrfs 2>/dev/null) && echo "btrfs $p"
exit 0
"""

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
STAGED_KERNEL = "vmlinuz.new"
"""Name of the built kernel inside a scratch/staged directory."""
STAGED_INITRD = "initrd.img.new"
"""Name of the built initramfs inside a scratch/staged directory."""


@dataclass(frozen=True)
class BuildTarget:
    """What to build, as found in the image by ``detect``."""

    generator: str
    """``initramfs-tools``, ``dracut`` or ``mkinitcpio``."""
    kver: str
    """Kernel version, the directory name under ``/lib/modules``."""
    kernel_path: str
    """Path of the kernel image inside the image."""


@dataclass(frozen=True)
class ProbeResult:
    """Parsed output of the in-image probe."""

    kernels: dict[str, str]
    """Kernel version -> kernel image path (only versions that have an image)."""
    generators: tuple[str, ...]
    """Generators found on PATH, as names from ``GENERATORS``."""
    btrfs: str | None
    """Path of the ``btrfs`` binary, or None."""


class InitramfsBuildError(InitramfsError):
    """The generator (or the build script) failed; ``log_tail`` holds its last lines."""

    def __init__(self, problem: str, fix: str = "", log_tail: list[str] | None = None) -> None:
        super().__init__(problem, fix)
        self.log_tail: list[str] = list(log_tail or [])
        """The last lines of the container's output, for an error view."""


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that orders kernel versions like ``sort -V``.

    Digit runs compare as numbers, everything else as text, so
    ``6.1.0-10-amd64`` sorts after ``6.1.0-9-amd64``.
    """
    return tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok)
                 for tok in re.findall(r"\d+|\D+", version))


def newest_kernel(versions: list[str] | tuple[str, ...] | set[str]) -> str:
    """The newest of several kernel versions (by ``version_key``)."""
    return max(versions, key=version_key)


def parse_probe(output: str) -> ProbeResult:
    """Parse the probe script's output (unknown lines are ignored)."""
    kernels: dict[str, str] = {}
    found: set[str] = set()
    btrfs = None
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "kernel":
            kernels.setdefault(parts[1], parts[2])
        elif len(parts) == 3 and parts[0] == "generator" and parts[1] in _BINARY_TO_GENERATOR:
            found.add(_BINARY_TO_GENERATOR[parts[1]])
        elif len(parts) == 2 and parts[0] == "btrfs":
            btrfs = parts[1]
    return ProbeResult(kernels, tuple(g for g in GENERATORS if g in found), btrfs)


def choose_target(image: str, probe: ProbeResult, generator: str | None = None) -> BuildTarget:
    """Pick kernel and generator from a probe, or say what the image lacks.

    Args:
        image: the image reference, for messages.
        probe: the parsed probe output.
        generator: force this generator instead of the preferred one.

    Raises:
        InitramfsError: no kernel, no btrfs-progs, or no (or not the forced) generator.

    """
    if not probe.kernels:
        raise InitramfsError(
            f"image {image} has no kernel in /lib/modules",
            "add `linux-image-amd64` (Debian) / `linux` (Arch) / `kernel` (Fedora) "
            "to its Dockerfile")
    if probe.btrfs is None:
        raise InitramfsError(
            f"image {image} has no `btrfs` binary, which the boot hook needs",
            "add `btrfs-progs` to its Dockerfile")
    if generator is not None:
        if generator not in GENERATORS:
            raise InitramfsError(f"unknown initramfs generator {generator!r}",
                                 f"use one of {', '.join(GENERATORS)}")
        if generator not in probe.generators:
            raise InitramfsError(f"image {image} does not have {generator}",
                                 f"add `{generator}` to its Dockerfile or pick another generator")
        chosen = generator
    elif probe.generators:
        chosen = probe.generators[0]
    else:
        raise InitramfsError(
            f"image {image} has no initramfs generator (mkinitramfs, dracut or mkinitcpio)",
            "add `initramfs-tools` (Debian/Ubuntu) / `mkinitcpio` (Arch) / `dracut` (Fedora) "
            "to its Dockerfile")
    kver = newest_kernel(list(probe.kernels))
    return BuildTarget(chosen, kver, probe.kernels[kver])


def detect(client: docker.DockerClient, image: str, *, generator: str | None = None) -> BuildTarget:
    """Find kernel version, generator and btrfs-progs inside ``image``.

    Runs a small ``sh`` probe in a throwaway container (no network, always
    removed; a missing image is never pulled).  With several kernels the newest (version sort) wins.

    Args:
        client: a ``docker.DockerClient``.
        image: image reference, e.g. ``"desktop:latest"``.
        generator: force a generator (see ``GENERATORS``) instead of the preferred one.

    Returns:
        The ``BuildTarget`` for ``build``.

    Raises:
        ImageError: the image does not exist locally.
        InitramfsError: the image has no /bin/sh, kernel, btrfs-progs or generator.
        DockerError: the daemon failed.

    """
    # user 0:0, not "root": an image without /etc/passwd cannot resolve names.
    # containers.run() would pull a missing image (from Docker Hub): create it
    # explicitly instead, so a missing image is an error and never a pull.
    container = None
    try:
        container = client.containers.create(
            image, ["-c", PROBE], entrypoint="/bin/sh", user="0:0", network_mode="none",
            labels={"dockerboot-wizard": "probe"})
        container.start()
        status = container.wait().get("StatusCode", -1)
        out = container.logs(stdout=True, stderr=False)
        err = container.logs(stdout=False, stderr=True)
    except docker.errors.ImageNotFound as e:
        raise ImageError(f"image {image} is not present locally",
                         "pull or build it first") from e
    except docker.errors.APIError as e:
        if "no such file" in str(e).lower() or "executable file not found" in str(e).lower():
            raise InitramfsError(f"image {image} has no /bin/sh",
                                 "base the image on a distribution with a shell") from e
        raise DockerError(f"docker could not run a probe container of {image}: "
                          f"{e.explanation or e}", "check the docker daemon") from e
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    if status != 0:
        raise InitramfsError(f"probing image {image} failed: {_first_line(err)}",
                             "the image needs a working POSIX /bin/sh")
    text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
    return choose_target(image, parse_probe(text), generator)


def _first_line(data: Any) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no output"


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
        ImageError: the image does not exist locally.
        DockerError: the container could not be created or started.

    """
    boot_dir = Path(boot_dir)
    assets = Path(assets) if assets is not None else assets_dir()
    yield StepStarted("initramfs", f"Building {target.generator} initramfs for kernel "
                                   f"{target.kver} in {image}")
    check_cancel(cancel)
    boot_dir.mkdir(parents=True, exist_ok=True)
    # Same filesystem as boot_dir, so the final renames are atomic.
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=boot_dir))
    container = None
    finished = threading.Event()
    keep_scratch = False
    try:
        try:
            container = client.containers.create(
                image, ["/dockerboot/build-initramfs.sh", target.generator, target.kver, "/out",
                        image_name, image_tag],
                entrypoint="/bin/sh", user="0:0", network_mode="none",
                labels={"dockerboot-wizard": "initramfs"},
                volumes={str(assets): {"bind": "/dockerboot", "mode": "ro"},
                         str(scratch): {"bind": "/out", "mode": "rw"}})
            container.start()
        except docker.errors.ImageNotFound as e:
            raise ImageError(f"image {image} is not present locally",
                             "pull or build it first") from e
        except docker.errors.APIError as e:
            raise DockerError(f"cannot start a build container of {image}: "
                              f"{e.explanation or e}", "check the docker daemon") from e
        # A silent generator must still be cancellable: a watcher kills the
        # container, which ends the log stream below.
        watcher = threading.Thread(target=_kill_on_cancel, args=(container, cancel, finished),
                                   name="initramfs-cancel", daemon=True)
        watcher.start()
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        done = 0.0
        yield Progress(done, 1.0, "starting")
        for line in _lines(container.logs(stream=True, follow=True)):
            tail.append(line)
            yield LogLine(line)
            fraction = phase_progress(line)
            if fraction is not None and fraction > done:
                done = fraction
                yield Progress(fraction, 1.0, line.removeprefix("dockerboot-build: "))
            check_cancel(cancel)
        status = container.wait().get("StatusCode", -1)
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
        # Also on GeneratorExit (the consumer stopped iterating): no container,
        # no scratch files left behind, the old pair untouched.
        finished.set()
        if container is not None:
            # Already gone or being removed by the daemon: nothing left to do.
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
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


def _kill_on_cancel(container: Any, cancel: threading.Event, finished: threading.Event) -> None:
    while not finished.is_set():
        if cancel.wait(0.2):
            # It may have exited on its own in the meantime.
            with contextlib.suppress(docker.errors.APIError):
                container.kill()
            return
