"""Planning the top layer of one apply: hostname, users, administrators, homes, machine files.

``plan_toplayer`` gathers what ``apply.make_plan`` writes into the top layer
and around it: the hostname, accounts made with the image's own tools (new
users, administrators, home directories from ``/etc/skel``), the machine
files of ``wizard.toplayer.machine`` (fstab, daemon.json, machine-id, hosts) and the
persistent subvolumes to create.  The TUI's edits
are the base the machine files are merged into, so nothing typed is lost.
``install`` carries out the parts that are not plain files: subvolumes and
homes, each only when it does not exist yet.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.common.errors import ToplayerError
from wizard.settings.config import Settings
from wizard.store import rootfs
from wizard.toplayer import files as toplayer
from wizard.toplayer import machine, selfupdate, users
from wizard.toplayer.files import FileChange
from wizard.toplayer.fstab import HOME_SUBVOLUME

if TYPE_CHECKING:
    import docker

MACHINE_FILES = ("etc/fstab", "etc/hosts", "etc/hostname", "etc/machine-id",
                 "etc/docker/daemon.json")
"""Top-layer files the machine set-up merges into (read before planning)."""


@dataclass
class ToplayerPlan:
    """Everything one apply does to the top layer and the persistent subvolumes."""

    changes: list[FileChange] = field(default_factory=list)
    homes: list[users.HomeDir] = field(default_factory=list)
    subvolumes: list[str] = field(default_factory=list)
    landings: list[rootfs.Landing] = field(default_factory=list)
    """Top-layer files the hook lays over an image symlink (``rootfs.overlay``)."""


def _current(toplayer_dir: Path, edits: Mapping[str, bytes]) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for rel in MACHINE_FILES:
        path = toplayer_dir / rel
        out[rel] = edits.get(rel, path.read_bytes() if path.is_file()
                             and not path.is_symlink() else None)
    return out


def _home_exists(top: Path, passwd: bytes | None, user: str) -> bool:
    home = users.home_of(passwd, user)
    if home is None or not home.startswith("/home/"):
        return False
    path = top / HOME_SUBVOLUME / home[len("/home/"):]
    return path.exists() or path.is_symlink()


def plan_toplayer(client: docker.DockerClient, image: str, settings: Settings, top: Path,
                  image_root: Path, passwords: Mapping[str, str],
                  edits: Mapping[str, bytes] | None = None, *,
                  old_settings: Settings | None = None,
                  cancel: threading.Event | None = None) -> ToplayerPlan:
    """Plan the top layer for ``settings`` (see the module's docstring).

    Raises:
        ToplayerError: an administrator who is no user, an image without an
            administrators' group, a bad hostname, daemon.json or user, or a
            top-layer entry the boot hook cannot lay over the image.

    """
    edits = dict(edits or {})
    top_dir = toplayer.toplayer_dir(top, settings)
    out = ToplayerPlan()
    if settings.hostname:
        hostname = toplayer.plan_hostname(top_dir, settings.hostname)
        if hostname.changed:
            out.changes.append(hostname)
        edits["etc/hostname"] = hostname.new
    accounts = users.read_account_files(top_dir)
    known = [*settings.users, *passwords]
    stranger = [a for a in settings.admins if a not in known]
    if stranger:
        raise ToplayerError(f"{stranger[0]} cannot be an administrator: not a user the "
                            "wizard made", f"add --user {stranger[0]} --password-file FILE")
    group_file = (accounts["group"].data if "group" in accounts
                  else rootfs.read_file(image_root, "etc/group"))
    group = machine.admin_group(group_file)
    if settings.admins and group is None:
        raise ToplayerError(f"image {image} has neither a sudo nor a wheel group for "
                            "administrators", "add the sudo package to the Dockerfile, "
                            "rebuild, then run again (or leave out --admin)")
    admins = [a for a in settings.admins
              if group is None or a not in machine.members(group_file, group)]
    passwd = accounts["passwd"].data if "passwd" in accounts else None
    homes = [u for u in dict.fromkeys(known)
             if settings.home and not _home_exists(top, passwd, u)]
    if passwords or admins or homes:
        made = users.create_users(client, image, list(passwords.items()), top_dir, cancel,
                                  admins=admins, homes=homes)
        out.changes += made.changes
        out.homes = made.homes
    machine_plan = machine.plan_machine(settings, top, image_root, _current(top_dir, edits),
                                        old_settings, on_disk=_current(top_dir, {}))
    out.changes += machine_plan.changes
    out.changes += selfupdate.plan(top_dir, settings)
    out.subvolumes = machine_plan.subvolumes
    # The TUI's other edits, one change per file (the machine files merged them already).
    planned = {c.relpath for c in out.changes}
    out.changes += [c for c in edit_changes(top_dir, edits) if c.relpath not in planned]
    out.landings = rootfs.overlay(top_dir, image_root,
                                  [*(c.relpath for c in out.changes), *edits])
    return out


def edit_changes(toplayer_dir: Path, edits: dict[str, bytes]) -> list[toplayer.FileChange]:
    """Top-layer files edited in the TUI as ``FileChange`` values for a plan.

    An existing file keeps its mode and owner; a new one is 0644 root:root.
    Unchanged files are left out.
    """
    out = []
    for rel, data in sorted(edits.items()):
        path = Path(toplayer_dir) / rel
        if path.is_file():
            st = path.stat()
            old = path.read_bytes()
            if old != data:
                out.append(toplayer.FileChange(rel, old, data, st.st_mode & 0o7777,
                                               st.st_uid, st.st_gid))
        else:
            out.append(toplayer.FileChange(rel, None, data))
    return out


def install(top: Path, plan: ToplayerPlan) -> list[str]:
    """Create the missing persistent subvolumes, then the new homes; return what was made.

    An existing home is never touched: a home is unpacked into a scratch
    directory next to it and renamed into place only when nothing is there.
    """
    made = []
    for name in plan.subvolumes:
        path = top / name
        if not path.exists():
            _btrfs("subvolume", "create", str(path))
            made.append(f"subvolume {name}")
    home_root = top / HOME_SUBVOLUME
    for home in plan.homes:
        target = home_root / home.path[len("/home/"):]
        if not home_root.is_dir() or home_root.is_symlink() or \
                target.exists() or target.is_symlink():
            continue
        _unpack_home(home_root, target, home)
        made.append(f"home {home.path} of {home.user}")
    return made


def _unpack_home(home_root: Path, target: Path, home: users.HomeDir) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f".dockerboot-new-{home.user}-", dir=home_root))
    try:
        # GNU tar keeps owners, modes and xattrs (SELinux labels, capabilities) as the
        # image's tools made them; Python's tarfile would drop the xattrs.
        result = subprocess.run(["tar", "-x", "-p", "--numeric-owner", "--xattrs",
                                 "--xattrs-include=*", "-C", str(scratch)],
                                input=home.archive, capture_output=True)
        if result.returncode != 0:
            raise ToplayerError(f"unpacking the home {home.path} failed: "
                                f"{result.stderr.decode(errors='replace').strip()[-200:]}",
                                "check free space on the partition, then run again")
        made = scratch / Path(home.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(made, target)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)


def _btrfs(*args: str) -> None:
    try:
        result = subprocess.run(["btrfs", *args], capture_output=True, text=True)
    except FileNotFoundError as e:
        raise ToplayerError("btrfs-progs is not installed", "install it: apt-get install "
                            "btrfs-progs") from e
    if result.returncode != 0:
        raise ToplayerError(f"btrfs {' '.join(args)} failed: {result.stderr.strip()}",
                            "check that the partition is btrfs and has free space")
