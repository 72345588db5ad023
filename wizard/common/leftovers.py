"""What a killed wizard leaves behind, and how the next run removes it safely.

A ``SIGKILL`` (or a power cut, or a closed terminal under ``nohup``) stops
the wizard without its ``finally`` blocks: its top-level mount stays
mounted, a throwaway container may still run, a temp file may sit next to
a file being replaced.  Each of those carries a mark only the wizard makes,
and the next run removes what is marked *and* whose maker is gone:

- mounts live in ``RUN_DIR/top-<owner>-XXXX`` (``RUN_DIR`` is root's, 0700);
- containers carry the ``dockerboot-wizard`` label plus ``OWNER_LABEL``;
- temp files are ``.<name>.XXXXXXXX.tmp`` next to ``<name>`` (``write_atomic``).

The *owner* token is ``<boot id>_<pid namespace>_<pid>_<start time>`` (no ``:``,
which a docker volume specification cannot hold): a
process that no longer exists (or a pid reused by another process, or a
previous boot) is dead; a token from another pid namespace is never judged
dead, so a wizard in a container is left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.common.mountinfo import read_mountinfo

if TYPE_CHECKING:  # the SDK costs ~0.1 s: imported where it is used
    import docker

RUN_DIR = Path("/run/dockerboot-wizard")
"""The wizard's private directory for its mounts (root only, 0700)."""
LABEL = "dockerboot-wizard"
"""Every container the wizard creates carries this label (value: its purpose)."""
OWNER_LABEL = "dockerboot-wizard.owner"
"""The creating process's owner token (``owner_token()``)."""
_MOUNT_DIR = re.compile(r"^top-(?P<owner>[0-9a-f-]+_\d+_\d+_\d+)-[A-Za-z0-9_]+$")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _start_time(pid: int) -> str | None:
    try:
        stat_line = _read(f"/proc/{pid}/stat")
    except OSError:
        return None
    # Field 22 (starttime), counted after the ")" closing the command name.
    return stat_line.rpartition(")")[2].split()[19]


def _pid_ns() -> str:
    return str(os.stat("/proc/self/ns/pid").st_ino)


def owner_token(pid: int | None = None) -> str:
    """The owner token of process ``pid`` (this process by default)."""
    pid = pid or os.getpid()
    boot = _read("/proc/sys/kernel/random/boot_id")
    return f"{boot}_{_pid_ns()}_{pid}_{_start_time(pid)}"


def owner_alive(token: str) -> bool:
    """Whether the process behind ``token`` still runs (unknown namespaces: True)."""
    try:
        boot, ns, pid, start = token.split("_")
    except ValueError:
        return True  # not ours to judge
    if boot != _read("/proc/sys/kernel/random/boot_id"):
        return False  # made before the last reboot
    if ns != _pid_ns():
        return True
    return pid.isdigit() and _start_time(int(pid)) == start


def container_labels(purpose: str) -> dict[str, str]:
    """Labels for a throwaway container of this process (``purpose``: probe, initramfs, …)."""
    return {LABEL: purpose, OWNER_LABEL: owner_token()}


def remove_leftover_containers(client: docker.DockerClient) -> list[str]:
    """Remove containers a dead wizard left behind; return their short ids.

    Removed: containers with the ``dockerboot-wizard`` label whose owner
    process is gone; those of an older wizard without an owner label only
    when they are not running.  Unlabelled containers are never touched.
    """
    import docker.errors

    gone: list[str] = []
    try:
        found = client.containers.list(all=True, filters={"label": LABEL})
    except docker.errors.DockerException:
        return gone  # the caller's next docker call reports the daemon's problem
    for container in found:
        labels = container.labels or {}
        if LABEL not in labels:
            continue
        owner = labels.get(OWNER_LABEL)
        dead = not owner_alive(owner) if owner else container.status in (
            "created", "exited", "dead")
        if dead:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
                gone.append(container.short_id)
    return gone


def private_run_dir() -> Path:
    """``RUN_DIR``, created 0700 root:root; refused when it is not a plain root dir."""
    from wizard.common.errors import PartitionError

    with contextlib.suppress(FileExistsError):
        RUN_DIR.mkdir(mode=0o700, parents=True)
    st = os.lstat(RUN_DIR)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
        raise PartitionError(f"{RUN_DIR} is not a directory owned by root",
                             f"remove {RUN_DIR} (the wizard makes it itself) and run again")
    os.chmod(RUN_DIR, 0o700)
    return RUN_DIR


def mount_dir_prefix() -> str:
    """Prefix of this process's mount directories inside ``RUN_DIR``."""
    return f"top-{owner_token()}-"


def _mounted_at(path: Path) -> bool:
    return any(m.mountpoint == str(path) for m in read_mountinfo())


def stale_mount_dirs() -> list[Path]:
    """The entries ``top-<owner>-…`` in ``RUN_DIR`` whose owner is dead (links never)."""
    if not RUN_DIR.is_dir() or RUN_DIR.is_symlink():
        return []
    return [entry for entry in sorted(RUN_DIR.iterdir())
            if (m := _MOUNT_DIR.match(entry.name)) is not None
            and not owner_alive(m.group("owner")) and not entry.is_symlink()]


def remove_stale_mounts() -> list[Path]:
    """Unmount and remove the mount directories of dead wizards in ``RUN_DIR``.

    Only entries named ``top-<owner>-…`` whose owner is dead are touched; a
    directory is removed with ``rmdir`` (never recursively), so it goes
    only once nothing is mounted on it and it is empty.
    """
    gone: list[Path] = []
    for entry in stale_mount_dirs():
        for _ in range(8):  # stacked mounts: one umount each
            if not _mounted_at(entry):
                break
            if subprocess.run(["umount", str(entry)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(entry)], capture_output=True)
        with contextlib.suppress(OSError):
            entry.rmdir()
            gone.append(entry)
    return gone


def temp_name_pattern(name: str) -> re.Pattern[str]:
    """The names ``write_atomic`` gives its temp files for a file called ``name``.

    Also those of its backup copies (``.<name>.dockerboot-<stamp>.bak.XXXXXXXX.tmp``).
    """
    return re.compile(rf"^\.{re.escape(name)}(\.dockerboot-\d{{8}}T\d{{6}}Z(-\d+)?\.bak)?"
                      rf"\.[A-Za-z0-9_]{{8}}\.tmp$")


def remove_stale_temp_files(path: Path, tmp_dir: Path | None = None) -> list[Path]:
    """Remove ``write_atomic``'s leftover temp files of ``path`` (regular files only).

    Looked for in ``tmp_dir`` (default: ``path``'s directory), by name only.
    """
    pattern = temp_name_pattern(Path(path).name)
    gone = []
    with contextlib.suppress(OSError):
        for entry in Path(tmp_dir or Path(path).parent).iterdir():
            if pattern.match(entry.name) and stat.S_ISREG(os.lstat(entry).st_mode):
                entry.unlink(missing_ok=True)
                gone.append(entry)
    return gone
