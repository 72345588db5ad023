"""The initramfs inputs' fingerprint: what decides whether an image change needs a build.

A generation's kernel + initramfs stay right for a new image exactly while
these stay the same: the generator that builds the initramfs, the kernel
version (``/lib/modules/<kver>`` of the booted root must match the running
kernel) and the wizard's hook assets baked into the initramfs.  Anything
else in the image (packages, files) reaches the machine by the O(1) snapshot
at the next boot, with no build.

The assets hash covers the files the build script installs for the given
generator (``build-initramfs.sh``, ``hook/`` and that generator's adapter),
so a changed mkinitcpio adapter does not rebuild an initramfs-tools machine.
``kernel_version_of`` reads the version a built kernel itself carries.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from wizard.common.resources import assets_dir

ADAPTERS = {"initramfs-tools": "initramfs-tools", "dracut": "dracut",
            "mkinitcpio": "mkinitcpio"}
"""Generator name -> its adapter directory under ``assets/``."""
COMMON_ASSETS = ("build-initramfs.sh", "hook")
"""Assets every initramfs build installs."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
KVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$")
"""What a kernel version (``uname -r``) may look like here: it becomes a path part."""


@dataclass(frozen=True)
class Fingerprint:
    """The inputs of one initramfs build."""

    generator: str
    """``initramfs-tools``, ``dracut`` or ``mkinitcpio``."""
    kernel_version: str
    """The kernel version built for (``uname -r``)."""
    assets: str
    """sha256 (hex) of the hook assets that went into the initramfs (``assets_hash``)."""

    def to_json(self) -> dict[str, str]:
        """The fingerprint as stored in a generation record."""
        return {"generator": self.generator, "kernel_version": self.kernel_version,
                "assets": self.assets}

    @classmethod
    def from_json(cls, data: object) -> Fingerprint:
        """Parse and validate a stored fingerprint.

        Raises:
            ValueError: a field is missing or not what ``to_json`` writes.

        """
        if not isinstance(data, dict):
            raise ValueError("not an object")
        generator, kver, assets = (data.get("generator"), data.get("kernel_version"),
                                   data.get("assets"))
        if generator not in ADAPTERS:
            raise ValueError(f"unknown generator {generator!r}")
        if not isinstance(kver, str) or not KVER_RE.match(kver):
            raise ValueError(f"invalid kernel_version {kver!r}")
        if not isinstance(assets, str) or not _HEX64.match(assets):
            raise ValueError(f"invalid assets hash {assets!r}")
        assert isinstance(generator, str)
        return cls(generator, kver, assets)

    def changes(self, other: Fingerprint | None) -> list[str]:
        """What differs from ``other`` (the newest generation's), in words; [] = no build."""
        if other is None:
            return ["no generation built yet"]
        out = []
        if self.kernel_version != other.kernel_version:
            out.append(f"kernel {other.kernel_version} -> {self.kernel_version}")
        if self.generator != other.generator:
            out.append(f"generator {other.generator} -> {self.generator}")
        if self.assets != other.assets:
            out.append("the wizard's hook changed")
        return out


def asset_files(root: Path, rel: str) -> list[tuple[str, Path]]:
    """The files of asset ``rel`` under ``root`` (a file or a tree): ``(name, path)``, sorted."""
    path = root / rel
    if path.is_file():
        return [(rel, path)]
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            out.append((full.relative_to(root).as_posix(), full))
    return out


def assets_hash(generator: str, assets: Path | None = None) -> str:
    """sha256 over the assets a build for ``generator`` installs: names and contents.

    Raises:
        ValueError: unknown generator.
        FileNotFoundError: an asset is missing (a broken install).

    """
    if generator not in ADAPTERS:
        raise ValueError(f"unknown generator {generator!r}")
    root = Path(assets) if assets is not None else assets_dir()
    h = hashlib.sha256()
    for rel in (*COMMON_ASSETS, ADAPTERS[generator]):
        if not (root / rel).exists():
            raise FileNotFoundError(f"asset {rel} missing under {root}")
        for name, path in asset_files(root, rel):
            data = path.read_bytes()
            # Length-prefixed fields: no two different trees hash alike.  No modes:
            # the build script sets them itself, and a wheel may not keep them.
            h.update(f"{len(name)}:{name}:{len(data)}:".encode())
            h.update(data)
    return h.hexdigest()


def fingerprint(generator: str, kernel_version: str, assets: Path | None = None) -> Fingerprint:
    """The fingerprint of a build for ``generator`` and ``kernel_version`` with these assets."""
    return Fingerprint(generator, kernel_version, assets_hash(generator, assets))


def kernel_version_of(kernel: Path) -> str | None:
    """``uname -r`` of an x86 bzImage, read from its setup header; None if not one.

    The header (Linux boot protocol ≥ 2.00) has ``HdrS`` at 0x202 and at 0x20E
    the offset (minus 0x200) of a NUL-terminated string that starts with the
    version.  Used to name a legacy pair and to check that a build copied the
    kernel it was asked for.
    """
    try:
        with open(kernel, "rb", opener=lambda p, fl: os.open(p, fl | os.O_NOFOLLOW)) as f:
            head = f.read(0x210)
            if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
                return None
            f.seek(int.from_bytes(head[0x20E:0x210], "little") + 0x200)
            text = f.read(256).split(b"\0", 1)[0].decode("ascii", "replace")
    except OSError:
        return None
    version = text.split(" ", 1)[0]
    return version if KVER_RE.match(version) else None
