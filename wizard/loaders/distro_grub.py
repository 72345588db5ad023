"""GRUB way (b): entries for a GRUB its distribution already set up (DESIGN §4c).

A distribution's ``grub-install`` leaves a stub ``EFI/<vendor>/grub.cfg`` on
the ESP that finds its ``/boot/grub`` by filesystem UUID and reads the
``grub.cfg`` there, which ``grub-mkconfig`` generates; its ``41_custom`` part
sources ``custom.cfg`` beside it, the place for entries of one's own.  The
wizard writes its entries there, in a marked block (the rest of the file kept
byte for byte), and never edits the generated ``grub.cfg``: the user's own
``update-grub`` keeps them.

The signed GRUB of that distribution is the one the firmware already starts,
so nothing else goes on the ESP but the boot count (``EFI/dockerboot/grubenv``,
found by ``search --file``).  GRUB's default becomes the wizard's entry only
when the user says so (``Settings.default_entry``); then a new generation that
does not come up in ``grub.TRIES`` boots makes the previous entry the default.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wizard.common.errors import BootloaderError
from wizard.common.mountinfo import read_mountinfo
from wizard.loaders import esp_plan, grub
from wizard.loaders.esp import child_ci

BEGIN = "# >>> dockerboot-wizard: managed entries, replaced on every apply >>>"
END = "# <<< dockerboot-wizard <<<"
CUSTOM = "custom.cfg"
SKIP = {"boot", "dockerboot"}
"""ESP directories that are never a distribution's own (the removable path, ours)."""

_SEARCH_DOT = re.compile(r"^\s*search\.fs_uuid\s+(\S+)\s+(\w+)")
_PREFIX = re.compile(r"^\s*set\s+prefix=\(\$(\w+)\)(\S+)")


@dataclass(frozen=True)
class DistroGrub:
    """A distribution's GRUB on the ESP, and where its generated config lives."""

    vendor: str
    """Its directory on the ESP (``debian``, ``ubuntu``, ``fedora``)."""
    stub: Path
    """``EFI/<vendor>/grub.cfg``, written by its ``grub-install``."""
    uuid: str
    """The filesystem holding its ``grub.cfg``."""
    prefix: str
    """The directory of that ``grub.cfg`` inside that filesystem (``/boot/grub``)."""


def parse_stub(text: str) -> tuple[str, str] | None:
    """(filesystem UUID, prefix) of a ``grub-install`` stub, or None when it is not one.

    Debian and Ubuntu write ``search.fs_uuid UUID root …`` and
    ``set prefix=($root)'/boot/grub'``; Fedora ``search --fs-uuid --set=dev UUID``
    and ``set prefix=($dev)/grub2``.
    """
    found: dict[str, str] = {}
    prefix: tuple[str, str] | None = None
    for line in text.splitlines():
        if m := _SEARCH_DOT.match(line):
            found[m.group(2)] = m.group(1)
        elif line.split()[:1] == ["search"] and ("--fs-uuid" in line or " -u " in line):
            words = line.replace("--set=", "--set ").split()
            if "--set" in words and words.index("--set") + 1 < len(words):
                var = words[words.index("--set") + 1]
                uuid = [w for w in words[1:] if not w.startswith("-") and w != var]
                if uuid:
                    found[var] = uuid[-1]
        elif m := _PREFIX.match(line):
            prefix = (m.group(1), m.group(2).strip("'\""))
    if prefix is None or prefix[0] not in found or not prefix[1].startswith("/"):
        return None
    return found[prefix[0]], prefix[1]


def find(esp: Path, prefer: str = "") -> DistroGrub | None:
    """The distribution GRUB set up on ``esp`` (``prefer``'s when there are several), or None.

    Raises:
        BootloaderError: a distribution's ``grub.cfg`` there is not a stub this
            wizard can follow (a GRUB that keeps its whole config on the ESP).

    """
    efi = child_ci(esp, "EFI")
    if efi is None or not efi.is_dir() or efi.is_symlink():
        return None
    found = []
    for vendor in sorted(efi.iterdir()):
        stub = child_ci(vendor, grub.CFG) if vendor.is_dir() else None
        if vendor.name.lower() in SKIP or stub is None or not stub.is_file():
            continue
        parsed = parse_stub(stub.read_text(errors="replace"))
        if parsed is None:
            raise BootloaderError(
                f"{stub} is another GRUB's whole config, not a stub that leads to its "
                "/boot/grub: the wizard cannot add entries beside it",
                "add the entries by hand from `dockerboot-wizard apply --dry-run`, or use "
                "--bootloader refind (Secure Boot off)")
        found.append(DistroGrub(vendor.name, stub, *parsed))
    return next((d for d in found if d.vendor.lower() == prefer.lower()),
                found[0] if found else None)


def _device(uuid: str) -> str | None:
    link = Path("/dev/disk/by-uuid") / uuid
    if link.exists():
        return os.path.realpath(link)
    done = subprocess.run(["blkid", "-U", uuid], capture_output=True, text=True, check=False)
    return os.path.realpath(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() \
        else None


def config_dir(distro: DistroGrub) -> Path:
    """Where the distribution's ``grub.cfg`` is mounted here (its ``/boot/grub``).

    A mount of the filesystem ``distro.uuid`` whose root holds ``distro.prefix``
    (for btrfs GRUB's paths start at the top level, mountinfo's too).

    Raises:
        BootloaderError: that filesystem is not mounted, or its ``grub.cfg``
            does not read ``custom.cfg``.

    """
    dev = _device(distro.uuid)
    where = None
    for m in read_mountinfo() if dev else []:
        root = m.root.rstrip("/")
        inside = distro.prefix == root or distro.prefix.startswith(root + "/")
        if inside and m.source.startswith("/") and os.path.realpath(m.source) == dev:
            where = Path(m.mountpoint) / distro.prefix[len(root):].lstrip("/")
            if not m.read_only:
                break
    if where is None:
        raise BootloaderError(f"the {distro.vendor} GRUB reads its config from {distro.prefix} "
                              f"on the filesystem UUID={distro.uuid}, which is not mounted here",
                              "mount it (the system's /boot), then run again")
    cfg = where / grub.CFG
    if not cfg.is_file() or CUSTOM not in cfg.read_text(errors="replace"):
        raise BootloaderError(f"{cfg} does not read {CUSTOM} (no /etc/grub.d/41_custom)",
                              "restore 41_custom and run update-grub, then run again")
    return where


def render_block(label: str, entries: list[grub.Entry], *, newest: int, state: str,
                 default: bool, counting: bool) -> str:
    """The wizard's block in ``custom.cfg``: its entries, and GRUB's default if asked.

    ``default``: the user chose the wizard's entry as GRUB's default; then a
    new generation's boots are counted (``counting``) and, once its tries are
    gone, the previous entry is the default.  By ``--id``: ``default`` takes one.
    """
    out = [BEGIN]
    if default:
        out.append(f"set default={entries[0].id}")
        if counting and len(entries) > 1:
            out += [f"search --no-floppy --file --set=dockerboot_esp /{grub.OWN_DIR}/{grub.ENV}",
                    f"set dockerboot_env=($dockerboot_esp)/{grub.OWN_DIR}/{grub.ENV}",
                    *grub.counting_lines(label, state, newest,
                                         exhausted=f"set default={entries[1].id}")]
    text = "\n".join(out) + "\n" + "".join(grub.menuentry(label, e) for e in entries)
    return text + END + "\n"


def replace_block(text: str, block: str, path: Path) -> str:
    """``text`` with the wizard's block replaced (or added at the end); the rest kept as is.

    Raises:
        BootloaderError: the markers are not one pair in order (a hand edit).

    """
    lines = text.splitlines(keepends=True)
    begins = [i for i, ln in enumerate(lines) if ln.startswith(BEGIN[:24])]
    ends = [i for i, ln in enumerate(lines) if ln.startswith(END[:24])]
    if not begins and not ends:
        sep = "" if not text or text.endswith("\n") else "\n"
        return text + sep + block
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise BootloaderError(f"{path}: the wizard's markers are not one pair",
                              "remove the dockerboot-wizard lines by hand, then run again")
    return "".join(lines[:begins[0]]) + block + "".join(lines[ends[0] + 1:])


def plan_custom(distro: DistroGrub, block: str) -> esp_plan.CustomWrite:
    """``custom.cfg`` beside the distribution's ``grub.cfg`` with ``block`` in it.

    Raises:
        BootloaderError: not mounted, no ``41_custom``, ``custom.cfg`` is not a
            plain file, or its markers are broken.

    """
    path = config_dir(distro) / CUSTOM
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BootloaderError(f"{path} is not a plain file: the wizard never writes through "
                              "a link", "make it a plain file, then run again")
    old = path.read_bytes() if path.exists() else None
    text = (old or b"").decode("utf-8", "surrogateescape")
    new = replace_block(text, block, path).encode("utf-8", "surrogateescape")
    return esp_plan.CustomWrite(path, old, new, distro.vendor)


def read_block(text: str) -> str:
    """The wizard's block in a ``custom.cfg`` text ('' when there is none)."""
    lines = text.splitlines(keepends=True)
    begin = next((i for i, ln in enumerate(lines) if ln.startswith(BEGIN[:24])), None)
    end = next((i for i, ln in enumerate(lines) if ln.startswith(END[:24])), None)
    return "".join(lines[begin:end + 1]) if begin is not None and end is not None else ""
