"""A real machine after the first boot (DESIGN §4b): the top-layer files that make it one.

Everything in the root is reset at every boot, so what a machine must keep
lives elsewhere, and what makes it *this* machine lives in the top layer:

- ``etc/fstab`` mounts docker's data-root at ``/var/lib/docker`` (the booted
  system's ``docker pull`` updates the store the next boot reads), a
  persistent ``/home`` and ``/var/log/journal``, each on its own subvolume;
- ``etc/docker/daemon.json`` pins the classic btrfs driver (merged into the
  image's own file, its keys kept);
- ``etc/machine-id``, made once per machine and never again;
- ``etc/hosts`` names the hostname (merged with the image's file).

Every file is planned as a ``FileChange`` on top of what is there already
(the top layer's file, the TUI's edit, else the image's own), so a user's
own lines survive.  Pure functions over bytes, plus ``plan_machine`` which
reads the image's files from its subvolume.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from wizard.common.errors import ToplayerError
from wizard.settings.config import Settings
from wizard.store import rootfs
from wizard.toplayer.files import FileChange
from wizard.toplayer.fstab import HOME_SUBVOLUME, JOURNAL_SUBVOLUME, escape, merge_line

MACHINE_ID_MODE = 0o444
_MACHINE_ID = re.compile(rb"^[0-9a-f]{32}\n?$")
ADMIN_GROUPS = ("sudo", "wheel")
"""Groups whose members the images' own sudoers make administrators, in order of preference."""
DEFAULT_HOSTS = b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


@dataclass(frozen=True)
class Mount:
    """A persistent subvolume of the partition, mounted by the top layer's fstab."""

    setting: str
    """The ``Settings`` flag that turns it on."""
    mountpoint: str
    subvolume: str
    options: str
    why: str


PERSISTENT = (
    Mount("home", "/home", HOME_SUBVOLUME, "nofail",
          "home directories that survive reboots"),
    Mount("journal", "/var/log/journal", JOURNAL_SUBVOLUME, "nofail",
          "the system journal of earlier boots (journalctl -b -1)"),
)
"""Subvolumes the wizard creates (when missing) and mounts, with the setting for each."""


def fstab_lines(settings: Settings) -> dict[str, str | None]:
    """The fstab line for each mountpoint the wizard manages (None: that feature is off).

    Docker's line has no ``nofail``: its subvolume holds the image this very
    boot came from, and a docker started before the mount would fill the
    reset root instead of the store.
    """
    spec = f"LABEL={escape(settings.label)}"
    lines: dict[str, str | None] = {
        "/var/lib/docker": (f"{spec} /var/lib/docker btrfs subvol={escape(settings.docker_path)}"
                            " 0 0") if settings.docker_store else None}
    for m in PERSISTENT:
        on = getattr(settings, m.setting)
        lines[m.mountpoint] = (f"{spec} {escape(m.mountpoint)} btrfs "
                               f"subvol={escape(m.subvolume)},{m.options} 0 0") if on else None
    return lines


def merge_fstab(text: str, settings: Settings, old_settings: Settings | None = None) -> str:
    """``text`` with the wizard's lines: added when their mountpoint has no entry yet.

    A line the user wrote for the same mountpoint is kept as it is; a feature
    turned off removes only the line the wizard itself wrote for it (as
    ``old_settings``, or the same settings turned on, would render it).
    """
    for mountpoint, line in fstab_lines(settings).items():
        entries = [x for x in text.splitlines()
                   if len(x.split()) >= 2 and not x.lstrip().startswith("#")
                   and x.split()[1] == mountpoint]
        if line is not None:
            if not entries:
                text = merge_line(text, line)
            continue
        ours = {fstab_lines(s)[mountpoint] for s in _all_on(settings, old_settings)}
        kept = [x for x in text.splitlines(keepends=True) if x.rstrip("\r\n") not in ours]
        text = "".join(kept)
    return text


def _all_on(settings: Settings, old: Settings | None) -> list[Settings]:
    # Every feature ``fstab_lines`` renders turned on: docker's store and each of PERSISTENT.
    return [replace(s, docker_store=True, home=True, journal=True)
            for s in (settings, old) if s is not None]


def merge_daemon_json(data: bytes | None) -> bytes:
    """``daemon.json`` content selecting the classic btrfs driver, other keys kept.

    Raises:
        ToplayerError: the existing file is not a JSON object.

    """
    try:
        config = json.loads(data) if data and data.strip() else {}
    except (ValueError, UnicodeDecodeError) as e:
        raise ToplayerError(f"etc/docker/daemon.json is not valid JSON: {e}",
                            "fix the file in the top layer (or the image), then run again") from e
    if not isinstance(config, dict):
        raise ToplayerError("etc/docker/daemon.json is not a JSON object",
                            "make it an object like {\"storage-driver\": \"btrfs\"}")
    features = config.get("features")
    if features is not None and not isinstance(features, dict):
        raise ToplayerError("etc/docker/daemon.json has a \"features\" that is not an object",
                            "fix the file in the top layer (or the image), then run again")
    wanted = {**config, "storage-driver": "btrfs",
              "features": {**(features or {}), "containerd-snapshotter": False}}
    if data is not None and wanted == config:
        return data
    return (json.dumps(wanted, indent=2) + "\n").encode()


def merge_hosts(data: bytes | None, hostname: str) -> bytes:
    """``/etc/hosts`` naming ``hostname`` (Debian's ``127.0.1.1`` line), the rest kept."""
    text = (data if data is not None else DEFAULT_HOSTS).decode("utf-8", "surrogateescape")
    names = [hostname] + ([hostname.split(".")[0]] if "." in hostname else [])
    lines = text.splitlines(keepends=True)
    for i, old in enumerate(lines):
        fields = old.split("#", 1)[0].split()
        if fields and fields[0] == "127.0.1.1":
            ending = old[len(old.rstrip("\r\n")):] or "\n"
            lines[i] = "\t".join(["127.0.1.1", " ".join(names)]) + ending
            return "".join(lines).encode("utf-8", "surrogateescape")
        if len(fields) >= 2 and hostname in fields[1:]:
            return data if data is not None else text.encode()
    if text and not text.endswith("\n"):
        text += "\n"
    return (text + f"127.0.1.1\t{' '.join(names)}\n").encode("utf-8", "surrogateescape")


def generated_file(rel: str, image: bytes | None, settings: Settings) -> bytes:
    """What apply writes for ``rel`` when the top layer has none, from the image's copy.

    For ``etc/fstab`` and ``etc/docker/daemon.json`` that is the image's file
    with the wizard's lines and keys; any other file is the image's as it is.

    Raises:
        ToplayerError: the image's daemon.json is not a JSON object.

    """
    if rel == "etc/fstab":
        text = (image or b"").decode("utf-8", "surrogateescape")
        return merge_fstab(text, settings).encode("utf-8", "surrogateescape")
    if rel == "etc/docker/daemon.json" and settings.docker_store:
        return merge_daemon_json(image)
    return image or b""


def new_machine_id() -> bytes:
    """A fresh machine ID as ``/etc/machine-id`` holds it (32 hex digits, newline)."""
    return uuid.uuid4().hex.encode() + b"\n"


def has_machine_id(data: bytes | None) -> bool:
    """Whether ``data`` is a valid ``/etc/machine-id`` (not empty, not "uninitialized")."""
    return data is not None and bool(_MACHINE_ID.match(data))


@dataclass(frozen=True)
class MachinePlan:
    """What makes the booted image a real machine: top-layer files and subvolumes."""

    changes: list[FileChange]
    """Top-layer files to write (only those that change)."""
    subvolumes: list[str]
    """Subvolumes to create at the partition's top level (missing ones only)."""


def plan_machine(settings: Settings, top: Path, image_root: Path,
                 current: Mapping[str, bytes | None],
                 old_settings: Settings | None = None,
                 on_disk: Mapping[str, bytes | None] | None = None) -> MachinePlan:
    """Plan the machine's top-layer files and the persistent subvolumes to create.

    Args:
        settings: what the user chose (``home``, ``journal``, ``docker_store``, hostname).
        top: the partition's top level, mounted.
        image_root: the image's subvolume (its files are read, never written).
        current: the top layer's files as they will be before these changes
            (TUI edits included), for ``etc/fstab``, ``etc/hosts``,
            ``etc/hostname``, ``etc/machine-id`` and ``etc/docker/daemon.json``.
        old_settings: the saved settings, so turning a feature off removes its line.
        on_disk: the top layer's files as they are now (default: ``current``),
            what each change is diffed against.

    Raises:
        ToplayerError: the existing daemon.json is not a JSON object, or a
            persistent subvolume's name is taken by something else.

    """
    changes: list[FileChange] = []

    def plan(rel: str, new: bytes, mode: int = 0o644) -> None:
        # Written only when it changes what the booted system sees: the top
        # layer's file, else the image's own.
        old, image_old = (on_disk or current).get(rel), rootfs.read_file(image_root, rel)
        if new != (old if old is not None else image_old):
            changes.append(FileChange(rel, old, new, mode, image_old=image_old))

    def base(rel: str) -> bytes | None:
        data = current.get(rel)
        return data if data is not None else rootfs.read_file(image_root, rel)

    fstab = base("etc/fstab") or b""
    merged = merge_fstab(fstab.decode("utf-8", "surrogateescape"), settings, old_settings)
    plan("etc/fstab", merged.encode("utf-8", "surrogateescape"))
    if settings.docker_store:
        plan("etc/docker/daemon.json", merge_daemon_json(base("etc/docker/daemon.json")))
    if not has_machine_id(current.get("etc/machine-id")):
        plan("etc/machine-id", new_machine_id(), MACHINE_ID_MODE)
    hostname = settings.hostname or (base("etc/hostname") or b"").decode(errors="replace").strip()
    if hostname:
        plan("etc/hosts", merge_hosts(base("etc/hosts"), hostname))
    subvolumes = []
    for m in PERSISTENT:
        path = top / m.subvolume
        if not getattr(settings, m.setting):
            continue
        if not path.exists() and not path.is_symlink():
            subvolumes.append(m.subvolume)
        elif path.is_symlink() or not path.is_dir() or path.stat().st_ino != 256:
            raise ToplayerError(f"{path} exists but is not a btrfs subvolume",
                                f"rename it, or turn the persistent {m.mountpoint} off "
                                f"(--no-{m.setting})")
    return MachinePlan(changes, subvolumes)


def image_warnings(settings: Settings, image_root: Path) -> list[str]:
    """One line per thing about the image that will hurt the booted system."""
    out = []
    st = image_root.stat()
    if st.st_mode & 0o7777 != 0o755 or (st.st_uid, st.st_gid) != (0, 0):
        out.append(f"image {settings.image}: / is {st.st_mode & 0o7777:04o} "
                   f"{st.st_uid}:{st.st_gid}, not 0755 root:root: dbus and logins time out on "
                   "such a root — fix the image (chmod 755 / in the Dockerfile)")
    init = next((w.split("=", 1)[1] for w in reversed(settings.kernel_options.split())
                 if w.startswith("init=")), "/sbin/init")
    if not rootfs.is_executable(image_root, init):
        out.append(f"image {settings.image} has no init ({init}): the boot will stop in the "
                   "emergency shell — install an init (e.g. systemd-sysv) in the Dockerfile")
    out += _assessment_warnings(settings, image_root, init)
    if settings.admins and not rootfs.is_executable(image_root, "/usr/bin/sudo"):
        out.append(f"image {settings.image} has no sudo: administrators cannot use it — add "
                   "the sudo package to the Dockerfile")
    return out


def has_systemd(image_root: Path) -> bool:
    """Whether the hook takes the image for a systemd one (``_db_assess_root``, same test).

    Its unit directory or systemd itself, resolved inside the image.
    """
    units = rootfs.resolve(image_root, "etc/systemd/system")
    binary = rootfs.resolve(image_root, "lib/systemd/systemd")
    # resolve() followed every symlink: what is left is the thing itself.
    return (units is not None and units.is_dir()) or (binary is not None and binary.is_file())


def _assessment_warnings(settings: Settings, image_root: Path, init: str) -> list[str]:
    """What the boot assessment cannot do for this image (DESIGN §4b), one line each."""
    words = settings.kernel_options.split()
    tries = next((w.split("=", 1)[1] for w in reversed(words)
                  if w.startswith("dockerboot.tries=")), "2")
    if not has_systemd(image_root):
        return [f"image {settings.image} has no systemd: its boots are not assessed (nothing "
                "marks it good or bad, the hook does not count its tries and never falls back "
                "from it for that) — install systemd-sysv in the Dockerfile to have them assessed"]
    real = rootfs.resolve(image_root, init)
    if (real is not None and real.name != "systemd" and tries.isdigit() and int(tries) > 0
            and any(w.startswith("init=") for w in words)):
        return [f"init={init} is not systemd: dockerboot-mark-good.service never runs, so after "
                f"{int(tries)} boots of an image the hook falls back to the last good one — run "
                "/usr/local/lib/dockerboot/mark-good from that init, or add dockerboot.tries=0"]
    return []


def admin_group(group_file: bytes | None) -> str | None:
    """The image's administrators' group (``sudo`` or ``wheel``), from its ``/etc/group``."""
    names = {line.split(b":", 1)[0].decode(errors="replace")
             for line in (group_file or b"").splitlines()}
    return next((g for g in ADMIN_GROUPS if g in names), None)


def members(group_file: bytes | None, group: str) -> set[str]:
    """Members of ``group`` listed in a group file."""
    for line in (group_file or b"").decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == group:
            return {m for m in fields[3].split(",") if m}
    return set()
