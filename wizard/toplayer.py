"""The per-machine top layer (DESIGN §4, §5 step 4).

The top layer is a directory (``<top level>/<toplayer_path>``, mode 0700)
copied over the fresh root at every boot.  This module plans changes to it
as ``FileChange`` values (shown as diffs in the review, secrets redacted)
and applies them atomically.  Users are created with the image's own
``useradd``/``chpasswd`` in a throwaway, network-less container; passwords
travel only over that container's stdin.

Backups of replaced files go under ``<boot_dir>/backups/toplayer/<stamp>/``,
never next to the file: anything inside the top layer ends up in the root.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from wizard.atomic import write_atomic
from wizard.config import Settings
from wizard.diffs import unified_diff
from wizard.errors import ToplayerError
from wizard.events import Event, LogLine, StepDone, StepStarted, check_cancel

if TYPE_CHECKING:
    import docker

TOPLAYER_MODE = 0o700
ACCOUNT_FILES = ("passwd", "shadow", "group", "gshadow")
SECRET_FILES = frozenset({"etc/shadow", "etc/gshadow"})
STEP = "toplayer"
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# shadow-utils' default NAME_REGEX, plus the trailing '$' it allows for machine accounts.
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,30}\$?$")
_MISSING_TOOL = "dockerboot-wizard: missing "
# Runs as root inside the throwaway container; user names arrive as "$@"
# (validated above), passwords only on stdin for chpasswd.
_USERS_SCRIPT = f"""set -e
for t in useradd chpasswd; do
  command -v "$t" >/dev/null 2>&1 || {{ echo "{_MISSING_TOOL}$t" >&2; exit 127; }}
done
shell=/bin/sh
[ -x /bin/bash ] && shell=/bin/bash
for u in "$@"; do
  if grep -q "^$u:" /etc/passwd; then echo "user $u exists, setting its password"
  else useradd -m -s "$shell" "$u" && echo "created user $u (shell $shell)"; fi
done
chpasswd
echo "passwords set"
"""

T = TypeVar("T")


@dataclass(frozen=True)
class FileInfo:
    """A file's content and metadata, as taken out of a container."""

    data: bytes
    """Content."""
    mode: int
    """Permission bits (``0o7777`` part of the mode)."""
    uid: int
    """Owner uid."""
    gid: int
    """Group gid (e.g. the image's ``shadow`` group for ``/etc/shadow``)."""


@dataclass(frozen=True)
class FileChange:
    """One planned write of a file in the top layer."""

    relpath: str
    """Path relative to the top layer, e.g. ``etc/hostname``."""
    old: bytes | None
    """Current content in the top layer, or None if the file is not there yet."""
    new: bytes
    """Content to write."""
    mode: int = 0o644
    """Permission bits of the written file."""
    uid: int = 0
    """Owner uid of the written file."""
    gid: int = 0
    """Group gid of the written file."""
    secret: bool = False
    """True for shadow/gshadow: diffs redact the password hashes."""
    image_old: bytes | None = None
    """The image's own version of the file, diffed against when ``old`` is None."""

    @property
    def changed(self) -> bool:
        """Tell whether applying this change would alter the top layer's content."""
        return self.old != self.new


def toplayer_dir(top: Path, settings: Settings) -> Path:
    """Return the top-layer directory under the mounted top level ``top``."""
    return Path(top) / settings.toplayer_path


def ensure_toplayer(top: Path, settings: Settings) -> Path:
    """Create the top-layer directory (mode 0700, root:root) and return it."""
    path = toplayer_dir(top, settings)
    path.mkdir(parents=True, exist_ok=True)
    # mkdir honours the umask and leaves an existing dir alone: set it explicitly.
    os.chmod(path, TOPLAYER_MODE)
    os.chown(path, 0, 0)
    return path


def validate_hostname(hostname: str) -> str:
    """Return ``hostname`` if it follows RFC 1123, else raise ``ToplayerError``."""
    labels = hostname.split(".")
    if not hostname or len(hostname) > 253 or not all(_LABEL.match(x) for x in labels):
        raise ToplayerError(
            f"invalid hostname {hostname!r}",
            "use labels of 1-63 letters, digits or '-' (not at either end), joined by '.'")
    return hostname


def plan_hostname(toplayer: Path, hostname: str) -> FileChange:
    """Plan the top layer's ``etc/hostname`` for ``hostname``."""
    validate_hostname(hostname)
    target = Path(toplayer) / "etc/hostname"
    old = target.read_bytes() if target.is_file() else None
    return FileChange("etc/hostname", old, f"{hostname}\n".encode())


def diff_text(change: FileChange) -> str:
    """Return a unified diff for ``change`` (hashes redacted; '' when unchanged)."""
    old = change.old if change.old is not None else change.image_old
    label = change.relpath if change.old is not None or change.image_old is None \
        else f"{change.relpath} (against the image's own file)"
    return unified_diff(old, change.new, label, secret=change.secret)


def backup_root(top: Path, settings: Settings) -> Path:
    """Return where replaced top-layer files are backed up (outside the top layer)."""
    root = Path(top) / settings.boot_dir / "backups" / "toplayer"
    if root.is_relative_to(toplayer_dir(top, settings)):
        # toplayer_path == boot_dir (seed layout): keep backups out of the root copy.
        root = Path(top) / ".dockerboot-backups" / "toplayer"
    return root


def _target(toplayer: Path, relpath: str) -> Path:
    """Resolve ``relpath`` inside the top layer, refusing escapes and symlinked dirs."""
    parts = Path(relpath).parts
    if not parts or Path(relpath).is_absolute() or ".." in parts:
        raise ToplayerError(f"invalid top-layer path {relpath!r}",
                            "give a path relative to the top layer without '..'")
    current = Path(toplayer)
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise ToplayerError(f"{current} is a symlink",
                                "replace it with a real directory in the top layer")
    return Path(toplayer, *parts)


def _makedirs(toplayer: Path, directory: Path) -> None:
    """Create missing dirs as 0755 root:root: ``cp -a`` gives the root these modes."""
    missing = []
    d = directory
    while not d.exists() and d != Path(toplayer):
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir()
        os.chmod(d, 0o755)
        os.chown(d, 0, 0)


def apply_change(toplayer: Path, change: FileChange, backups: Path,
                 stamp: str | None = None) -> Path | None:
    """Write ``change`` into the top layer atomically; return the backup path, if any.

    The replaced file is first copied to ``backups/<stamp>/<relpath>`` (see
    ``backup_root``; ``stamp`` defaults to the current UTC time), never next
    to it.  An identical file is left alone.
    """
    target = _target(toplayer, change.relpath)
    _makedirs(toplayer, target.parent)
    saved = None
    if target.exists():
        st = target.stat()
        if (target.read_bytes() == change.new and st.st_mode & 0o7777 == change.mode
                and (st.st_uid, st.st_gid) == (change.uid, change.gid)):
            return None
        stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        saved = backups / stamp / change.relpath
        n = 1
        while saved.exists():  # two applies within one second
            saved, n = backups / f"{stamp}-{n}" / change.relpath, n + 1
        saved.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(backups, 0o700)  # backups may hold shadow: keep them private
        shutil.copy2(target, saved)
        os.chown(saved, st.st_uid, st.st_gid)
    write_atomic(target, change.new, mode=change.mode, uid=change.uid, gid=change.gid,
                 backup=False)
    return saved


def apply_changes(top: Path, settings: Settings, changes: Iterable[FileChange]) -> list[Path]:
    """Apply ``changes`` to the top layer (created if needed); return the backups made."""
    toplayer = ensure_toplayer(top, settings)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    made = [apply_change(toplayer, c, backup_root(top, settings), stamp) for c in changes]
    return [p for p in made if p is not None]


def validate_user(name: str, password: str) -> None:
    """Raise ``ToplayerError`` for a bad user name or an unusable password."""
    if not _USER.match(name):
        raise ToplayerError(f"invalid user name {name!r}",
                            "use lower-case letters, digits, '_' or '-', starting with a letter")
    if not password:
        raise ToplayerError(f"empty password for {name}", "give a password")
    if "\n" in password or "\r" in password or "\0" in password:
        raise ToplayerError(f"the password for {name} contains a line break or NUL",
                            "choose a password without control characters")


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


def _get_files(container: docker.models.containers.Container) -> dict[str, FileInfo]:
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


def _send_stdin(container: docker.models.containers.Container, payload: bytes) -> None:
    """Start ``container`` with ``payload`` on its stdin, then close stdin (EOF)."""
    sock = container.attach_socket(params={"stdin": 1, "stream": 1})
    raw = getattr(sock, "_sock", sock)
    try:
        container.start()
        raw.sendall(payload)
        # Half-close: with StdinOnce the daemon then closes the container's stdin.
        raw.shutdown(socket.SHUT_WR)
    finally:
        sock.close()


def _wait(container: docker.models.containers.Container,
          cancel: threading.Event | None) -> int:
    import requests.exceptions

    while True:
        check_cancel(cancel)
        try:
            return int(container.wait(timeout=2)["StatusCode"])
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            continue


def _run_users_container(
        client: docker.DockerClient, image: str, users: list[tuple[str, str]],
        base_files: dict[str, FileInfo], cancel: threading.Event | None,
) -> Generator[Event, None, tuple[dict[str, FileInfo], dict[str, FileInfo]]]:
    """Run useradd/chpasswd in a throwaway container; return (files, image's files)."""
    import docker.errors

    names = [name for name, _ in users]
    secrets = [password for _, password in users]
    try:
        container = client.containers.create(
            image, entrypoint=["/bin/sh", "-c", _USERS_SCRIPT, "dockerboot-users"],
            command=names, user="root", network_disabled=True, network_mode="none",
            stdin_open=True, tty=False, working_dir="/",
            labels={"dockerboot-wizard": "create-users"})
    except docker.errors.ImageNotFound as e:
        raise ToplayerError(f"image {image} not found", "pull or build it first") from e
    except docker.errors.APIError as e:
        raise ToplayerError(f"cannot create a container of {image}: {e.explanation}",
                            "check that the image is a full OS image") from e
    try:
        image_files = _get_files(container)
        if base_files:
            container.put_archive("/etc", _tar(base_files))
        try:
            _send_stdin(container, "".join(f"{n}:{p}\n" for n, p in users).encode())
        except docker.errors.APIError as e:
            raise ToplayerError(f"cannot run /bin/sh in {image}: {e.explanation}",
                                "the image needs a shell (/bin/sh) for user creation") from e
        code = _wait(container, cancel)
        lines = _scrub(container.logs(stdout=True, stderr=True).decode(errors="replace"),
                       secrets).splitlines()
        for line in lines:
            yield LogLine(line)
        missing = [x[len(_MISSING_TOOL):] for x in lines if x.startswith(_MISSING_TOOL)]
        if missing:
            raise ToplayerError(
                f"image {image} has no {missing[0]}",
                "add the 'passwd' package to the Dockerfile (Debian/Ubuntu; 'shadow' on "
                "Arch/Fedora/Alpine), rebuild, then run again")
        if code != 0:
            raise ToplayerError(f"creating users in {image} failed (exit {code}): "
                                f"{lines[-1] if lines else 'no output'}",
                                "see the log above; fix the image or the user names")
        return _get_files(container), image_files
    finally:
        try:
            container.remove(force=True)
        except docker.errors.APIError:
            pass  # already gone


def iter_create_users(client: docker.DockerClient, image: str, users: list[tuple[str, str]],
                      base: Path | dict[str, FileInfo] | None = None,
                      cancel: threading.Event | None = None,
                      ) -> Generator[Event, None, list[FileChange]]:
    """Create ``users`` with the image's own tools, as a generator of events.

    The generator's return value (``changes = yield from …``) is one
    ``FileChange`` per account file (passwd, shadow, group, gshadow), with
    mode and ownership as the image's tools left them.  ``base`` is the top
    layer directory (or its account files): files already there are put
    into the container first, so earlier users are kept.  The container has
    no network, runs as root and is removed afterwards, also on error or
    cancel.  Passwords go to ``chpasswd`` over stdin only.

    Raises:
        ToplayerError: bad user name/password, image missing, the image lacks
            useradd/chpasswd, or the tools failed.
        Cancelled: ``cancel`` was set.

    """
    for name, password in users:
        validate_user(name, password)
    names = ", ".join(name for name, _ in users)
    base_files = read_account_files(base) if isinstance(base, Path) else dict(base or {})
    yield StepStarted(STEP, f"creating user(s) {names} with {image}'s own tools")
    check_cancel(cancel)
    files, image_files = yield from _run_users_container(client, image, users, base_files,
                                                         cancel)
    changes = []
    for name, info in files.items():
        rel, old, image_old = f"etc/{name}", base_files.get(name), image_files.get(name)
        changes.append(FileChange(
            rel, old.data if old else None, info.data, info.mode, info.uid, info.gid,
            secret=rel in SECRET_FILES, image_old=image_old.data if image_old else None))
    yield StepDone(STEP, f"user(s) {names} ready")
    return changes


def create_users(client: docker.DockerClient, image: str, users: list[tuple[str, str]],
                 base: Path | dict[str, FileInfo] | None = None,
                 cancel: threading.Event | None = None,
                 on_event: Callable[[Event], None] | None = None) -> list[FileChange]:
    """Run ``iter_create_users`` to the end; pass its events to ``on_event``."""
    return _drive(iter_create_users(client, image, users, base, cancel), on_event)


def _drive(gen: Generator[Event, None, T], on_event: Callable[[Event], None] | None) -> T:
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)


def collect(gen: Generator[Event, None, T]) -> tuple[list[Event], T]:
    """Run an event generator to the end; return its events and its return value."""
    events: list[Event] = []
    return events, _drive(gen, events.append)
