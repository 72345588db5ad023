"""Unified diffs for the review step, with password hashes redacted.

Diffs are shown on screen and may be logged, so a file marked secret
(``shadow``, ``gshadow``) never shows its hash field: each such line reads
``user:<hash redacted>:…``, and a changed hash is still visible as a change.
"""

from __future__ import annotations

import difflib

REDACTED = "<hash redacted>"
REDACTED_CHANGED = "<new hash redacted>"
# Fields that carry no secret: empty, locked or "no password" markers.
_PLAIN_HASH_CHARS = set("!*x")


def is_binary(data: bytes) -> bool:
    """Tell whether ``data`` cannot be shown as text (NUL bytes or not UTF-8)."""
    if b"\0" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _hash_field(line: str) -> tuple[str, str] | None:
    """Split a shadow/gshadow line into ``(name, hash)``, or None if it has no hash field."""
    parts = line.split(":", 2)
    if len(parts) < 2:
        return None
    return parts[0], parts[1].rstrip("\r\n") if len(parts) == 2 else parts[1]


def redact_shadow(text: str, previous: str | None = None) -> str:
    """Replace the hash field of every shadow/gshadow line in ``text``.

    Args:
        text: The file content.
        previous: The old content; a user whose hash differs from it gets
            ``<new hash redacted>`` so the diff still shows the change.

    Returns:
        The text with no password hash left in it.

    """
    old_hashes: dict[str, str] = {}
    if previous is not None:
        for line in previous.splitlines():
            split = _hash_field(line)
            if split:
                old_hashes[split[0]] = split[1]
    out = []
    for line in text.splitlines(keepends=True):
        split = _hash_field(line)
        if split is None or set(split[1]) <= _PLAIN_HASH_CHARS:
            out.append(line)
            continue
        name, hashed = split
        changed = previous is not None and old_hashes.get(name) not in (None, hashed)
        marker = REDACTED_CHANGED if changed else REDACTED
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append(f"{name}:{marker}:{parts[2]}")
        else:
            # A hash as the last field: keep the line end that followed it.
            out.append(f"{name}:{marker}{line[len(line.rstrip(chr(13) + chr(10))):]}")
    return "".join(out)


def unified_diff(old: bytes | None, new: bytes | None, name: str, *, secret: bool = False) -> str:
    """Return a unified diff of ``old`` -> ``new`` for the file ``name``.

    ``None`` means the file does not exist on that side.  Binary content is
    summarised in one line.  With ``secret`` the hash fields are redacted
    (see ``redact_shadow``).  An empty string means no change.
    """
    if old == new:
        return ""
    if (old is not None and is_binary(old)) or (new is not None and is_binary(new)):
        return (f"Binary file {name} differs "
                f"({'absent' if old is None else len(old)} -> "
                f"{'absent' if new is None else len(new)} bytes)\n")
    old_text = old.decode() if old is not None else ""
    new_text = new.decode() if new is not None else ""
    if secret:
        new_text = redact_shadow(new_text, old_text if old is not None else None)
        old_text = redact_shadow(old_text)
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{name.lstrip('/')}",
        tofile="/dev/null" if new is None else f"b/{name.lstrip('/')}")
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    if not out:
        # Only redacted content differed (e.g. an unchanged user re-hashed).
        return f"--- a/{name}\n+++ b/{name}\n(password hashes changed; redacted)\n"
    return "".join(out)
