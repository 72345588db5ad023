"""Status of a configured partition as versioned JSON, like ``bootc status --json``.

``status`` is a pure function of what is on the partition (the generations
under ``boot_dir`` and the state the boot hook writes) plus what the caller
found out elsewhere: the configured tag's current image ID and the initramfs
inputs a build from it would have (both need docker; leave them None to
skip), and ``/proc/cmdline`` when run inside the booted system.  Nothing is
written and nothing is started but ``btrfs filesystem du`` for the space of
dockerboot's copies of the fallback images (``wizard.boot.roots``).  The
schema is ``docs/status-json.md`` (``version`` 1; a unit test keeps the two
in step).

The hook's state (``assets/hook/dockerboot-assess.sh``) lives in
``dockerboot.state=`` (``boot_docker/state`` by default) on the partition:
``attempt`` ("<id> <n>"), ``good`` ("<id>"), ``failed`` ("<id> <n>", and the
reason of a bad mark on a second line: ``dockerboot-mark-good``) and
``boot`` (key=value lines: ``ref``, ``id``, ``configured_id``, ``fallback``,
``kernel``, ``tries``, ``generation``; a hook before ``generation`` lacks
it).  Each is read without following symlinks and bounded in size; what
does not parse is null plus a line in ``problems``.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from wizard.boot import roots
from wizard.boot.fingerprint import KVER_RE, Fingerprint
from wizard.boot.generations import Generation, Inventory, load, rollback_line, rollback_state
from wizard.settings.cmdline import parse_cmdline
from wizard.settings.config import Settings
from wizard.settings.kernel_options import check_state_dir, state_option
from wizard.store.images import IMAGE_ID_RE

SCHEMA_VERSION = 1
"""The ``version`` of the JSON; it grows only by new keys until it changes."""
DEFAULT_STATE = "boot_docker/state"
"""The hook's state directory when ``dockerboot.state=`` is not given."""
_MAX = 4096
_BOOT_KEYS = ("ref", "id", "configured_id", "fallback", "kernel", "tries", "generation",
              "source")
# What booted (the hook's source=): the configured image, the last good one or the
# entry's generation's, from docker's store or dockerboot's own copy (-root).
_SOURCES = ("configured", "good", "good-root", "generation", "generation-root")
_MAX_CONF = 1 << 20
_BEGIN_RE = re.compile(r"^[ \t]*# >>> dockerboot-wizard")
_END_RE = re.compile(r"^[ \t]*# <<< dockerboot-wizard")
_LOADER_RE = re.compile(r"^[ \t]*loader[ \t]+([^ \t]+)")
_GEN_DIGITS = 6
"""The hook records ``dockerboot.generation=`` only up to this many digits."""
_REASON_RE = re.compile(r"[ -~]+")
"""A bad mark's reason (``state/failed``'s second line): printable ASCII, as written."""
ASSESSMENT = {
    "bootloader_counts": False,
    "why": "rEFInd does not count boots: a generation whose kernel or initramfs cannot reach "
           "the hook boots again; pick Previous generation in rEFInd's menu",
}
"""What counts tries (``assessment``): the hook counts an image's; rEFInd counts none."""


def state_dir(settings: Settings) -> str:
    """The state directory relative to the top level, as the hook reads it.

    Raises ``ConfigError`` for a value the hook refuses or would read
    differently (``check_state_dir``): never a guess.
    """
    value = state_option(settings.kernel_options)
    if value is None:
        return DEFAULT_STATE
    check_state_dir(value, docker_path=settings.docker_path, rwlayer=settings.rwlayer,
                    boot_dir=settings.boot_dir, toplayer_path=settings.toplayer_path)
    return value


def _read(top: Path, rel: str, name: str, problems: list[str]) -> str | None:
    """The text of ``<top>/<rel>/<name>``, never through a symlink; None if absent."""
    path = top
    for part in [*rel.split("/"), name]:
        if part in ("", ".", ".."):
            problems.append(f"state path {rel!r} is not a plain relative path")
            return None
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            problems.append(f"cannot read {path}: {e.strerror}")
            return None
        if stat.S_ISLNK(st.st_mode):
            problems.append(f"{path} is a symlink: not read")
            return None
    if not stat.S_ISREG(st.st_mode):
        problems.append(f"{path} is not a regular file: not read")
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            # No NUL: the shell's status cannot hold one in a value either.
            return f.read(_MAX).decode("utf-8", "replace").replace("\x00", "")
    except OSError as e:
        problems.append(f"cannot read {path}: {e.strerror}")
        return None


def _id_count(text: str | None, name: str, problems: list[str],
              count: bool = True) -> dict[str, Any] | None:
    if text is None:
        return None
    words = text.split()
    if not words or not IMAGE_ID_RE.match(words[0]) or (
            count and (len(words) < 2 or not (words[1].isascii() and words[1].isdigit()))):
        problems.append(f"state file {name} holds {text.strip()[:80]!r}: ignored")
        return None
    return {"id": words[0], **({"tries": int(words[1])} if count else {})}


def _failed(text: str | None, problems: list[str]) -> dict[str, Any] | None:
    """``state/failed``: "<id> <n>", and the reason of a bad mark on a second line."""
    failed = _id_count(text, "failed", problems)
    if failed is not None and text is not None:
        lines = text.split("\n")
        reason = lines[1] if len(lines) > 1 else ""
        failed["reason"] = reason if _REASON_RE.fullmatch(reason) else None
    return failed


def _parse_boot(text: str | None, problems: list[str]) -> dict[str, str] | None:
    if text is None:
        return None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in _BOOT_KEYS:
            values[key] = value
    if not values.get("ref"):
        problems.append("state file boot names no ref: ignored")
        return None
    return values


def hook_images(top: Path, settings: Settings) -> tuple[str | None, str | None]:
    """The hook's last good image ID and the ID of the last boot, as far as they parse.

    What garbage collection keeps whatever its age: the hook falls back to
    the first and the system runs the second.
    """
    problems: list[str] = []
    rel = state_dir(settings)
    good = _id_count(_read(top, rel, "good", problems), "good", problems, count=False)
    boot = _parse_boot(_read(top, rel, "boot", problems), problems) or {}
    booted = boot.get("id", "")
    return (good["id"] if good else None), (booted if IMAGE_ID_RE.match(booted) else None)


def _gen_json(gen: Generation | None) -> dict[str, Any] | None:
    if gen is None:
        return None
    return {"number": gen.number, "kernel_version": gen.kernel_version,
            "image_ref": gen.image_ref, "image_id": gen.image_id, "created": gen.created,
            "legacy": gen.legacy, "pinned": gen.pinned, "loader": gen.loader,
            "initrd": gen.initrd_path,
            "inputs": gen.inputs.to_json() if gen.inputs else None}


def _booted_generation(inv: Inventory, boot: dict[str, str],
                       cmdline: str | None) -> tuple[int | None, str | None]:
    """Which generation the recorded boot ran, and how that is known.

    The hook's own record (``generation=`` in ``state/boot``, from the boot
    entry's ``dockerboot.generation=``) first: it describes the very boot the
    rest of ``boot`` describes.  Then, for a record without it (an older hook,
    an entry not written by the wizard), the running system's command line,
    then the kernel version.  A number with no generation on the partition
    (since collected) is not taken.
    """
    value = boot.get("generation", "")
    if (value.isascii() and value.isdigit() and len(value) <= _GEN_DIGITS
            and inv.get(int(value)) is not None):
        return int(value), "state"
    if cmdline is not None:
        value = parse_cmdline(cmdline).get("dockerboot.generation", "")
        if value.isascii() and value.isdigit() and inv.get(int(value)) is not None:
            return int(value), "cmdline"
    kernel = boot.get("kernel", "")
    same = [g for g in inv.generations if g.kernel_version == kernel]
    if boot.get("ref", "").startswith("sha256:"):
        # The "previous" entry boots by ID: its generation was built from that image.
        same = [g for g in same if g.image_id == boot.get("id")] or same
    return (same[-1].number, "kernel") if same else (None, None)


def _booted(inv: Inventory, boot: dict[str, str] | None, cmdline: str | None,
            problems: list[str]) -> dict[str, Any] | None:
    if boot is None:
        return None
    ids = {}
    for key in ("id", "configured_id"):
        value = boot.get(key, "")
        if value and not IMAGE_ID_RE.match(value):
            problems.append(f"state file boot has an invalid {key}={value[:80]!r}: ignored")
        ids[key] = value if IMAGE_ID_RE.match(value) else None
    kernel = boot.get("kernel", "")
    tries = boot.get("tries", "")
    fallback = boot.get("fallback", "")
    # The hook writes "fallback=<configured ref> <why>".
    reason = (fallback.partition(" ")[2] or fallback) if fallback else None
    number, source = _booted_generation(inv, boot, cmdline)
    return {"ref": boot["ref"], "id": ids["id"], "configured_id": ids["configured_id"],
            "kernel": kernel if KVER_RE.match(kernel) else None,
            "tries": int(tries) if tries.isascii() and tries.isdigit() else None,
            "fallback": bool(fallback), "fallback_reason": reason,
            "generation": number, "generation_source": source,
            "source": boot.get("source") if boot.get("source") in _SOURCES else None}


def _entry_generation(inv: Inventory, boot: str, loader: str | None) -> int | None:
    if loader is None:
        return None
    return next((g.number for g in inv.generations if f"{boot}/{g.loader}" == loader), None)


def read_entries(conf: Path | None, inv: Inventory, settings: Settings,
                 problems: list[str]) -> dict[str, Any] | None:
    """Which generations the wizard's block in refind.conf names: what the bootloader boots.

    ``default`` is the first entry's (the default entry), ``previous`` the
    second's, each the number of the generation whose kernel its ``loader``
    line names (None: none on the partition).  None: no refind.conf to
    read, or no block of the wizard's in it.
    """
    if conf is None:
        return None
    try:
        with open(conf, "rb") as f:
            text = f.read(_MAX_CONF).decode("utf-8", "replace")
    except OSError:
        return None
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]
    begins = [i for i, ln in enumerate(lines) if _BEGIN_RE.match(ln)]
    ends = [i for i, ln in enumerate(lines) if _END_RE.match(ln)]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        problems.append(f"{conf} has malformed dockerboot-wizard markers: its entries not read")
        return None
    loaders = [m.group(1) for ln in lines[begins[0]:ends[0] + 1] if (m := _LOADER_RE.match(ln))]
    boot = settings.boot_dir.strip("/")
    return {"default": _entry_generation(inv, boot, loaders[0] if loaders else None),
            "previous": _entry_generation(inv, boot, loaders[1] if len(loaders) > 1 else None)}


def _pending(inv: Inventory, image: str, tag_id: str | None, tag_inputs: Fingerprint | None,
             entries: dict[str, Any] | None,
             rollback: dict[str, Any] | None) -> dict[str, Any]:
    newest = inv.newest
    reasons: list[str] = []
    image_changed = build_needed = None
    if tag_id is not None:
        image_changed = newest is None or tag_id != newest.image_id
    changes: list[str] = []
    if tag_inputs is not None:
        changes = tag_inputs.changes(newest.inputs if newest else None)
        if newest is not None and newest.inputs is None:
            changes = ["the newest generation's inputs are unknown (legacy)"]
        build_needed = bool(changes)
    # The entries do not name the newest generation: an earlier run stopped.
    unnamed = (newest.number if newest is not None and entries is not None
               and entries["default"] != newest.number else None)
    if unnamed is not None:
        reasons.append(f"generation {unnamed} is not named by the boot entries yet "
                       "(an earlier run stopped): the next update names it")
    if rollback is not None:
        reasons.append(rollback_line(rollback, image, tag_id))
        follow = rollback["holds"] is False and bool(image_changed)
    else:
        if image_changed:
            old = newest.image_id[7:19] if newest and newest.image_id else "unknown"
            assert tag_id is not None
            reasons.append(f"the tag moved: {old} -> {tag_id[7:19]}")
        # The default entry boots the tag: a new image with the same inputs boots as it is.
        follow = newest is None and bool(image_changed)
    reasons += changes
    if (image_changed and newest is not None and rollback is None and build_needed is False
            and tag_id is not None):
        reasons.append(f"the next boot snapshots @{tag_id[7:19]} with generation "
                       f"{newest.number}: no update needed")
    update = None if image_changed is None and build_needed is None and unnamed is None \
        else bool(build_needed or follow or unnamed is not None)
    return {"tag_id": tag_id, "image_changed": image_changed, "build_needed": build_needed,
            "kernel_version": tag_inputs.kernel_version if tag_inputs else None,
            "update": update, "unnamed": unnamed, "reasons": reasons}


def status(top: Path, settings: Settings, *, tag_id: str | None = None,
           tag_inputs: Fingerprint | None = None, cmdline: str | None = None,
           refind_conf: Path | None = None) -> dict[str, Any]:
    """The partition's status as a JSON-ready dict (schema: ``docs/status-json.md``).

    Args:
        top: where the partition's top level is mounted.
        settings: the saved settings (``boot_dir``, ``image``, ``kernel_options``).
        tag_id: the configured tag's image ID now (``sha256:…``), if known.
        tag_inputs: the initramfs inputs a build from the tag would have
            (kernel version found in the image, generator, hook assets), if known.
        cmdline: ``/proc/cmdline`` of the booted system, when run inside it.
        refind_conf: the refind.conf the firmware reads, if found: which
            generations its entries name (what the next boot really boots).

    """
    top = Path(top)
    problems: list[str] = []
    inv = load(top / settings.boot_dir)
    problems += inv.problems
    rel = state_dir(settings)
    boot = _parse_boot(_read(top, rel, "boot", problems), problems)
    good = _id_count(_read(top, rel, "good", problems), "good", problems, count=False)
    failed = _failed(_read(top, rel, "failed", problems), problems)
    if tag_id is not None and not IMAGE_ID_RE.match(tag_id):
        raise ValueError(f"tag_id {tag_id!r} is not sha256:<64 hex>")
    entries = read_entries(refind_conf, inv, settings, problems)
    rollback = rollback_state(inv, tag_id)
    return {
        "version": SCHEMA_VERSION,
        "label": settings.label,
        "image": settings.image,
        "state_dir": rel,
        "booted": _booted(inv, boot, cmdline, problems),
        "last_good": good,
        "failed": failed,
        "assessment": dict(ASSESSMENT),
        "generation": _gen_json(inv.newest),
        "previous": _gen_json(inv.previous),
        "generations": [_gen_json(g) for g in inv.generations],
        "entries": entries,
        "rollback": rollback,
        "pending": _pending(inv, settings.image, tag_id, tag_inputs, entries, rollback),
        # What collection keeps: the last good image's copy and the generations' images'.
        "roots": roots.roots_json(top, {g.image_id for g in inv.generations if g.image_id}
                                  | ({good["id"]} if good else set()), problems),
        "problems": problems,
    }


def summary(out: dict[str, Any]) -> list[str]:
    """The status JSON as a few lines for people (the CLI's text, the TUI's Welcome)."""
    lines = [f"LABEL={out['label']}: {out['image']}"]
    booted, entries = out["booted"], out["entries"]
    by_number = {g["number"]: g for g in out["generations"]}
    if entries is None:
        shown = [("default", out["generation"]), ("previous", out["previous"])]
    else:
        shown = [(which, by_number.get(entries[which])) for which in ("default", "previous")]
    for which, gen in shown:
        if gen:
            lines.append(f"{which} entry: generation {gen['number']}, kernel "
                         f"{gen['kernel_version']}, image @{(gen['image_id'] or '?')[7:19]}"
                         + (" (pinned: a rollback)" if which == "default" and gen["pinned"]
                            else ""))
        elif which == "default" and entries is not None:
            lines.append("default entry: names no generation on the partition")
    if booted:
        lines.append(f"last boot: {booted['ref']} @{(booted['id'] or '?')[7:19]} on kernel "
                     f"{booted['kernel']}" + (f" — FALLBACK: {booted['fallback_reason']}"
                                              if booted["fallback"] else ""))
    if booted and (booted.get("source") or "").endswith("-root"):
        lines.append("  booted from dockerboot's own copy: docker no longer has that image")
    if out["last_good"]:
        lines.append(f"last good image: @{out['last_good']['id'][7:19]}")
    failed = out["failed"]
    if failed:
        why = (f"marked bad ({failed['reason']})" if failed.get("reason")
               else f"tried {failed['tries']} times and never marked good")
        lines.append(f"image @{failed['id'][7:19]} is not booted while configured: {why}")
    for root in out.get("roots", []):
        held = root["exclusive_bytes"]
        lines.append(f"dockerboot's copy of @{root['id'][7:19]}: "
                     + ("kept" if root["kept"] else "collected at the next update")
                     + ("" if held is None else f", holds {held} bytes of its own"))
    if (counts := out["assessment"].get("grub")) and counts["trying"] is not None:
        lines.append(f"GRUB: generation {counts['trying']}, {counts['tries_left']} tries left; "
                     f"marked good: generation {counts['good_generation'] or 'none yet'}")
    pending = out["pending"]
    if pending["update"]:
        lines.append("update pending: " + "; ".join(pending["reasons"])
                     + (" (a build is needed)" if pending["build_needed"] else " (no build)"))
        lines.append(f"  run: dockerboot-wizard update --label {out['label']}")
    elif pending["update"] is False:
        lines.append("up to date" + "".join(f"; {r}" for r in pending["reasons"]))
    elif out["rollback"] is not None:
        lines.append(rollback_line(out["rollback"], out["image"], None))
    lines += [f"problem: {p}" for p in out["problems"]]
    return lines
