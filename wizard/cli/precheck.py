"""What the headless ``apply`` reads and checks before any daemon or mount.

Passwords come from files (or stdin, without echo on a terminal) as the exact
characters of the first line; every name is checked by ``Settings.validate``
first, so a typo costs no mount, no daemon call and no container.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from wizard.common.errors import ConfigError
from wizard.common.names import check_password, check_user_name
from wizard.settings.config import Settings

PLACEHOLDER_IMAGE = "unset:unset"
"""Stands for the saved config's image while only the syntax is checked."""


def first_line(data: bytes, source: str) -> str:
    r"""The password in ``data``: its first line, exactly.

    The line ends only at ``\n`` (one trailing ``\r`` is dropped, for files
    written on Windows); ``str.splitlines`` would also cut at ``\v``,
    ``\x0c``, ``\x1c``-``\x1e``, ``\x85`` and ``\u2028``, which are legal
    password characters.

    Raises:
        ConfigError: the bytes are not UTF-8.

    """
    line = data.split(b"\n", 1)[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"the password in {source} is not UTF-8 text (byte {e.start + 1} of "
                          "its first line)", "save it as UTF-8, then run again") from e


def read_password_file(name: str, user: str, *, stdin: BinaryIO | None = None,
                       ask: Callable[[str], str] = getpass.getpass) -> str:
    """The password for ``user`` from file ``name`` (``-``: stdin, no echo on a terminal).

    Raises:
        ConfigError: the file is missing, a directory, unreadable or not UTF-8.

    """
    if name == "-":
        if stdin is None and sys.stdin is not None and sys.stdin.isatty():
            try:
                return ask(f"password for {user} (not shown): ")
            except EOFError as e:
                raise ConfigError(f"no password for {user} was typed",
                                  "type it, or give --password-file FILE") from e
        stream = stdin if stdin is not None else sys.stdin.buffer
        return first_line(stream.readline(), "stdin")
    path = Path(name)
    if path.is_dir():
        raise ConfigError(f"password file {name} is a directory",
                          "give a file holding the password on its first line")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read password file {name}: {e.strerror}",
                          "give a readable file holding the password on its first line"
                          ) from e
    return first_line(data, name)


def read_passwords(users: Sequence[str], files: Sequence[str], *,
                   stdin: BinaryIO | None = None,
                   ask: Callable[[str], str] = getpass.getpass) -> dict[str, str]:
    """Pair each ``--user`` with its ``--password-file``, read and check the passwords.

    Raises:
        ConfigError: a user without a file, two from stdin, a user given twice,
            an unreadable file.
        ToplayerError: a bad user name, an empty password or one with a line
            break or NUL.

    """
    if len(users) != len(files):
        raise ConfigError("each --user needs its own --password-file",
                          "give --password-file FILE (or -) right after --user NAME")
    if list(files).count("-") > 1:
        raise ConfigError("only one password can come from stdin", "use files for the others")
    twice = next((u for i, u in enumerate(users) if u in users[:i]), None)
    if twice is not None:
        raise ConfigError(f"--user {twice} is given twice", "give each user once")
    for user in users:
        check_user_name(user)
    out: dict[str, str] = {}
    for user, name in zip(users, files, strict=True):
        password = read_password_file(name, user, stdin=stdin, ask=ask)
        if not password:
            raise ConfigError(f"the password for {user} is empty",
                              f"put it on the first line of {'stdin' if name == '-' else name}")
        out[user] = check_password(user, password)
    return out


def precheck(args: argparse.Namespace) -> None:
    """Check every name and path given on the command line; nothing is mounted or asked.

    Raises:
        WizardError: the first bad value, as one line.

    """
    Settings(label=args.label, image=args.image or PLACEHOLDER_IMAGE,
             hostname=args.hostname, users=tuple(args.user), admins=tuple(args.admin),
             kernel_options=args.kernel_options or "",
             default_entry=getattr(args, "default_entry", None) or "").validate()
    if args.esp is not None and not Path(args.esp).is_dir():
        raise ConfigError(f"--esp {args.esp} is not a directory",
                          "give the directory where the ESP is mounted, e.g. /boot/efi")
    if args.refind_conf is not None:
        conf = Path(args.refind_conf)
        if conf.is_dir():
            raise ConfigError(f"--refind-conf {conf} is a directory",
                              "give the path of rEFInd's refind.conf file")
        if not conf.is_file():
            raise ConfigError(f"--refind-conf {conf} does not exist",
                              "give the path of rEFInd's refind.conf")
