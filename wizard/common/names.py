"""Syntax of the names the user types: partition label, hostname, user names, passwords.

Checked by ``Settings.validate`` (so the CLI, the TUI and the saved config
all refuse the same things) before any daemon is asked or anything mounted.
Only the syntax lives here; whether a user exists is the plan's question.
"""

from __future__ import annotations

import re

from wizard.common.errors import ConfigError, ToplayerError

_LABEL_RE = re.compile(r"^[A-Za-z0-9._+-]{1,255}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# shadow-utils' default NAME_REGEX, plus the trailing '$' it allows for machine accounts.
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,30}\$?$")


def check_label(label: str) -> str:
    """Return ``label`` if the boot entry can carry it, else raise ``ConfigError``.

    It goes unquoted into ``root=LABEL=``, ``toplayer=LABEL=`` and rEFInd's
    ``volume`` line: a blank, quote, comma or ``/`` would cut or change it.
    """
    if not _LABEL_RE.match(label):
        raise ConfigError(f"invalid partition label {label!r}: the boot entry cannot carry it",
                          "use letters, digits, '.', '_', '+' or '-' only (relabel with "
                          "`btrfs filesystem label DEVICE NAME`)")
    return label


def check_hostname(hostname: str) -> str:
    """Return ``hostname`` if it follows RFC 1123, else raise ``ToplayerError``."""
    labels = hostname.split(".")
    if not hostname or len(hostname) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        raise ToplayerError(
            f"invalid hostname {hostname!r}",
            "use labels of 1-63 letters, digits or '-' (not at either end), joined by '.'")
    return hostname


def check_user_name(name: str, what: str = "user name") -> str:
    """Return ``name`` if ``useradd`` accepts it portably, else raise ``ToplayerError``."""
    if not _USER.match(name):
        raise ToplayerError(f"invalid {what} {name!r}",
                            "use lower-case letters, digits, '_' or '-', starting with a letter")
    return name


def check_password(name: str, password: str) -> str:
    """Return ``password`` if ``chpasswd`` can take it whole, else raise ``ToplayerError``.

    Any other character (vertical tab, NEL, ``:``, non-ASCII) is part of it.
    """
    if not password:
        raise ToplayerError(f"empty password for {name}", "give a password")
    if "\n" in password or "\r" in password or "\0" in password:
        raise ToplayerError(f"the password for {name} contains a line break or NUL",
                            "choose a password without line breaks or NUL")
    return password
