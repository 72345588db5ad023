"""Step 5, first half: what the boot image offers for building its initramfs.

A throwaway probe container of the image reports its kernels, its initramfs
generator(s) and btrfs-progs; ``detect`` turns that into a ``BuildTarget``
or one message naming what to add to the Dockerfile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wizard.common.errors import InitramfsError
from wizard.common.resources import assets_dir
from wizard.store.containers import throwaway

if TYPE_CHECKING:  # the SDK costs ~0.1 s: imported where it is used
    import docker

GENERATORS = ("dracut", "mkinitcpio", "initramfs-tools")
"""Supported generators, in the order preferred when an image has several.

Debian keeps ``initramfs-tools-core`` (and so ``mkinitramfs``) installed next
to dracut, and Arch can carry dracut beside mkinitcpio: the one a user added
on purpose is the likelier choice, hence dracut first."""

_BINARY_TO_GENERATOR = {"mkinitramfs": "initramfs-tools", "dracut": "dracut",
                        "mkinitcpio": "mkinitcpio"}

PROBE_ASSET = "selfupdate/probe-image.sh"
"""The probe script (under ``assets/``), shared with the booted system's dockerboot-update."""


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

    Runs a small ``sh`` probe in a throwaway container (``containers.throwaway``:
    no network, always removed, a missing image is never pulled).  With several
    kernels the newest (version sort) wins.

    Args:
        client: a ``docker.DockerClient``.
        image: image reference, e.g. ``"desktop:latest"``.
        generator: force a generator (see ``GENERATORS``) instead of the preferred one.

    Returns:
        The ``BuildTarget`` for ``build``.

    Raises:
        ImageError: the image does not exist locally, has no /bin/sh, or docker
            cannot create or start the probe container.
        InitramfsError: the image has no kernel, btrfs-progs or generator, or
            the probe failed.

    """
    # user 0:0 (throwaway's default), not "root": an image without /etc/passwd
    # cannot resolve names.
    with throwaway(client, image, purpose="probe", entrypoint="/bin/sh",
                   command=["-c", (assets_dir() / PROBE_ASSET).read_text()]) as box:
        box.start()
        status = box.container.wait().get("StatusCode", -1)
        out = box.container.logs(stdout=True, stderr=False)
        err = box.container.logs(stdout=False, stderr=True)
    if status != 0:
        raise InitramfsError(f"probing image {image} failed: {_first_line(err)}",
                             "the image needs a working POSIX /bin/sh")
    text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
    return choose_target(image, parse_probe(text), generator)


def _first_line(data: bytes | str | None) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no output"
