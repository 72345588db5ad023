"""What the wizard writes on the ESP for GRUB or systemd-boot, and how it writes it.

A ``ChainPlan`` is made first (every file's old and new bytes, nothing
written), shown, then written by ``write_chain``: ``owned`` names the old and
the new bytes before any file changes, copies come before the entries that
name them, shim is the last file in the removable path, the user's own file
(``custom.cfg``, ``loader.conf``) after what it names, old generations' files
last.  Every write is atomic with a backup beside it (``write_atomic``).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from wizard.common.atomic import write_atomic
from wizard.common.errors import BootloaderError
from wizard.loaders import esp_files

OWN_DIR = esp_files.OWN_DIR
OWNED = esp_files.OWNED
REMOVABLE_DIR = "EFI/BOOT"
"""The removable path: what firmware with empty NVRAM boots."""
GRUB_ENV = "grubenv"
"""GRUB's count, rewritten in place by GRUB at every counted boot (no digest kept)."""


@dataclass(frozen=True)
class EspWrite:
    """One file the wizard writes on the ESP."""

    rel: str
    """Path from the ESP's root (``EFI/dockerboot/grub.cfg``)."""
    old: bytes | None
    new: bytes
    source: Path | None = None
    """A file read at write time (a kernel copy of a generation the same apply builds)."""
    digest: str | None = None
    """Set for a file found unchanged without reading it whole (a kernel copy the same as
    its source): its SHA-256, ``old`` and ``new`` then left empty."""


@dataclass(frozen=True)
class CustomWrite:
    """The distribution GRUB's ``custom.cfg`` with the wizard's block (way b)."""

    path: Path
    old: bytes | None
    new: bytes
    distro: str
    """Whose GRUB reads it: the directory on the ESP (``debian``)."""


@dataclass
class ChainPlan:
    """What apply writes on the ESP for GRUB, and what it leaves as it is."""

    esp: Path
    writes: list[EspWrite]
    kept: list[str] = field(default_factory=list)
    """One line per thing left alone (another system's removable path)."""
    cfg: str = ""
    """The rendered grub.cfg (what the Bootloader step and the Review show)."""
    custom: CustomWrite | None = None
    """Way (b): the block in the distribution's ``custom.cfg`` (then ``cfg`` is that file);
    systemd-boot: its ``loader.conf`` with the wizard's default."""
    removes: list[str] = field(default_factory=list)
    """The wizard's files to remove after the writes (systemd-boot's old generations)."""
    loader: str = "grub"
    """``grub`` or ``systemd-boot``."""

    @property
    def changed(self) -> list[EspWrite]:
        """The writes that change a byte (a copy made at write time always does)."""
        return [w for w in self.writes if w.source is not None or w.old != w.new]


def _digests(plan: ChainPlan, *, with_old: bool) -> dict[str, set[str]]:
    owned = {rel: set(ds) for rel, ds in esp_files.read_owned(plan.esp).items()}
    for w in plan.writes:
        if w.rel.startswith("loader/"):
            continue  # systemd-boot's entries: the wizard's by name (it renames them)
        # grubenv: GRUB rewrites it in place at every counted boot, so no digest.
        new = ({"-"} if w.rel.endswith(f"/{GRUB_ENV}") else {w.digest} if w.digest
               else {esp_files.digest(w.new)})
        keep = ({esp_files.digest(w.old)} if with_old and w.old is not None and w.rel in owned
                and w.digest is None else set())
        owned[w.rel] = new | keep
    return owned


def check_space(plan: ChainPlan) -> None:
    """Refuse, before anything is written, an ESP without room for the files and backups.

    Raises:
        BootloaderError: less free space than the new files, their backups and some slack.

    """
    # A copy made at write time (not built yet): as large as the largest file known.
    guess = max((len(w.new) for w in plan.writes), default=0) or (64 << 20)
    need = sum((guess if w.source is not None else len(w.new)) + len(w.old or b"")
               for w in plan.changed) + (256 << 10)
    free = shutil.disk_usage(plan.esp).free
    if free < need:
        raise BootloaderError(f"no space on the ESP {plan.esp} for GRUB and its backups "
                              f"({free} bytes free, {need} needed)",
                              "free space on the ESP, then run again")


def write_chain(plan: ChainPlan) -> Iterator[str]:
    """Write ``plan``'s files (atomic, backups kept); one line per file written or removed.

    ``owned`` first names the old and the new bytes of every file (a kill in
    between leaves files the next run still takes for the wizard's), then the
    files: copies before the entries naming them, the boot config before the
    removable path's loader (shim is the last thing there); then ``owned`` the
    new bytes only; then the user's file with the wizard's part (``custom``);
    last the old generations' files (``removes``), once nothing names them.

    Raises:
        BootloaderError: the ESP cannot be written.

    """
    try:
        if plan.writes:  # way (b) without counting: nothing of the wizard's on the ESP
            yield from _write_esp(plan)
    except OSError as e:
        raise BootloaderError(f"cannot write on the ESP {plan.esp}: {e.strerror}",
                              "mount the ESP read-write and run again") from e
    custom = plan.custom
    if custom is not None and custom.old != custom.new:
        try:  # after the files it names (and the count GRUB reads)
            backup = write_atomic(custom.path, custom.new, backup=custom.old is not None)
        except OSError as e:
            raise BootloaderError(f"cannot write {custom.path}: {e.strerror}",
                                  "mount it read-write and run again") from e
        yield f"wrote {custom.path}" + (f" (backup: {backup.name})" if backup else "")
    try:
        yield from _remove(plan)
    except OSError as e:
        raise BootloaderError(f"cannot remove old files on the ESP {plan.esp}: {e.strerror}",
                              "mount the ESP read-write and run again") from e


def _write_esp(plan: ChainPlan) -> Iterator[str]:
    # Copies made now (a generation this apply built): their bytes before ``owned``.
    writes = [replace(w, new=w.source.read_bytes(), source=None) if w.source else w
              for w in plan.writes]
    plan = replace(plan, writes=writes)
    own = esp_files.target(plan.esp, OWN_DIR)
    own.mkdir(parents=True, exist_ok=True)
    write_atomic(own / OWNED, esp_files.owned_bytes(_digests(plan, with_old=True)), backup=False)
    order = sorted(plan.changed, key=lambda w: (w.rel.startswith("loader/"),
                                                w.rel.startswith(REMOVABLE_DIR),
                                                w.rel.endswith("BOOTX64.EFI")))
    for w in order:
        path = esp_files.target(plan.esp, w.rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        # systemd-boot reads every file in loader/entries: the wizard's entries (made
        # again from the generations' records at every run) get no backup beside them.
        backup = write_atomic(path, w.new,
                              backup=w.old is not None and not w.rel.startswith("loader/"))
        yield f"wrote {path}" + (f" (backup: {backup.name})" if backup else "")
    write_atomic(own / OWNED, esp_files.owned_bytes(_digests(plan, with_old=False)),
                 backup=False)


def _remove(plan: ChainPlan) -> Iterator[str]:
    """The old generations' files: entries (the wizard's by name), copies still as written."""
    if not plan.removes:
        return
    owned = esp_files.read_owned(plan.esp)
    for rel in plan.removes:
        path = esp_files.existing(plan.esp, rel)
        ok, _ = esp_files.mine(plan.esp, rel, owned)
        if path is None:
            owned.pop(rel, None)
        elif path.is_symlink() or not path.is_file() or not (rel.startswith("loader/") or ok):
            yield f"kept {path}: not as dockerboot-wizard wrote it"
        else:
            path.unlink()
            owned.pop(rel, None)
            yield f"removed {path}"
            if not rel.startswith("loader/"):
                with contextlib.suppress(OSError):  # a generation's copies' directory, if empty
                    path.parent.rmdir()
    write_atomic(esp_files.target(plan.esp, f"{OWN_DIR}/{OWNED}"),
                 esp_files.owned_bytes(owned), backup=False)
