"""GRUB from the image, signed, on the ESP: Secure Boot with no key enrolled (DESIGN §4c).

The boot chain comes from the image like its kernel (platform-facts §11):
the distribution's shim (signed by Microsoft) and its GRUB (signed by the
distribution, whose key shim carries) are copied from the image's root to
``EFI/dockerboot/`` on the ESP, beside a ``grub.cfg`` the wizard writes whole.
The same three files and a two-line ``grub.cfg`` go to the removable path
``EFI/BOOT/`` only where nothing is there yet, so a machine with empty NVRAM
boots them.  GRUB reads btrfs: the kernels stay on the partition
(``search --label``, paths from the top level).

A signed GRUB reads ``$prefix/grub.cfg`` first, its prefix built in
(``/EFI/debian`` for Debian): an ESP where another system's GRUB config sits
there is refused in one line (that GRUB would get our entries).

Boot counting, in GRUB, for what fails before the hook (a kernel that panics,
a broken initramfs): the newest generation gets ``TRIES`` boots until the
booted system marks it good; then the "previous" entry is the default.
The count lives in ``EFI/dockerboot/grubenv`` (GRUB cannot write btrfs); the
good mark is ``<state>/generation.grubenv`` on the partition, written by
``dockerboot-mark-good`` and only read by GRUB.  A default entry that fails
at once (a kernel that is not signed) boots the previous one (``fallback``).

What the wizard writes on the ESP is listed in ``EFI/dockerboot/owned`` with
the SHA-256 of the bytes written: a file is replaced only when it still
holds those bytes (a backup kept), and left alone otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wizard.common.errors import BootloaderError
from wizard.loaders import esp_files, esp_plan
from wizard.loaders.esp_plan import ChainPlan, EspWrite
from wizard.settings.config import Settings
from wizard.store.signed_chain import Chain as Chain  # re-exported
from wizard.store.signed_chain import find_chain as find_chain
from wizard.store.signed_chain import missing_chain as missing_chain

OWN_DIR = esp_files.OWN_DIR
REMOVABLE_DIR = esp_plan.REMOVABLE_DIR
CFG = "grub.cfg"
ENV = esp_plan.GRUB_ENV
OWNED = esp_files.OWNED
TRIES = 3
"""Boots a new generation gets before GRUB turns to the previous one (unless marked good)."""
GOOD_FILE = "generation.grubenv"
"""In the hook's state directory: ``dockerboot_good=<n>``, the generation marked good."""
ENV_SIZE = 1024
ENV_HEADER = "# GRUB Environment Block\n"


def _q(word: str) -> str:
    """One GRUB script word in single quotes (GRUB's quoting is the shell's)."""
    return "'" + word.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class Entry:
    """One menu entry: what the rEFInd block says, for GRUB."""

    id: str
    title: str
    loader: str
    initrd: str
    cmdline: str


def menuentry(label: str, e: Entry) -> str:
    """One ``menuentry`` with its ``--id``: the partition found by label, paths from its top."""
    args = " ".join(_q(w) for w in e.cmdline.split())
    return (f"menuentry {_q(e.title)} --id {e.id} {{\n"
            f"    search --no-floppy --label --set=root {_q(label)}\n"
            f"    linux /{e.loader} {args}\n"
            f"    initrd /{e.initrd}\n"
            "}\n")


def render_cfg(settings: Settings, entries: list[Entry], *, newest: int, state: str,
               counting: bool) -> str:
    """``EFI/dockerboot/grub.cfg``: the default and previous entries, and the counting.

    ``entries``: the default first, then the previous one (if any), with the
    titles, files and command lines of the rEFInd block (one renderer).
    ``counting``: the booted image marks its boots good (systemd); without a
    previous entry there is nothing to fall back to and nothing is counted.
    """
    label = settings.label
    # By position, not by --id: GRUB 2.06 reads ``fallback`` as a number only.
    out = ["# Written whole by dockerboot-wizard on every apply (the one before is kept",
           "# as a backup beside it). Your own entries: custom.cfg in this directory.",
           "set timeout=5",
           "set default=0"]
    if len(entries) > 1:
        out.append("set fallback=1")
    out.append(f"set dockerboot_env=($root)/{OWN_DIR}/{ENV}")
    if counting and len(entries) > 1:
        out += counting_lines(label, state, newest, exhausted="set default=1")
    text = "\n".join(out) + "\n"
    text += "".join(menuentry(label, e) for e in entries)
    custom = f"($root)/{OWN_DIR}/custom.cfg"
    return text + f"if [ -f {custom} ]; then source {custom}; fi\n"


def counting_lines(label: str, state: str, newest: int, *, exhausted: str) -> list[str]:
    """GRUB script that counts the boots of generation ``newest`` in ``$dockerboot_env``.

    Until the booted system's good mark (``<state>/generation.grubenv`` on the
    partition labelled ``label``) names ``newest``, every boot takes one of
    ``TRIES``; when none is left, ``exhausted`` runs (it sets the default to
    the previous entry).  ``$dockerboot_env`` must name the ESP's grubenv.
    """
    good = f"($dockerboot_root)/{state.strip('/')}/{GOOD_FILE}"
    n = str(newest)
    return [f"search --no-floppy --label --set=dockerboot_root {_q(label)}",
            "set dockerboot_good=",
            f"if [ -f {good} ]; then load_env --file {good} dockerboot_good; fi",
            f'if [ "$dockerboot_good" != "{n}" ]; then',
            "    load_env --file $dockerboot_env dockerboot_trying dockerboot_tries",
            f'    if [ "$dockerboot_trying" != "{n}" ]; then',
            f"        set dockerboot_trying={n}",
            f"        set dockerboot_tries={TRIES}",
            "    fi",
            '    if [ "$dockerboot_tries" = "0" ]; then',
            f"        {exhausted}",
            f'        echo "dockerboot: generation {n} did not come up in {TRIES} tries: '
            'booting the previous generation"',
            *[f'    elif [ "$dockerboot_tries" = "{k}" ]; then\n'
              f"        set dockerboot_tries={k - 1}" for k in range(1, TRIES)],
            "    else",
            f"        set dockerboot_tries={TRIES - 1}",
            "    fi",
            "    save_env --file $dockerboot_env dockerboot_trying dockerboot_tries",
            "fi"]


STUB_CFG = (f"# dockerboot-wizard: the entries are in /{OWN_DIR}/{CFG}\n"
            f"configfile /{OWN_DIR}/{CFG}\n")
"""The removable path's grub.cfg: GRUB started from ``EFI/BOOT`` reads this one."""


def envblock(values: dict[str, str]) -> bytes:
    """A GRUB environment block (``grub-editenv``'s format): 1024 bytes, ``#`` padded."""
    body = ENV_HEADER + "".join(f"{k}={v}\n" for k, v in values.items())
    data = body.encode()
    if len(data) > ENV_SIZE:
        raise ValueError("environment block too large")
    return data + b"#" * (ENV_SIZE - len(data))


def read_envblock(data: bytes) -> dict[str, str]:
    """The variables of a GRUB environment block ({} when it is not one)."""
    text = data.decode("utf-8", "replace")
    if not text.startswith(ENV_HEADER):
        return {}
    out = {}
    for line in text[len(ENV_HEADER):].splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key] = value
    return out


def plan_chain(esp: Path, chain: Chain, cfg: str, *, newest: int) -> ChainPlan:
    """The files apply writes on the ESP ``esp`` (nothing written here).

    Raises:
        BootloaderError: ``esp`` is not a directory, another system's GRUB config
            is where the signed GRUB reads first, or a file in ``EFI/dockerboot``
            was not written by the wizard (or changed since).

    """
    if not esp.is_dir():
        raise BootloaderError(f"the ESP {esp} is not a directory",
                              "give the directory where the ESP is mounted, e.g. /boot/efi")
    for rel in (f"EFI/{chain.vendor}/{CFG}", f"EFI/{chain.vendor}/x86_64-efi/{CFG}"):
        if esp_files.existing(esp, rel) is not None:
            raise BootloaderError(
                f"{esp / rel} is another GRUB's: the {chain.vendor} GRUB of the image reads it "
                "before ours", "boot with that system's GRUB, or use --bootloader refind "
                "(Secure Boot off)")
    owned = esp_files.read_owned(esp)
    files = {"shimx64.efi": chain.shim, "grubx64.efi": chain.grub}
    if chain.mm:
        files["mmx64.efi"] = chain.mm
    writes = []
    for rel, data in [*((f"{OWN_DIR}/{n}", d) for n, d in files.items()),
                      (f"{OWN_DIR}/{CFG}", cfg.encode())]:
        ok, old = esp_files.mine(esp, rel, owned)
        if not ok and old != data:
            raise BootloaderError(f"{esp / rel} was not written by dockerboot-wizard "
                                  "(or was changed since)",
                                  f"move it out of {esp / OWN_DIR}, then run again")
        writes.append(EspWrite(rel, old, data))
    writes.append(plan_env(esp, newest))
    kept = []
    removable = {f"{REMOVABLE_DIR}/BOOTX64.EFI": chain.shim,
                 f"{REMOVABLE_DIR}/grubx64.efi": chain.grub,
                 f"{REMOVABLE_DIR}/{CFG}": STUB_CFG.encode()}
    if chain.mm:
        removable[f"{REMOVABLE_DIR}/mmx64.efi"] = chain.mm
    states = {rel: esp_files.mine(esp, rel, owned) for rel in removable}
    theirs = [str(esp_files.target(esp, rel).relative_to(esp))
              for rel, (ok, old) in states.items()
              if not ok and old != removable[rel]]
    if theirs:
        kept.append(f"the removable path holds another loader's files ({', '.join(theirs)}): "
                    "kept as they are; the firmware needs a boot entry for "
                    f"\\{OWN_DIR.replace('/', chr(92))}\\shimx64.efi")
    else:
        writes += [EspWrite(rel, states[rel][1], data) for rel, data in removable.items()]
    return ChainPlan(esp, writes, kept, cfg)


def plan_env(esp: Path, newest: int) -> EspWrite:
    """``EFI/dockerboot/grubenv``: the count starts over for a new generation, else is kept.

    GRUB counts in place: a re-apply of the same generation must not reset the count.
    """
    rel = f"{OWN_DIR}/{ENV}"
    path = esp_files.existing(esp, rel)
    old = (path.read_bytes() if path is not None and path.is_file() and not path.is_symlink()
           else None)
    if read_envblock(old or b"").get("dockerboot_trying") != str(newest):
        values = {"dockerboot_trying": str(newest), "dockerboot_tries": str(TRIES)}
        return EspWrite(rel, old, envblock(values))
    return EspWrite(rel, old, old or b"")
