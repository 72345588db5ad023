"""The booted system's own update: ``dockerboot-update`` and its units, in the top layer.

The wizard is not in the booted system, yet a ``docker pull`` there must be
enough, kernel updates included.  So every apply puts into the top layer a
self-contained POSIX sh command (``assets/selfupdate/dockerboot-update``:
the image's shell and tools and the docker CLI are all it needs), the
settings it works from (``etc/dockerboot/update.conf``: plain ``key=value``
lines, never sourced) and two units; its sourced parts and the build assets
go to ``<boot_dir>/selfupdate/`` on the partition (``install_parts``).  The
units: ``dockerboot-update.path`` watches docker's tag file and
starts ``dockerboot-update.service`` when a pull or build moves a tag.
With ``auto_update`` off the units stay and the service does nothing.
Beside the command, ``dockerboot-mark-bad`` (``MARK_BAD``): the user's way
to say "this boot is bad" (it runs the hook's mark-good script with
``--bad``: the next boot falls back to the last good image).

The command does what ``wizard.flows.update`` does, in the same on-disk formats:
a new generation only when the kernel or the initramfs inputs changed (else
the next boot snapshots the new image: nothing to deploy), the entries of
the bootloader the machine boots (rEFInd's block as
``bootloader.render_entries`` renders it; GRUB's ``grub.cfg`` and count as
``grub.render_cfg`` and ``plan_env`` make them; systemd-boot's entries and
kernel copies as ``systemd_boot.plan_entries``), written on the ESP as
``esp_plan.write_chain`` writes them, the same pins and garbage collection;
``dockerboot-update status --json`` prints ``status.status``'s document.
``tests/integration/test_selfupdate.py`` runs it against the Python for each
of these; ``tests/unit/test_selfupdate_grub.py`` compares GRUB's files.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from wizard.boot.fingerprint import ADAPTERS, COMMON_ASSETS, asset_files, assets_hash
from wizard.boot.status import state_dir
from wizard.common.atomic import write_atomic
from wizard.common.errors import WizardError
from wizard.common.resources import assets_dir
from wizard.settings.cmdline import kernel_cmdline
from wizard.settings.config import Settings
from wizard.store.images import normalize_ref
from wizard.store.pins import pin_name
from wizard.toplayer.files import FileChange

COMMAND = "etc/dockerboot/dockerboot-update"
"""Where the command lands in the booted system (top-layer relative).  In ``etc/dockerboot``,
which no image has, the hook copies it with the rest of ``etc/`` in one ``cp``; a file in
a directory the image has (``usr/local/sbin``) would cost the hook a ``cp`` of its own at
every boot.  ``dockerboot-update-link.service`` links it into ``/usr/local/sbin`` once the
system is up."""
LINK = "/usr/local/sbin/dockerboot-update"
"""Where the booted system finds it on its ``PATH`` (``sudo dockerboot-update``)."""
MARK_BAD = "etc/dockerboot/dockerboot-mark-bad"
"""``dockerboot-mark-bad`` (top-layer relative): the user's "this boot is bad".  Beside the
command for the same reason (the hook's one ``cp`` of ``etc/``); linked like it."""
MARK_BAD_LINK = "/usr/local/sbin/dockerboot-mark-bad"
MARK_BAD_SCRIPT = """\
#!/bin/sh
# Written by dockerboot-wizard: mark this boot's image bad; the next boot falls back to
# the last good image.  The script is the hook's, installed at every boot with systemd.
[ -x /usr/local/lib/dockerboot/mark-good ] || { echo "dockerboot-mark-bad: this boot has no \
/usr/local/lib/dockerboot/mark-good (an image without systemd: its boots are not assessed)" >&2
    exit 1; }
exec /usr/local/lib/dockerboot/mark-good --bad "$@"
"""
CONF = "etc/dockerboot/update.conf"
"""Its settings."""
PARTS_DIR = "selfupdate"
"""Under ``boot_dir`` on the partition: the command's sourced parts and the build assets
(``assets/`` is what a build bind-mounts).  Not in the top layer: the hook copies the top
layer at every boot, and two dozen more files there cost it 0.35 s under TCG (measured with
benchmarks/hook_time); the command mounts the partition anyway."""
UNITS = "etc/systemd/system"
IMAGE_PLACEHOLDER = "@IMAGE@"
"""Stands for the image in the ``cmdline`` setting: the command puts a tag or an ID there."""
PARTS = ("generations.sh", "entries.sh", "esp.sh", "grub.sh", "sdboot.sh", "status.sh")
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

LINK_UNIT = f"""\
# Written by dockerboot-wizard: dockerboot-update and dockerboot-mark-bad on the PATH (the root
# is new at every boot).
[Unit]
Description=dockerboot: link dockerboot-update and dockerboot-mark-bad into /usr/local/sbin
ConditionPathExists=/{COMMAND}

[Service]
Type=oneshot
ExecStart=/bin/ln -sfn /{COMMAND} {LINK}
ExecStart=/bin/ln -sfn /{MARK_BAD} {MARK_BAD_LINK}
"""

WANTS = """\
# Written by dockerboot-wizard: start watching docker's tags at boot.
[Unit]
Wants=dockerboot-update.path dockerboot-update-link.service
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
        f"default_entry={settings.default_entry}",
        f"bootloader={settings.bootloader}",
    ]
    lines += [f"assets_{g.replace('-', '_')}={assets_hash(g)}" for g in ADAPTERS]
    return ("\n".join(lines) + "\n").encode()


def _asset_files(root: Path) -> dict[str, Path]:
    """The build's assets (what ``fingerprint.assets_hash`` covers) and the probe, by name."""
    return dict(pair for rel in (*COMMON_ASSETS, *ADAPTERS.values(), "selfupdate/probe-image.sh")
                for pair in asset_files(root, rel))


def top_files(settings: Settings) -> dict[str, tuple[bytes, int]]:
    """The top-layer files of the booted system's update: ``{relpath: (content, mode)}``."""
    root = assets_dir()
    return {COMMAND: ((root / "selfupdate/dockerboot-update").read_bytes(), 0o755),
            MARK_BAD: (MARK_BAD_SCRIPT.encode(), 0o755),
            CONF: (render_conf(settings), 0o644),
            f"{UNITS}/dockerboot-update.service": (SERVICE.encode(), 0o644),
            f"{UNITS}/dockerboot-update.path": (PATH_UNIT.encode(), 0o644),
            f"{UNITS}/dockerboot-update-link.service": (LINK_UNIT.encode(), 0o644),
            f"{UNITS}/multi-user.target.d/dockerboot-update.conf": (WANTS.encode(), 0o644)}


def partition_files() -> dict[str, bytes]:
    """The command's parts and the build assets, relative to ``<boot_dir>/selfupdate``."""
    root = assets_dir()
    files = {part: (root / "selfupdate" / part).read_bytes() for part in PARTS}
    for name, path in _asset_files(root).items():
        # Read or copied only: the build runs them with sh and sets modes itself.
        files[f"assets/{name}"] = path.read_bytes()
    return files


def plan(toplayer_dir: Path, settings: Settings) -> list[FileChange]:
    """The top-layer changes that bring the command up to date (none when it is)."""
    changes = []
    for rel, (data, mode) in top_files(settings).items():
        path = toplayer_dir / rel
        old = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        if old != data:
            # The command is shown in one line; its settings and units in full.
            summary = (f"{'updated' if old is not None else 'new'}, {len(data)} bytes "
                       "(dockerboot-update, shipped with the wizard)") if rel == COMMAND else None
            changes.append(FileChange(rel, old, data, mode, summary=summary))
    return changes


def install_parts(top: Path, settings: Settings) -> list[str]:
    """Write the command's parts and assets under ``<boot_dir>/selfupdate``; the ones changed.

    Each file is replaced atomically (temp + fsync + rename); the wizard owns
    that directory, so no backup is kept.  Files of an older version that are
    no longer shipped stay (never a delete here); the command reads only the
    ones it knows.
    """
    base = Path(settings.boot_dir.strip("/"), PARTS_DIR)
    written = []
    for rel, data in partition_files().items():
        # Never through a symlink on the way either (boot_dir, selfupdate, assets/hook…).
        path = Path(top)
        for part in (base / rel).parts[:-1]:
            path = path / part
            if path.is_symlink():
                raise WizardError(f"{path} is a symlink", "move it away, then run again")
        path = path / (base / rel).name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise WizardError(f"{path} is not a plain file", "move it away, then run again")
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, mode=0o644, backup=False)
            written.append(rel)
    return written
