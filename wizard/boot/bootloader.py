"""The rEFInd boot entry (DESIGN §5 step 6).

The wizard owns exactly one marked block in ``refind.conf`` (one entry, or
with generations the default and "previous" entries); it adds it or
replaces it and keeps every other byte of the file as it was (comments, the
user's own entries, CRLF line ends, a missing final newline).  The file is
replaced atomically and the old one is kept as a backup next to it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.common.atomic import write_atomic
from wizard.common.errors import BootloaderError
from wizard.settings.cmdline import kernel_cmdline
from wizard.settings.config import Settings

if TYPE_CHECKING:  # only for the hints: the boot entry needs no docker import
    from wizard.boot.generations import Generation

BEGIN_MARKER = "# >>> dockerboot-wizard: managed entry, replaced on every apply >>>"
END_MARKER = "# <<< dockerboot-wizard <<<"
TITLE_PREFIX = "Docker image"
"""Stable title start, so ``default_selection "Docker image"`` keeps matching."""
PREVIOUS_TITLE = "Previous generation"
"""Title start of the entry booting the previous generation (pinned by image ID)."""
DEFAULT_LINE = f'default_selection "{TITLE_PREFIX}"'
"""The line that makes rEFInd boot the wizard's default entry (first in the block).

rEFInd's own default is ``+``, the entry booted last: without this line one
manual pick of "Previous generation N" would be the default from then on.
The selector is a title substring only the default entry has; of several
``default_selection`` lines the last one wins, so the user's own active lines
are commented out when the wizard's is wanted (``default_entry = "yes"``).
"""
REPLACED_PREFIX = "# dockerboot-wizard --default-entry yes: "
"""How a user's own ``default_selection`` line looks once the wizard's replaced it;
``--default-entry no`` removes the prefix again."""
DEFAULT_ENTRY_CHOICES = ("yes", "no")

# Lines are recognised by these prefixes (after leading blanks) so that a
# user who reindents the block or edits the marker's wording is still safe.
_BEGIN_PREFIX = "# >>> dockerboot-wizard"
_END_PREFIX = "# <<< dockerboot-wizard"
# rEFInd has no escape character: a quote or line break in a value would end it.
_UNSAFE = re.compile(r'["\r\n]')
# An active default_selection line (rEFInd's keywords ignore case; a value must follow),
# and the wizard's own.  The shell updater (entries.sh) uses the same patterns.
_SETTING = re.compile(r"^[ \t]*default_selection[ \t=]+[^ \t\r\n=#]", re.IGNORECASE)
_OURS = re.compile(r'^[ \t]*default_selection[ \t]+"' + TITLE_PREFIX + r'"[ \t]*\r?\n?$',
                   re.IGNORECASE)


def _check_values(values: tuple[tuple[str, str], ...]) -> None:
    for what, value in values:
        if _UNSAFE.search(value):
            raise BootloaderError(f"{what} {value!r} contains a double quote or line break",
                                  "rEFInd cannot quote those; remove them")


def _menuentry(title: str, volume: str, loader: str, initrd: str, options: str) -> str:
    return (f'menuentry "{title}" {{\n'
            f"    volume {volume}\n"
            f"    loader {loader}\n"
            f"    initrd {initrd}\n"
            f'    options "{options}"\n'
            f"}}\n")


def generation_cmdline(settings: Settings, image: str, number: int) -> str:
    """The command line of an entry booting generation ``number`` with ``image``.

    ``dockerboot.generation=<n>`` tells the booted system (and ``status``)
    which kernel + initramfs it runs; the hook ignores it.
    """
    return f"{kernel_cmdline(replace(settings, image=image))} dockerboot.generation={number}"


def default_title(settings: Settings, newest: Generation | None = None) -> str:
    """The title of the default entry: what rEFInd's menu shows (and Done names).

    ``Docker image <settings.image>``; a rolled-back ``newest`` (pinned, its
    image ID known) adds the ID it boots: ``… (rolled back to @<id>)``.
    """
    if newest is not None and newest.pinned and newest.image_id is not None:
        return f"{TITLE_PREFIX} {settings.image} (rolled back to @{_short(newest.image_id)})"
    return f"{TITLE_PREFIX} {settings.image}"


def default_cmdline(settings: Settings, newest: Generation) -> str:
    """The kernel command line of the default entry booting ``newest``.

    The configured tag, or for a rollback the image ID it rolled back to;
    with ``dockerboot.generation=<newest.number>``.
    """
    image = (newest.image_id if newest.pinned and newest.image_id is not None
             else settings.image)
    return generation_cmdline(settings, image, newest.number)


def render_entries(settings: Settings, newest: Generation,
                   previous: Generation | None = None) -> str:
    """Render the marked block with the generations' entries (LF line ends).

    The first entry (the default) boots the newest generation with the
    configured tag, ``docker_image=<settings.image>``, titled ``default_title``
    (``TITLE_PREFIX`` first, so ``default_selection "Docker image"`` picks it).
    The second boots the previous generation's kernel + initramfs with its
    image pinned by ID (``docker_image=sha256:…``): a later pull cannot change
    what it boots.  Its title says "Previous generation", never "Docker
    image", so no default selection matches it by accident.  A previous
    generation whose image ID is unknown (a legacy pair never adopted) gets
    no entry: it could only boot the tag, which is the default's job.

    The block replaces an older one-entry block in place (same markers).

    Raises:
        BootloaderError: a value contains a double quote or line break.

    """
    text = f"{BEGIN_MARKER}\n"
    for title, loader, initrd, cmdline in menu_entries(settings, newest, previous):
        text += _menuentry(title, settings.label, loader, initrd, cmdline)
    return text + f"{END_MARKER}\n"


def menu_entries(settings: Settings, newest: Generation,
                 previous: Generation | None = None) -> list[tuple[str, str, str, str]]:
    """``(title, kernel, initrd, command line)`` of the default and the previous entry.

    What every bootloader's entries say (``render_entries`` for rEFInd,
    ``grub.render_cfg``): paths from the partition's top level, no leading slash.

    Raises:
        BootloaderError: a value contains a double quote or line break.

    """
    boot = settings.boot_dir.strip("/")
    entries = [(default_title(settings, newest), newest, default_cmdline(settings, newest))]
    if previous is not None and previous.image_id is not None:
        ref = previous.image_ref or settings.image
        entries.append((f"{PREVIOUS_TITLE} {previous.number}: {ref} @{_short(previous.image_id)}",
                        previous,
                        generation_cmdline(settings, previous.image_id, previous.number)))
    out = []
    for title, gen, cmdline in entries:
        loader, initrd = f"{boot}/{gen.loader}", f"{boot}/{gen.initrd_path}"
        _check_values((("title", title), ("label", settings.label), ("loader", loader),
                       ("initrd", initrd), ("kernel command line", cmdline)))
        out.append((title, loader, initrd, cmdline))
    return out


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _uses_crlf(text: str) -> bool:
    """Tell whether most line ends of ``text`` are CRLF."""
    crlf = text.count("\r\n")
    return crlf > 0 and crlf * 2 >= text.count("\n")


def _marker_lines(lines: list[str]) -> tuple[list[int], list[int]]:
    begins = [i for i, ln in enumerate(lines) if ln.lstrip(" \t").startswith(_BEGIN_PREFIX)]
    ends = [i for i, ln in enumerate(lines) if ln.lstrip(" \t").startswith(_END_PREFIX)]
    return begins, ends


def written_block(text: str) -> str:
    """The wizard's marked block as refind.conf ``text`` holds it, markers included.

    What rEFInd reads: with ``DEFAULT_LINE`` when ``update_conf`` put it
    there, in the file's line ends; '' when the file has no (well-formed) block.
    """
    lines = text.splitlines(keepends=True)
    begins, ends = _marker_lines(lines)
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        return ""
    return "".join(lines[begins[0]:ends[0] + 1])


def user_defaults(text: str) -> list[tuple[int, str]]:
    """The user's own active ``default_selection`` lines of refind.conf ``text``.

    Lines outside the wizard's block that are not the wizard's own line
    (``DEFAULT_LINE``): ``(line number from 1, the line without its end)``.
    """
    lines = text.splitlines(keepends=True)
    begins, ends = _marker_lines(lines)
    inside = range(begins[0], ends[0] + 1) if len(begins) == 1 == len(ends) else range(0)
    return [(i + 1, ln.rstrip("\r\n")) for i, ln in enumerate(lines)
            if i not in inside and _SETTING.match(ln) and not _OURS.match(ln)]


def default_entry(text: str, choice: str) -> str:
    """Whether the block gets ``DEFAULT_LINE``: ``"yes"`` or ``"no"``.

    ``choice`` is the saved answer (``Settings.default_entry``): "yes" (the
    wizard's default entry is rEFInd's default, the user's own lines
    commented out), "no" (the user's setting stays in force), or "" (never
    asked): "yes" when the user has no setting of their own, else "no" —
    nothing of theirs changes without an answer (apply asks first).
    """
    if choice in DEFAULT_ENTRY_CHOICES:
        return choice
    return "no" if user_defaults(text) else "yes"


def describe_default(text: str, choice: str) -> str:
    """One line: what rEFInd will boot by default once the block is written into ``text``."""
    theirs = user_defaults(text)
    mine = "; ".join(f"line {n}: {line.strip()}" for n, line in theirs)
    if not theirs:
        return (f"rEFInd boots the default entry: the block starts with {DEFAULT_LINE} "
                "(without it rEFInd boots whatever entry was booted last)")
    if choice == "yes":
        return (f"rEFInd boots the default entry: the block starts with {DEFAULT_LINE}; "
                f"your own setting ({mine}) is commented out, a backup kept")
    if choice == "no":
        return (f"rEFInd boots what your own setting says ({mine}), as you chose "
                "(--default-entry no): the default entry is the default only if it selects it")
    return (f"refind.conf sets its own default entry ({mine}): choose whether the wizard's "
            "default entry replaces it (--default-entry yes|no)")


def next_boot(text: str, choice: str, label: str, what: str) -> str:
    """"the next boot of LABEL=… starts WHAT", or what decides when the user's setting does.

    ``text``: refind.conf before the write (the user's lines are the same after it).
    """
    if default_entry(text, choice) == "yes":
        return f"the next boot of LABEL={label} starts {what}"
    mine = "; ".join(f"line {n}: {line.strip()}" for n, line in user_defaults(text))
    return (f"the default entry of LABEL={label} starts {what}; rEFInd boots it only if "
            f"your own default_selection ({mine}) selects it (apply --default-entry yes "
            "makes it the default)")


def _own_defaults(line: str, decision: str, choice: str) -> str:
    """A line outside the block: the user's setting commented out ("yes") or back (said "no")."""
    if decision == "yes":
        if _SETTING.match(line) and not _OURS.match(line):
            indent = line[:len(line) - len(line.lstrip(" \t"))]
            return indent + REPLACED_PREFIX + line[len(indent):]
        return line
    body = line.lstrip(" \t")
    if choice == "no" and body.startswith(REPLACED_PREFIX):
        return line[:len(line) - len(body)] + body[len(REPLACED_PREFIX):]
    return line


def update_conf(text: str, entry: str, choice: str = "") -> str:
    """Add or replace the wizard's marked block in refind.conf ``text``.

    Pure and idempotent.  The block takes the file's line-end style; all
    bytes outside the block are kept, except the user's own
    ``default_selection`` lines as ``default_entry(text, choice)`` decides:
    "yes" puts ``DEFAULT_LINE`` first in the block and comments theirs out
    (``REPLACED_PREFIX``), "no" leaves the block without it and puts back
    lines an earlier "yes" commented out.

    Raises:
        BootloaderError: the markers are malformed (a begin without an end,
            two begins, an end before the begin).

    """
    lines = text.splitlines(keepends=True)
    begins, ends = _marker_lines(lines)
    if len(begins) > 1 or len(ends) > 1 or len(begins) != len(ends) or (
            begins and ends[0] < begins[0]):
        raise BootloaderError(
            f"refind.conf has malformed dockerboot-wizard markers "
            f"({len(begins)} begin, {len(ends)} end line(s))",
            "remove the broken '# >>> dockerboot-wizard' block by hand, then run again")
    decision = default_entry(text, choice)
    if decision == "yes":
        head, _, rest = entry.partition("\n")
        entry = f"{head}\n{DEFAULT_LINE}\n{rest}"
    if _uses_crlf(text):
        entry = entry.replace("\r\n", "\n").replace("\n", "\r\n")
    b, e = (begins[0], ends[0]) if begins else (len(lines), len(lines))
    outside = [_own_defaults(ln, decision, choice) for ln in lines]
    if not begins:
        text = "".join(outside)
        if text and not text.endswith("\n"):
            text += "\r\n" if _uses_crlf(text) else "\n"
        return text + entry
    if not lines[e].endswith("\n"):
        # The block ended the file without a newline: keep it that way.
        entry = entry.rstrip("\r\n")
    return "".join(outside[:b]) + entry + "".join(outside[e + 1:])


def decode(data: bytes) -> str:
    """refind.conf bytes as text; bytes that are not UTF-8 survive as surrogates."""
    return data.decode("utf-8", "surrogateescape")


def _decode(data: bytes, conf: Path) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BootloaderError(f"{conf} is UTF-16 encoded",
                              "convert it to UTF-8 (iconv -f UTF-16 -t UTF-8), then run again")
    # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged.
    return data.decode("utf-8", "surrogateescape")


def read_conf(conf: Path) -> str:
    """The text of refind.conf ``conf`` (bytes that are not UTF-8 kept as surrogates).

    Raises:
        BootloaderError: the file cannot be read, or is UTF-16.

    """
    try:
        return _decode(Path(conf).read_bytes(), conf)
    except OSError as e:
        raise BootloaderError(f"cannot read {conf}: {e.strerror}",
                              "check the path, or pass --refind-conf FILE") from e


def plan_refind(conf: Path, entry: str, choice: str = "") -> tuple[bytes, bytes]:
    """Read ``conf`` and return ``(old_bytes, new_bytes)`` with the entry in place.

    ``choice``: the saved ``default_entry`` answer (see ``update_conf``).

    Raises:
        BootloaderError: the file cannot be read or its markers are malformed.

    """
    try:
        old = Path(conf).read_bytes()
    except OSError as e:
        raise BootloaderError(f"cannot read {conf}: {e.strerror}",
                              "check the path, or pass --refind-conf FILE") from e
    new = update_conf(_decode(old, conf), entry, choice).encode("utf-8", "surrogateescape")
    return old, new


def write_refind(conf: Path, new_bytes: bytes) -> Path | None:
    """Atomically replace ``conf`` with ``new_bytes``; return the backup path.

    Returns None when the content was already up to date (nothing written).

    Raises:
        BootloaderError: the ESP is not writable.

    """
    try:
        return write_atomic(Path(conf), new_bytes, backup=True)
    except OSError as e:
        raise BootloaderError(f"cannot write {conf}: {e.strerror}",
                              "mount the ESP read-write and run again") from e
