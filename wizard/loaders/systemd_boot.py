"""systemd-boot: Boot Loader Specification entries, the kernels copied to the ESP (DESIGN §4c).

systemd-boot reads only the ESP (platform-facts §10, §11): each generation's
kernel + initramfs is copied to ``EFI/dockerboot/<label>/<n>/`` and an entry
``loader/entries/dockerboot-<label>-<n>.conf`` names them, for the default
and the previous generation.  Copies and entries of generations that leave
the menu are removed: only the wizard's (the copies' SHA-256 is in
``EFI/dockerboot/owned``; the entries are the wizard's by their name).

Boot counting is systemd's own (Automatic Boot Assessment): a new generation's
entry is written as ``…+3.conf``; systemd-boot renames it at every try
(``+2-1``…) and sorts an entry with no try left after the others, so the
previous generation is then chosen; the booted system's good mark renames it
to the plain name, as ``systemd-bless-boot`` does.  ``loader.conf`` is left as
it is unless the user makes the wizard's entries the default
(``Settings.default_entry == "yes"``): then its ``default`` is
``dockerboot-<label>-*`` (the user's own line commented out, a backup kept).
Debian 12's systemd-boot is unsigned: Secure Boot must be off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wizard.common.errors import BootloaderError
from wizard.loaders import esp_files, esp_plan, grub

ENTRIES_DIR = "loader/entries"
LOADER_CONF = "loader/loader.conf"
BINARY = "EFI/systemd/systemd-bootx64.efi"
TRIES = grub.TRIES
REPLACED = "#dockerboot-wizard replaced: "
OURS = "# dockerboot-wizard: its entries are the default"
_COUNTER = re.compile(r"^(?P<id>.+?)(?:\+(?P<left>\d+)(?:-(?P<done>\d+))?)?\.conf$")


def token(label: str) -> str:
    """The label as it may stand in an entry's name and a FAT path (``[A-Za-z0-9_.-]``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)


def entry_id(label: str, number: int) -> str:
    """``dockerboot-<label>-<n>``: the entry's name without its counter."""
    return f"dockerboot-{token(label)}-{number}"


def find(esp: Path) -> Path | None:
    """``loader/`` of a systemd-boot installed on ``esp`` (its binary or loader.conf), or None."""
    loader = esp_files.existing(esp, "loader")
    installed = (esp_files.existing(esp, BINARY) is not None
                 or esp_files.existing(esp, LOADER_CONF) is not None)
    return loader if installed and loader is not None and loader.is_dir() else None


def counter(name: str) -> tuple[str, int | None, int]:
    """(entry id, tries left or None when not counted, tries done) of an entry file's name."""
    m = _COUNTER.match(name)
    if m is None:
        return name, None, 0
    left = int(m["left"]) if m["left"] is not None else None
    return m["id"], left, int(m["done"] or 0)


def ours(esp: Path, label: str) -> dict[int, str]:
    """The wizard's entries on ``esp`` for ``label``: generation -> the file's name now."""
    entries = esp_files.existing(esp, ENTRIES_DIR)
    prefix = f"dockerboot-{token(label)}-"
    out: dict[int, str] = {}
    if entries is None or not entries.is_dir():
        return out
    for path in entries.iterdir():
        ident, _, _ = counter(path.name)
        if ident.startswith(prefix) and ident[len(prefix):].isdigit() and path.is_file() \
                and not path.is_symlink():
            out[int(ident[len(prefix):])] = path.name
    return out


@dataclass(frozen=True)
class BootEntry:
    """One generation in systemd-boot's menu: its entry and the files it copies to the ESP."""

    number: int
    title: str
    kernel: Path
    """The kernel on the partition (copied at write time: a new one is built by then)."""
    initrd: Path
    cmdline: str


def render_entry(label: str, e: BootEntry) -> str:
    """The entry file (BLS Type #1): title, version, sort key, the copies, the options."""
    base = f"/{esp_files.OWN_DIR}/{token(label)}/{e.number}"
    return (f"# Written by dockerboot-wizard; replaced on every apply, removed with generation "
            f"{e.number}\n"
            f"title {e.title}\n"
            f"version {e.number}\n"
            "sort-key dockerboot\n"
            f"linux {base}/{e.kernel.name}\n"
            f"initrd {base}/{e.initrd.name}\n"
            f"options {e.cmdline}\n")


def copies(label: str, e: BootEntry) -> list[tuple[str, Path]]:
    """(path on the ESP, source on the partition) of ``e``'s kernel and initramfs."""
    base = f"{esp_files.OWN_DIR}/{token(label)}/{e.number}"
    return [(f"{base}/{e.kernel.name}", e.kernel), (f"{base}/{e.initrd.name}", e.initrd)]


def plan_entries(esp: Path, label: str, entries: list[BootEntry], *,
                 counting: bool) -> tuple[list[esp_plan.EspWrite], list[str]]:
    """The entries and copies to write, and the wizard's files to remove (old generations).

    An entry already there keeps its name (and so its count); a new newest
    generation with a previous one to fall back to is written ``+TRIES``
    when ``counting``.

    Raises:
        BootloaderError: a copy's place holds a file the wizard did not write.

    """
    owned = esp_files.read_owned(esp)
    now = ours(esp, label)
    writes: list[esp_plan.EspWrite] = []
    for i, e in enumerate(entries):
        for rel, source in copies(label, e):
            writes.append(_copy(esp, rel, source, owned))
        name = now.get(e.number) or (f"{entry_id(label, e.number)}+{TRIES}.conf"
                                     if i == 0 and counting and len(entries) > 1
                                     else f"{entry_id(label, e.number)}.conf")
        rel = f"{ENTRIES_DIR}/{name}"
        path = esp_files.existing(esp, rel)
        if path is not None and (path.is_symlink() or not path.is_file()):
            raise BootloaderError(f"{path} is not a plain file: the wizard never writes "
                                  "through a link", "move it away, then run again")
        old = path.read_bytes() if path is not None else None
        writes.append(esp_plan.EspWrite(rel, old, render_entry(label, e).encode()))
    keep = {e.number for e in entries}
    removes = [f"{ENTRIES_DIR}/{name}" for n, name in sorted(now.items()) if n not in keep]
    # Only a copy's own shape, <base><n>/<name>: a planted line in ``owned`` naming
    # ``<base>1/../../../x/2/y`` would walk out of the wizard's directory.
    copy = re.compile(re.escape(f"{esp_files.OWN_DIR}/{token(label)}/") + r"([0-9]+)/([^/]+)")
    removes += sorted(rel for rel in owned if (m := copy.fullmatch(rel))
                      and m[2] not in (".", "..") and int(m[1]) not in keep)
    return writes, removes


def _copy(esp: Path, rel: str, source: Path, owned: dict[str, set[str]]) -> esp_plan.EspWrite:
    """The write of one kernel copy; the same bytes as its source are found by digest.

    The everyday case, an update with nothing to do, reads neither file whole.

    Raises:
        BootloaderError: the copy's place holds a file the wizard did not write.

    """
    path = esp_files.existing(esp, rel)
    if (path is not None and path.is_file() and not path.is_symlink() and source.is_file()
            and (same := esp_files.file_digest(path)) in owned.get(rel, set())
            and esp_files.file_digest(source) == same):
        return esp_plan.EspWrite(rel, b"", b"", digest=same)
    ok, old = esp_files.mine(esp, rel, owned)
    if not ok:
        raise BootloaderError(f"{esp / rel} was not written by dockerboot-wizard "
                              "(or was changed since)",
                              f"move it out of {esp / esp_files.OWN_DIR}, then run again")
    # Built already: its bytes now; a generation this apply builds: at write time.
    if source.is_file():
        return esp_plan.EspWrite(rel, old, source.read_bytes())
    return esp_plan.EspWrite(rel, old, b"", source)


def plan_loader_conf(esp: Path, label: str, choice: str) -> esp_plan.CustomWrite | None:
    """``loader.conf`` with the wizard's ``default`` (asked: ``choice == "yes"``), else None.

    Raises:
        BootloaderError: loader.conf is not a plain file.

    """
    path = esp_files.existing(esp, LOADER_CONF)
    if path is not None and (path.is_symlink() or not path.is_file()):
        raise BootloaderError(f"{path} is not a plain file", "make it one, then run again")
    old = path.read_bytes() if path is not None else None
    text = (old or b"").decode("utf-8", "surrogateescape")
    lines = [ln for ln in text.splitlines(keepends=True) if not ln.startswith(OURS)]
    mine = f"default dockerboot-{token(label)}-*"
    if choice == "yes":  # the wizard's own line again (never commented out), theirs commented out
        lines = [REPLACED + ln if re.match(r"\s*default\s", ln) else ln for ln in lines
                 if ln.rstrip("\n") != mine]
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines.append(f"{OURS}\n{mine}\n")
    else:  # said no: the user's own default back, the wizard's gone
        lines = [ln[len(REPLACED):] if ln.startswith(REPLACED) else ln for ln in lines
                 if ln.rstrip("\n") != mine]
    new = "".join(lines).encode("utf-8", "surrogateescape")
    if new == (old or b""):
        return None
    return esp_plan.CustomWrite(esp / LOADER_CONF if path is None else path, old, new,
                            "systemd-boot")


def default_line(esp: Path) -> str | None:
    """The ``default`` line of loader.conf in force (None: none; systemd-boot picks)."""
    path = esp_files.existing(esp, LOADER_CONF)
    if path is None or not path.is_file():
        return None
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines()
             if re.match(r"\s*default\s", ln)]
    return lines[-1] if lines else None
