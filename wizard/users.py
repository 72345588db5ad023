"""Users in the top layer, made with the image's own ``useradd``/``chpasswd``.

A throwaway, network-less container of the image creates the users; the
passwords travel only over that container's stdin (never argv, environment,
logs or the saved config).  passwd/shadow/group/gshadow are then taken out
with their modes and ownership, as ``FileChange`` values for the top layer.
"""

from __future__ import annotations

import io
import re
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from wizard.errors import ToplayerError
from wizard.events import Event, LogLine, StepDone, StepStarted, check_cancel
from wizard.toplayer import ACCOUNT_FILES, SECRET_FILES, STEP, FileChange, FileInfo

if TYPE_CHECKING:
    import docker

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
