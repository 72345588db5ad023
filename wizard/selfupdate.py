"""The booted system's own update: ``dockerboot-update`` and its units, in the top layer.

The wizard is not in the booted system, yet a ``docker pull`` there must be
enough, kernel updates included.  So every apply puts into the top layer a
self-contained POSIX sh command (``assets/selfupdate/dockerboot-update``:
the image's shell and tools and the docker CLI are all it needs), the build
assets an initramfs build installs, the settings it works from
(``etc/dockerboot/update.conf``: plain ``key=value`` lines, never sourced)
and two units: ``dockerboot-update.path`` watches docker's tag file and
starts ``dockerboot-update.service`` when a pull or build moves a tag.
With ``auto_update`` off the units stay and the service does nothing.

The command does what ``wizard.update`` does, in the same on-disk formats:
a new generation only when the kernel or the initramfs inputs changed (else
the next boot snapshots the new image: nothing to deploy), the rEFInd block
as ``bootloader.render_entries`` renders it, the same pins and garbage
collection; ``dockerboot-update status --json`` prints ``status.status``'s
document.  ``tests/integration/test_selfupdate.py`` runs it against the
Python for each of these.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from wizard.cmdline import kernel_cmdline
from wizard.config import Settings
from wizard.fingerprint import ADAPTERS, COMMON_ASSETS, assets_hash
from wizard.images import normalize_ref
from wizard.pins import pin_name
from wizard.resources import assets_dir
from wizard.status import state_dir
from wizard.toplayer import FileChange

COMMAND = "usr/local/sbin/dockerboot-update"
"""Where the command lands in the booted system (top-layer relative)."""
LIB = "usr/local/lib/dockerboot-wizard"
"""Its sourced parts and the build assets (``LIB/assets`` is what a build bind-mounts)."""
CONF = "etc/dockerboot/update.conf"
"""Its settings."""
UNITS = "etc/systemd/system"
IMAGE_PLACEHOLDER = "@IMAGE@"
"""Stands for the image in the ``cmdline`` setting: the command puts a tag or an ID there."""
_PARTS = ("entries.sh", "status.sh")
_TAG_FILE = "/var/lib/docker/image/btrfs/repositories.json"

SERVICE = f"""\
# Written by dockerboot-wizard: a new kernel + initramfs generation when the
# configured tag moved (dockerboot-update --auto; auto=0 in /{CONF} turns it off).
[Unit]
Description=dockerboot: follow the configured image's tag
After=docker.service
Wants=docker.service
ConditionPathExists=/{CONF}

[Service]
Type=oneshot
ExecStart=/{COMMAND} --auto
# An initramfs build takes minutes on a slow machine.
TimeoutStartSec=1h
"""

PATH_UNIT = f"""\
# Written by dockerboot-wizard: docker rewrites this file when a pull, build,
# tag or rmi changes a tag; dockerboot-update decides whether it matters.
[Unit]
Description=dockerboot: watch docker's tags

[Path]
PathChanged={_TAG_FILE}
Unit=dockerboot-update.service
"""

WANTS = """\
# Written by dockerboot-wizard: start watching docker's tags at boot.
[Unit]
Wants=dockerboot-update.path
"""


def render_conf(settings: Settings) -> bytes:
    """``etc/dockerboot/update.conf`` for ``settings`` (``docker_path`` as resolved)."""
    image = normalize_ref(settings.image)
    lines = [
        "# Written by dockerboot-wizard apply: the settings of dockerboot-update.",
        "# Plain key=value lines (never run by a shell); apply rewrites the file.",
        "version=1",
        f"label={settings.label}",
        f"image={image}",
        f"boot_dir={settings.boot_dir.strip('/')}",
        f"state_dir={state_dir(settings)}",
        f"generations={settings.generations}",
        f"auto={1 if settings.auto_update else 0}",
        f"pin_name={pin_name(settings.label)}",
        f"cmdline={kernel_cmdline(replace(settings, image=IMAGE_PLACEHOLDER))}",
    ]
    lines += [f"assets_{g.replace('-', '_')}={assets_hash(g)}" for g in ADAPTERS]
    return ("\n".join(lines) + "\n").encode()


def _asset_files(root: Path) -> dict[str, Path]:
    """The build's assets (what ``fingerprint.assets_hash`` covers) and the probe, by name."""
    out: dict[str, Path] = {}
    for rel in (*COMMON_ASSETS, *ADAPTERS.values(), "selfupdate/probe-image.sh"):
        path = root / rel
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            out[f.relative_to(root).as_posix()] = f
    return out


def top_files(settings: Settings) -> dict[str, tuple[bytes, int]]:
    """Every top-layer file of the booted system's update: ``{relpath: (content, mode)}``."""
    root = assets_dir()
    files = {COMMAND: ((root / "selfupdate/dockerboot-update").read_bytes(), 0o755)}
    for part in _PARTS:
        files[f"{LIB}/{part}"] = ((root / "selfupdate" / part).read_bytes(), 0o644)
    for name, path in _asset_files(root).items():
        # Read or copied only: the build runs them with sh and sets modes itself.
        files[f"{LIB}/assets/{name}"] = (path.read_bytes(), 0o644)
    files[CONF] = (render_conf(settings), 0o644)
    files[f"{UNITS}/dockerboot-update.service"] = (SERVICE.encode(), 0o644)
    files[f"{UNITS}/dockerboot-update.path"] = (PATH_UNIT.encode(), 0o644)
    files[f"{UNITS}/multi-user.target.d/dockerboot-update.conf"] = (WANTS.encode(), 0o644)
    return files


def plan(toplayer_dir: Path, settings: Settings) -> list[FileChange]:
    """The changes that bring the top layer's copy up to date (none when it is)."""
    changes = []
    for rel, (data, mode) in top_files(settings).items():
        path = toplayer_dir / rel
        old = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        if old != data:
            # The wizard's own files are shown in one line; the settings and units in full.
            shipped = rel == COMMAND or rel.startswith(f"{LIB}/")
            summary = (f"{'updated' if old is not None else 'new'}, {len(data)} bytes "
                       "(dockerboot-update, shipped with the wizard)") if shipped else None
            changes.append(FileChange(rel, old, data, mode, summary=summary))
    return changes
