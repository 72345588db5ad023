"""The wizard's saved settings: one TOML file in ``boot_docker/``.

It is the single source of truth for re-runs, for the TUI and for headless
``apply``.  Passwords are never part of it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import tomli_w

from wizard.common.atomic import write_atomic
from wizard.common.errors import ConfigError
from wizard.common.names import check_hostname, check_label, check_user_name
from wizard.settings.kernel_options import check_kernel_options, check_state_dir, state_option
from wizard.store.images import normalize_ref

CONFIG_NAME = "dockerboot-wizard.toml"
SCHEMA_VERSION = 1
BOOTLOADERS = ("refind", "grub", "systemd-boot")
"""The bootloaders apply writes entries for (``Settings.bootloader``)."""
MIN_GENERATIONS = 2
"""The newest generation and the previous one, which the "previous" boot entry boots."""
MAX_GENERATIONS = 64
"""Each generation is a kernel + initramfs (tens of MB) and a pinned image: a sane bound."""
# Blanks, quotes, commas and control characters: the kernel command line and
# the rEFInd entry carry these paths unquoted.
_UNSAFE_PATH = re.compile(r'[\s",\x00-\x1f\x7f]')


@dataclass(frozen=True)
class Settings:
    """Everything ``apply`` needs, as saved in ``boot_docker/dockerboot-wizard.toml``."""

    label: str
    """Label of the btrfs partition that holds docker's data-root (``root=LABEL=…``)."""
    image: str
    """Image to boot, ``name:tag`` in Docker's familiar form."""
    docker_path: str = "docker"
    """Docker's data-root relative to the partition's top level."""
    rwlayer: str = "docker_rwlayer"
    """Name of the read-write root subvolume recreated at every boot."""
    boot_dir: str = "boot_docker"
    """Directory (relative to the top level) holding kernel, initramfs and this file."""
    toplayer_path: str = "boot_docker/toplayer"
    """Top-layer directory relative to the top level."""
    hostname: str | None = None
    """Hostname written to the top layer's ``etc/hostname``; None leaves it alone."""
    users: tuple[str, ...] = ()
    """Users created in the top layer with the image's own tools (names only)."""
    admins: tuple[str, ...] = ()
    """Users put in the image's administrators' group (``sudo`` or ``wheel``)."""
    home: bool = True
    """Persistent ``/home`` on its own subvolume, users' homes made there from ``/etc/skel``."""
    journal: bool = True
    """Persistent ``/var/log/journal`` on its own subvolume (``journalctl -b -1``)."""
    docker_store: bool = True
    """The booted system's docker uses the store it boots from (fstab + daemon.json)."""
    auto_update: bool = True
    """The booted system runs ``dockerboot-update`` by itself when the configured tag moves
    (a ``docker pull`` or ``build``): a new generation when the kernel changed."""
    keep_previous_root: bool = True
    """The hook keeps the root of the boot before as a read-only ``<rwlayer>.previous``
    for one boot (a file lost at a reboot can be copied back); False passes
    ``dockerboot.previous=0``."""
    kernel_options: str = ""
    """Extra kernel parameters appended to the generated ones."""
    esp: str | None = None
    """ESP directory holding rEFInd; None means find the mounted ESP."""
    refind_conf: str | None = None
    """Explicit path of refind.conf; None means search the ESP."""
    generations: int = 2
    """Kernel + initramfs generations kept in ``boot_docker/gen/`` (the newest and the
    previous at least: the "previous" boot entry needs one to fall back to)."""
    default_entry: str = ""
    """Whether the wizard's ``default_selection`` line makes its default entry rEFInd's
    default when refind.conf has the user's own: "yes" (theirs commented out), "no" (theirs
    decides), "" (never asked: the wizard's line only while the user has none)."""
    bootloader: str = ""
    """What boots the entries: "refind", "grub" (the image's signed shim + GRUB on the ESP,
    Secure Boot on) or "" (chosen at apply: rEFInd when the ESP has its refind.conf, else
    GRUB when the image carries it; ``BOOTLOADERS``)."""
    mixed_distribution: bool = False
    """The user asked for entries in a distribution's GRUB that did not sign the image's
    kernel (way b): its shim refuses that kernel while Secure Boot is on."""
    own_grub: bool = False
    """GRUB from the image in its own ``EFI/dockerboot`` (way a) even where a distribution's
    GRUB boots this machine: ``install`` beside another system sets it, so that system's
    files are never touched; saved, so later runs keep the same way."""
    extra: dict[str, str] = field(default_factory=dict)
    """Unknown keys from a newer version, kept so a round trip loses nothing."""

    def validate(self) -> None:
        """Raise a ``WizardError`` (one line) naming the first invalid field.

        Only syntax: nothing is asked of the daemon or the disk, so the CLI and
        the TUI call it before any mount.  Checked: the label, the relative
        paths, the image reference, the hostname, user and administrator
        names, and the extra kernel options (reserved parameters refused,
        nothing the rEFInd entry cannot carry).
        """
        check_label(self.label)
        for name in ("docker_path", "rwlayer", "boot_dir", "toplayer_path"):
            value = getattr(self, name)
            if (not value or value.startswith("/") or ".." in value.split("/")
                    or _UNSAFE_PATH.search(value)):
                raise ConfigError(f"invalid {name} {value!r}",
                                  "give a relative path without blanks, quotes or '..'")
        if not self.image or " " in self.image:
            raise ConfigError(f"invalid image {self.image!r}", "give NAME:TAG, e.g. debian:12")
        normalize_ref(self.image)
        if self.hostname is not None:
            check_hostname(self.hostname)
        for user in self.users:
            check_user_name(user)
        for admin in self.admins:
            check_user_name(admin, "administrator name")
        check_kernel_options(self.kernel_options)
        state = state_option(self.kernel_options)
        if state is not None:
            check_state_dir(state, docker_path=self.docker_path, rwlayer=self.rwlayer,
                            boot_dir=self.boot_dir, toplayer_path=self.toplayer_path)
        if self.default_entry not in ("", "yes", "no"):
            raise ConfigError(f"invalid default entry choice {self.default_entry!r}",
                              "give --default-entry yes (the wizard's default entry is "
                              "rEFInd's default) or --default-entry no (your own "
                              "default_selection stays)")
        if self.bootloader not in ("", *BOOTLOADERS):
            raise ConfigError(f"invalid bootloader {self.bootloader!r}",
                              "give --bootloader grub (the image's signed shim + GRUB, Secure "
                              "Boot on), systemd-boot or refind (both: Secure Boot off)")
        # bool is an int in Python: "generations = true" must not mean 1.
        if (isinstance(self.generations, bool) or not isinstance(self.generations, int)
                or not MIN_GENERATIONS <= self.generations <= MAX_GENERATIONS):
            raise ConfigError(f"invalid generations {self.generations!r}",
                              f"keep {MIN_GENERATIONS} to {MAX_GENERATIONS} generations "
                              "(the newest and the previous at least)")


def to_toml(settings: Settings) -> str:
    """Serialise settings to TOML text (None values are left out)."""
    data = {k: v for k, v in asdict(settings).items()
            if v is not None and k != "extra"
            and not (k in ("default_entry", "bootloader", "mixed_distribution", "own_grub")
                     and not v)}
    data["users"] = list(settings.users)
    data["admins"] = list(settings.admins)
    data = {"schema": SCHEMA_VERSION, **data, **settings.extra}
    return tomli_w.dumps(data)


def from_toml(text: str) -> Settings:
    """Parse TOML text into settings; raise ``ConfigError`` with the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config is not valid TOML: {e}", "fix or delete the file") from e
    data.pop("schema", None)
    known = {f.name for f in fields(Settings)} - {"extra"}
    extra = {k: v for k, v in data.items() if k not in known}
    kwargs = {k: v for k, v in data.items() if k in known}
    if "label" not in kwargs or "image" not in kwargs:
        raise ConfigError("config lacks 'label' or 'image'", "run 'dockerboot-wizard apply' again")
    for key in ("users", "admins"):
        value = kwargs.get(key, ())
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config's {key!r} is not a list of names", "fix or delete the file")
        kwargs[key] = tuple(value)
    for key in ("home", "journal", "docker_store", "auto_update", "keep_previous_root",
                "mixed_distribution", "own_grub"):
        if not isinstance(kwargs.get(key, True), bool):
            raise ConfigError(f"config's {key!r} is not true or false", "fix or delete the file")
    settings = Settings(**kwargs, extra=extra)
    settings.validate()
    return settings


def config_path(top: Path, settings_or_boot_dir: Settings | str = "boot_docker") -> Path:
    """Path of the config file under a mounted top level ``top``."""
    boot_dir = (settings_or_boot_dir.boot_dir if isinstance(settings_or_boot_dir, Settings)
                else settings_or_boot_dir)
    return top / boot_dir / CONFIG_NAME


def load(top: Path, boot_dir: str = "boot_docker") -> Settings | None:
    """Load the saved config from a mounted top level, or None if there is none."""
    path = config_path(top, boot_dir)
    if not path.exists():
        return None
    return from_toml(path.read_text())


def save(top: Path, settings: Settings) -> Path:
    """Write the config atomically (mode 0600, old one backed up); return its path."""
    path = config_path(top, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, to_toml(settings).encode(), mode=0o600)
    return path
