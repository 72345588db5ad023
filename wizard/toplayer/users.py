"""Users in the top layer, made with the image's own ``useradd``/``chpasswd``.

A throwaway, network-less container of the image creates the users; the
passwords travel only over that container's stdin (never argv, environment,
logs or the saved config).  passwd/shadow/group/gshadow are then taken out
with their modes and ownership, as ``FileChange`` values for the top layer.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from wizard.common.errors import ToplayerError
from wizard.common.events import Event, LogLine, StepDone, StepStarted, check_cancel, drive
from wizard.common.names import check_password, check_user_name
from wizard.store.containers import throwaway
from wizard.toplayer.files import ACCOUNT_FILES, SECRET_FILES, STEP, FileChange, FileInfo
from wizard.toplayer.machine import ADMIN_GROUPS

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

# What the users script prints on stderr for ``_raise_for`` to turn into one line.
_MISSING_TOOL = "dockerboot-wizard: missing "
_NO_USER = "dockerboot-wizard: no user "
_NO_ADMIN_GROUP = "dockerboot-wizard: no administrators' group"
# Runs as root inside the throwaway container.  Arguments are "passwords"
# (chpasswd reads name:password lines from stdin, the only way passwords
# travel) and "user:NAME", "admin:NAME", "home:NAME" (names validated by ``iter_accounts`` first).
_USERS_SCRIPT = f"""set -e
need() {{ command -v "$1" >/dev/null 2>&1 || {{ echo "{_MISSING_TOOL}$1" >&2; exit 127; }}; }}
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash
for a in "$@"; do
  case $a in user:*) u=${{a#user:}}
    if grep -q "^$u:" /etc/passwd; then echo "user $u exists, setting its password"
    else need useradd; useradd -m -s "$shell" "$u" && echo "created user $u (shell $shell)"; fi ;;
  esac
done
case " $* " in *" passwords "*) need chpasswd; chpasswd; echo "passwords set" ;; esac
group=
for a in "$@"; do
  u=${{a#*:}}
  case $a in
  admin:*)
    grep -q "^$u:" /etc/passwd || {{ echo "{_NO_USER}$u" >&2; exit 3; }}
    if [ -z "$group" ]; then
      for g in {' '.join(ADMIN_GROUPS)}; do
        grep -q "^$g:" /etc/group && {{ group=$g; break; }}
      done
      [ -n "$group" ] || {{ echo "{_NO_ADMIN_GROUP}" >&2; exit 4; }}
    fi
    need usermod; usermod -aG "$group" "$u"; echo "$u is an administrator (group $group)" ;;
  home:*)
    grep -q "^$u:" /etc/passwd || continue
    home=$(grep "^$u:" /etc/passwd | cut -d: -f6)
    [ -e "$home" ] && continue
    if command -v mkhomedir_helper >/dev/null 2>&1; then mkhomedir_helper "$u"
    else
      mkdir -p "$home"; cp -a /etc/skel/. "$home/" 2>/dev/null || true
      chown -R "$u:$(id -g "$u")" "$home"; chmod 700 "$home"
    fi
    echo "made the home $home of $u from /etc/skel" ;;
  esac
done
"""


class HomeDir(NamedTuple):
    """A ``user``'s new home directory, made in the container from the image's skel.

    ``path`` is where it lives in the booted system (``/home/<user>``),
    ``archive`` a tar of it as ``docker cp`` gives it (one top directory named
    like the home).
    """

    user: str
    path: str
    archive: bytes


@dataclass(frozen=True)
class Accounts:
    """What the throwaway container made: account file changes and new homes."""

    changes: list[FileChange]
    homes: list[HomeDir]


T = TypeVar("T")


def validate_user(name: str, password: str) -> None:
    """Raise ``ToplayerError`` for a bad user name or an unusable password."""
    check_user_name(name)
    check_password(name, password)


def read_account_files(toplayer: Path) -> dict[str, FileInfo]:
    """Return the account files (passwd, shadow, …) already in the top layer's ``etc``."""
    out = {}
    for name in ACCOUNT_FILES:
        path = Path(toplayer) / "etc" / name
        if path.is_file():
            st = path.stat()
            out[name] = FileInfo(path.read_bytes(), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    return out


def _tar(files: dict[str, FileInfo]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, info in files.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(info.data), info.mode
            member.uid, member.gid, member.mtime = info.uid, info.gid, int(time.time())
            tf.addfile(member, io.BytesIO(info.data))
    return buf.getvalue()


def _untar_one(chunks: Iterable[bytes]) -> FileInfo:
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tf:
        member = tf.next()
        f = tf.extractfile(member) if member is not None and member.isfile() else None
        if member is None or f is None:
            raise ToplayerError("unexpected archive from the container", "report this as a bug")
        return FileInfo(f.read(), member.mode & 0o7777, member.uid, member.gid)


def _get_files(container: Container) -> dict[str, FileInfo]:
    import docker.errors

    out = {}
    for name in ACCOUNT_FILES:
        try:
            chunks, _stat = container.get_archive(f"/etc/{name}")
        except docker.errors.NotFound:
            continue  # e.g. no gshadow in the image
        out[name] = _untar_one(chunks)
    return out


def _scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove any password that a tool might have echoed."""
    for s in secrets:
        text = text.replace(s, "<password redacted>")
    return text


def _wait(container: Container,
          cancel: threading.Event | None) -> int:
    import requests.exceptions

    while True:
        check_cancel(cancel)
        try:
            return int(container.wait(timeout=2)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            continue


def _run_users_container(
        client: docker.DockerClient, image: str, args: list[str], stdin: bytes,
        secrets: list[str], base_files: dict[str, FileInfo], homes: list[str],
        cancel: threading.Event | None,
) -> Generator[Event, None, tuple[dict[str, FileInfo], dict[str, FileInfo], list[HomeDir]]]:
    """Run the users script in a throwaway container; return (files, image's files, homes)."""
    with throwaway(client, image, purpose="create-users",
                   entrypoint=["/bin/sh", "-c", _USERS_SCRIPT, "dockerboot-users"],
                   command=args, user="root", stdin=True, working_dir="/") as box:
        container = box.container
        image_files = _get_files(container)
        if base_files:
            container.put_archive("/etc", _tar(base_files))
        box.start(stdin=stdin)
        code = _wait(container, cancel)
        lines = _scrub(container.logs(stdout=True, stderr=True).decode(errors="replace"),
                       secrets).splitlines()
        for line in lines:
            yield LogLine(line)
        _raise_for(image, code, lines)
        files = _get_files(container)
        return files, image_files, _take_homes(container, files.get("passwd"), homes)


def _raise_for(image: str, code: int, lines: list[str]) -> None:
    """Turn the users script's failure into one line naming the fix."""
    missing = [x[len(_MISSING_TOOL):] for x in lines if x.startswith(_MISSING_TOOL)]
    if missing:
        raise ToplayerError(
            f"image {image} has no {missing[0]}",
            "add the 'passwd' package to the Dockerfile (Debian/Ubuntu; 'shadow' on "
            "Arch/Fedora/Alpine), rebuild, then run again")
    unknown = [x[len(_NO_USER):] for x in lines if x.startswith(_NO_USER)]
    if unknown:
        raise ToplayerError(f"{unknown[0]} cannot be an administrator: there is no such user",
                            f"create the user too: --user {unknown[0]} --password-file FILE")
    if any(x.startswith(_NO_ADMIN_GROUP) for x in lines):
        raise ToplayerError(f"image {image} has neither a sudo nor a wheel group for "
                            "administrators", "add the sudo package to the Dockerfile, rebuild, "
                            "then run again (or leave out --admin)")
    if code != 0:
        raise ToplayerError(f"creating users in {image} failed (exit {code}): "
                            f"{lines[-1] if lines else 'no output'}",
                            "see the log above; fix the image or the user names")


def home_of(passwd: bytes | None, user: str) -> str | None:
    """The home directory of ``user`` in a passwd file (None: no such user)."""
    for line in (passwd or b"").decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == user:
            return fields[5]
    return None


def _take_homes(container: Container, passwd: FileInfo | None,
                users: list[str]) -> list[HomeDir]:
    import docker.errors

    out = []
    for user in users:
        home = home_of(passwd.data if passwd else None, user)
        if not home or not home.startswith("/home/") or ".." in home.split("/"):
            continue  # only homes under /home live on the persistent subvolume
        try:
            chunks, _stat = container.get_archive(home)
        except docker.errors.NotFound:
            continue
        out.append(HomeDir(user, home, b"".join(chunks)))
    return out


def iter_accounts(client: docker.DockerClient, image: str, users: list[tuple[str, str]],
                  base: Path | dict[str, FileInfo] | None = None,
                  cancel: threading.Event | None = None, *,
                  admins: Iterable[str] = (), homes: Iterable[str] = (),
                  ) -> Generator[Event, None, Accounts]:
    """Create users, make administrators and homes with the image's own tools.

    The generator's return value (``accounts = yield from …``) holds one
    ``FileChange`` per account file (passwd, shadow, group, gshadow), with
    mode and ownership as the image's tools left them, and a tar of each
    new home directory.  ``base`` is the top layer directory (or its account
    files): files already there are put into the container first, so
    earlier users are kept.  The container has no network, runs as root and
    is removed afterwards, also on error or cancel.  Passwords go to
    ``chpasswd`` over stdin only.

    Args:
        client: docker client.
        image: the image whose tools are used.
        users: (name, password) of users to create or whose password to set.
        base: the top layer (or its account files).
        cancel: set it to stop.
        admins: users to put in the image's ``sudo`` (else ``wheel``) group.
        homes: users whose home to make from the image's ``/etc/skel``
            (those whose home already exists in the image are left out).

    Raises:
        ToplayerError: bad user name/password, the image lacks
            useradd/chpasswd/usermod or an administrators' group, or the tools failed.
        ImageError: the image is missing, has no /bin/sh, or docker cannot run
            the container (``containers.throwaway``).
        Cancelled: ``cancel`` was set.

    """
    for name, password in users:
        validate_user(name, password)
    admins, homes = list(dict.fromkeys(admins)), list(dict.fromkeys(homes))
    for name in [*admins, *homes]:
        check_user_name(name)
    names = ", ".join(dict.fromkeys([n for n, _ in users] + admins + homes))
    base_files = read_account_files(base) if isinstance(base, Path) else dict(base or {})
    yield StepStarted(STEP, f"setting up user(s) {names} with {image}'s own tools")
    check_cancel(cancel)
    args = ([f"user:{n}" for n, _ in users] + (["passwords"] if users else [])
            + [f"admin:{n}" for n in admins] + [f"home:{n}" for n in homes])
    files, image_files, made = yield from _run_users_container(
        client, image, args, "".join(f"{n}:{p}\n" for n, p in users).encode(),
        [p for _, p in users], base_files, homes, cancel)
    changes = []
    for name, info in files.items():
        rel, old, image_old = f"etc/{name}", base_files.get(name), image_files.get(name)
        if old is not None and (old.data, old.mode, old.uid, old.gid) == (
                info.data, info.mode, info.uid, info.gid):
            continue
        changes.append(FileChange(
            rel, old.data if old else None, info.data, info.mode, info.uid, info.gid,
            secret=rel in SECRET_FILES, image_old=image_old.data if image_old else None))
    yield StepDone(STEP, f"user(s) {names} ready")
    return Accounts(changes, made)


def iter_create_users(client: docker.DockerClient, image: str, users: list[tuple[str, str]],
                      base: Path | dict[str, FileInfo] | None = None,
                      cancel: threading.Event | None = None,
                      ) -> Generator[Event, None, list[FileChange]]:
    """``iter_accounts`` for users only; returns the account file changes."""
    accounts = yield from iter_accounts(client, image, users, base, cancel)
    return accounts.changes


def create_users(client: docker.DockerClient, image: str, users: list[tuple[str, str]],
                 base: Path | dict[str, FileInfo] | None = None,
                 cancel: threading.Event | None = None,
                 on_event: Callable[[Event], None] | None = None, *,
                 admins: Iterable[str] = (), homes: Iterable[str] = ()) -> Accounts:
    """Run ``iter_accounts`` to the end; pass its events to ``on_event``."""
    return drive(iter_accounts(client, image, users, base, cancel, admins=admins, homes=homes),
                 on_event)


def collect(gen: Generator[Event, None, T]) -> tuple[list[Event], T]:
    """Run an event generator to the end; return its events and its return value."""
    events: list[Event] = []
    return events, drive(gen, events.append)
