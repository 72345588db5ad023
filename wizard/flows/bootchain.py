"""Which bootloader boots the entries, and GRUB's part of a plan (``wizard.loaders.grub``).

rEFInd's part is ``apply.locate_refind`` + ``bootloader.plan_refind``; GRUB's
is the image's signed shim + GRUB and a ``grub.cfg`` on the ESP.  Both name
the same generations with the same titles and command lines
(``bootloader.menu_entries``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wizard.boot import bootset, generations, status
from wizard.common.errors import BootloaderError
from wizard.common.events import Event, LogLine, StepDone, StepStarted
from wizard.flows import sdboot
from wizard.loaders import distro_grub, esp_plan, grub, systemd_boot
from wizard.loaders.esp import esp_warning, find_esp, find_refind_conf, secure_boot
from wizard.settings.config import Settings
from wizard.store import signed_chain

NAMES = {"grub": "GRUB", "systemd-boot": "systemd-boot", "refind": "rEFInd"}
ON_ESP = ("grub", "systemd-boot")
"""The bootloaders whose part is a ``esp_plan.ChainPlan`` (files on the ESP), not refind.conf."""


def esp_dir(settings: Settings) -> Path:
    """The ESP the entries go to: ``--esp``, else the mounted one.

    Raises:
        BootloaderError: none given and none mounted.

    """
    return Path(settings.esp) if settings.esp else find_esp()


def distro_grub_of(esp: Path, settings: Settings,
                   prefer: str = "") -> distro_grub.DistroGrub | None:
    """The distribution GRUB on ``esp`` the entries go to (way b); None with ``own_grub``.

    Raises:
        BootloaderError: as ``distro_grub.find``.

    """
    return None if settings.own_grub else distro_grub.find(esp, prefer)


def choose(settings: Settings, chain: grub.Chain | None) -> str:
    """The bootloader apply writes for: the saved or given one, else what the ESP boots.

    Without a choice: rEFInd when it has a ``refind.conf`` there (or one is
    named), else systemd-boot when it is installed there, else GRUB when the
    image carries its signed shim + GRUB (``chain``, ``grub.find_chain``) or a
    distribution's GRUB is set up on the ESP (``distro_grub.find``), else
    rEFInd (whose lookup then says what is missing).
    """
    if settings.bootloader:
        return settings.bootloader
    if settings.refind_conf:
        return "refind"
    try:
        esp = esp_dir(settings)
    except BootloaderError:
        return "grub" if chain is not None else "refind"
    try:
        find_refind_conf(esp)
        return "refind"
    except BootloaderError:
        pass
    if systemd_boot.find(esp) is not None:
        return "systemd-boot"
    try:  # a GRUB its distribution set up boots this machine: the entries go there
        distro = distro_grub_of(esp, settings)
    except BootloaderError:
        distro = None
    return "grub" if chain is not None or distro is not None else "refind"


def survey(settings: Settings, image_root: Path, chain: grub.Chain | None,
           chosen: str) -> list[str]:
    """What each bootloader found, Secure Boot, and which one is written: for the plan.

    One line each: the firmware's Secure Boot state (where readable), rEFInd's
    ``refind.conf`` on the ESP, the image's signed shim + GRUB, and ``chosen``
    with why.  Never raises: what cannot be looked at says so.
    """
    sb = secure_boot()
    lines = ["Secure Boot: " + {True: "on (rEFInd cannot boot; GRUB from the image can)",
                                False: "off", None: "not known here (no EFI variables)"}[sb]]
    refind = True
    try:
        conf = (Path(settings.refind_conf) if settings.refind_conf
                else find_refind_conf(esp_dir(settings)))
        lines.append(f"rEFInd: {conf}")
    except BootloaderError as e:
        refind = False
        lines.append(f"rEFInd: not found ({e.problem})")
    try:
        loader = systemd_boot.find(esp_dir(settings))
        lines.append(f"systemd-boot: {loader}" if loader else "systemd-boot: not on the ESP")
    except BootloaderError as e:
        lines.append(f"systemd-boot: not found ({e.problem})")
    lines.append(f"GRUB: the image carries {chain.vendor}'s signed shim + GRUB" if chain
                 else f"GRUB: {grub.missing_chain(settings.image, image_root).problem}")
    try:
        distro = distro_grub_of(esp_dir(settings), settings, chain.vendor if chain else "")
        if settings.own_grub:
            lines.append("GRUB on the ESP: the wizard's own (EFI/dockerboot); another "
                         "system's GRUB there is not touched")
        if distro is not None:
            lines.append(f"GRUB of {distro.vendor} on the ESP ({distro.stub}): its config is "
                         f"{distro.prefix}/grub.cfg on UUID={distro.uuid}; the wizard's entries "
                         f"go to {distro_grub.CUSTOM} beside it")
    except BootloaderError as e:
        lines.append(f"GRUB on the ESP: {e.problem}")
    why = ("saved or given" if settings.bootloader
           else "rEFInd is on the ESP" if refind
           else "systemd-boot is on the ESP" if chosen == "systemd-boot"
           else "no rEFInd on the ESP" + ("" if chain else ", and no GRUB in the image"))
    lines.append(f"written: {NAMES[chosen]} ({why}; --bootloader grub|systemd-boot|refind "
                 "chooses)")
    if sb and chosen == "refind":
        lines.append("warning: Secure Boot is on and rEFInd is unsigned: the firmware will "
                     "refuse it (use --bootloader grub, or turn Secure Boot off)")
    return lines


def plan_loader(top: Path, settings: Settings, new: bootset.NewGeneration | None,
                image_root: Path, chain: grub.Chain | None, *,
                counting: bool) -> tuple[esp_plan.ChainPlan, list[str]]:
    """GRUB's or systemd-boot's part (``settings.bootloader`` in ``ON_ESP``): see ``plan_grub``.

    Raises:
        BootloaderError: as ``plan_grub`` or ``sdboot.plan``.

    """
    if settings.bootloader == "systemd-boot":
        return sdboot.plan(esp_dir(settings), top, settings, new, counting=counting)
    return plan_grub(top, settings, new, image_root, chain, counting=counting)


def plan_grub(top: Path, settings: Settings, new: bootset.NewGeneration | None,
              image_root: Path, chain: grub.Chain | None, *,
              counting: bool) -> tuple[esp_plan.ChainPlan, list[str]]:
    """GRUB's files on the ESP for the generations after this run, and warnings.

    ``image_root``: the image whose shim + GRUB (``chain``, from
    ``grub.find_chain``) go on the ESP (the newest generation's).
    ``counting``: the image marks its boots good (systemd).

    Raises:
        BootloaderError: no ESP, no signed shim + GRUB in the image, another
            system's GRUB config in the way, a file on the ESP not the wizard's,
            too little space.

    """
    esp = esp_dir(settings)
    menu, numbers = bootset.menu(top, settings, new)
    newest = numbers[0]
    entries = [grub.Entry(f"dockerboot-{'default' if i == 0 else 'previous'}", *e)
               for i, e in enumerate(menu)]
    state = status.state_dir(settings)
    distro = distro_grub_of(esp, settings, chain.vendor if chain else "")
    if distro is not None:
        signer = chain.vendor if chain else signed_chain.os_id(image_root)
        return _plan_distro(esp, distro, settings, entries, newest, signer, state=state,
                            counting=counting)
    if chain is None:
        raise grub.missing_chain(settings.image, image_root)
    cfg = grub.render_cfg(settings, entries, newest=newest, state=state, counting=counting)
    plan = grub.plan_chain(esp, chain, cfg, newest=newest)
    esp_plan.check_space(plan)
    warning = esp_warning(esp, loader="GRUB")
    warnings = [warning] if warning else []
    if not counting:
        warnings.append(_no_counting(settings))
    return plan, warnings + plan.kept


def _no_counting(settings: Settings) -> str:
    return (f"image {settings.image} cannot mark its boots good (no systemd): GRUB "
            "does not count its boots, the hook's fallback still works")


def _plan_distro(esp: Path, distro: distro_grub.DistroGrub, settings: Settings,
                 entries: list[grub.Entry], newest: int, signer: str, *,
                 state: str, counting: bool) -> tuple[esp_plan.ChainPlan, list[str]]:
    """Way (b): the entries in the distribution GRUB's ``custom.cfg``, the count on the ESP.

    ``signer``: the distribution of the image's kernel (its signed chain's, else
    its os-release's); another than the GRUB's is refused unless the user asked.
    """
    mixed = signer.lower() != distro.vendor.lower()
    if mixed and not settings.mixed_distribution:
        raise mixed_distribution(distro.vendor, settings.image, signer)
    default = settings.default_entry == "yes"
    block = distro_grub.render_block(settings.label, entries, newest=newest, state=state,
                                     default=default, counting=counting)
    custom = distro_grub.plan_custom(distro, block)
    counted = default and counting and len(entries) > 1
    writes = [grub.plan_env(esp, newest)] if counted else []
    plan = esp_plan.ChainPlan(esp, writes, [], custom.new.decode("utf-8", "replace"), custom)
    esp_plan.check_space(plan)
    warnings = [describe_default(plan, settings.default_entry)]
    if default and not counting:
        warnings.append(_no_counting(settings))
    if mixed:
        whose = _whose(signer)
        warnings.append(f"Secure Boot is on here and {distro.vendor}'s shim refuses the image's "
                        f"kernel ({whose}): turn Secure Boot off before booting it"
                        if secure_boot() else
                        f"{distro.vendor}'s shim refuses the image's kernel ({whose}) while "
                        "Secure Boot is on: keep it off (--mixed-distribution)")
    return plan, warnings


def mixed_distribution(vendor: str, image: str, signer: str) -> BootloaderError:
    """The one line for an image whose kernel another distribution than the GRUB's signed."""
    return BootloaderError(
        f"{vendor}'s GRUB boots this machine and image {image}'s kernel is {_whose(signer)}: "
        f"with Secure Boot on, {vendor}'s shim refuses it (enrolling a key with MOK is not "
        "done by the wizard)",
        f"boot an image of {vendor}, or pass --mixed-distribution to add the entries anyway "
        "(Secure Boot must stay off)")


def _whose(signer: str) -> str:
    return f"{signer}'s" if signer else "of no known distribution"


def describe_default(plan: esp_plan.ChainPlan, choice: str) -> str:
    """One line: what GRUB boots by default once ``plan`` (way b) is written."""
    vendor = plan.custom.distro if plan.custom else "GRUB"
    if choice == "yes":
        return (f"{vendor}'s GRUB boots the wizard's default entry (set in "
                f"{distro_grub.CUSTOM}; your system stays in its menu)")
    if choice == "no":
        return (f"{vendor}'s GRUB boots its own default, as you chose (--default-entry no): "
                "the wizard's entries are in its menu")
    return (f"{vendor}'s GRUB has its own default entry: choose whether the wizard's default "
            "entry becomes GRUB's default (--default-entry yes|no)")


def cfg_path(plan: esp_plan.ChainPlan) -> Path:
    """Where ``plan`` writes the entries (grub.cfg, custom.cfg, or loader/entries)."""
    if plan.loader == "systemd-boot":
        return plan.esp / systemd_boot.ENTRIES_DIR
    return plan.custom.path if plan.custom else plan.esp / grub.OWN_DIR / grub.CFG


def old_cfg(plan: esp_plan.ChainPlan) -> bytes | None:
    """The file with the entries as it is now (None: not there; systemd-boot: its entries)."""
    if plan.loader == "systemd-boot":
        old = b"".join(w.old or b"" for w in plan.writes
                       if w.rel.startswith(systemd_boot.ENTRIES_DIR))
        return old or None
    if plan.custom:
        return plan.custom.old
    return next((w.old for w in plan.writes if w.rel == f"{grub.OWN_DIR}/{grub.CFG}"), None)


def describe(plan: esp_plan.ChainPlan) -> str:
    """One line per file: written new, replaced (a backup kept), or unchanged."""
    lines = []
    for w in plan.writes:
        what = ("unchanged" if w.old == w.new else
                "new" if w.old is None else "replaced, a backup kept")
        if w.rel.endswith(f"/{grub.ENV}") and w.old is not None and w.old == w.new:
            what = "kept (GRUB counts the boots in it)"
        lines.append(f"{plan.esp / w.rel}: {what}")
    if plan.custom:
        c = plan.custom
        what = ("unchanged" if c.old == c.new else "new" if c.old is None
                else "the wizard's block replaced, the rest kept byte for byte, a backup kept")
        lines.append(f"{c.path}: {what}")
    return "\n".join(lines + plan.kept)


def write_grub(plan: esp_plan.ChainPlan, top: Path, settings: Settings,
               client: Any) -> Iterator[Event]:
    """Moves 2 and 3 for GRUB or systemd-boot (``bootset``): the ESP, then old generations go."""
    yield StepStarted("bootloader",
                      f"writing systemd-boot's entries and the kernels on the ESP {plan.esp}"
                      if plan.loader == "systemd-boot"
                      else f"writing the entries into {plan.custom.path}" if plan.custom
                      else f"writing shim, GRUB and grub.cfg on the ESP {plan.esp}")
    for line in esp_plan.write_chain(plan):
        yield LogLine(line)
    yield from bootset.collect_old(top, settings, client)
    changed = (plan.changed or plan.removes
               or (plan.custom and plan.custom.old != plan.custom.new))
    yield StepDone("bootloader", f"{cfg_path(plan)}" if changed else "entries unchanged")


_LINUX_RE = re.compile(r"^\s*linux\s+/(\S+)")


def grub_status(out: dict[str, Any], top: Path, settings: Settings) -> dict[str, Any]:
    """``status`` of a machine GRUB boots: the entries its grub.cfg names and GRUB's count.

    ``entries`` as for rEFInd (the generations the first and second
    ``linux`` lines load), ``assessment`` says GRUB counts, with
    ``assessment.grub``: the ESP, the generation being counted, its tries
    left, and the generation the booted system marked good.  What cannot be
    read stays null (a problem line says why).
    """
    inv = generations.load(top / settings.boot_dir)
    boot = settings.boot_dir.strip("/")
    by_loader = {f"{boot}/{g.loader}": g.number for g in inv.generations}
    counts: dict[str, Any] = {"esp": None, "trying": None, "tries_left": None,
                              "good_generation": None}
    counted = True
    try:
        esp = esp_dir(settings)
        counts["esp"] = str(esp)
        own = esp / grub.OWN_DIR
        distro = distro_grub_of(esp, settings)
        text = (distro_grub.read_block((distro_grub.config_dir(distro) / distro_grub.CUSTOM)
                                       .read_text(errors="replace"))
                if distro else (own / grub.CFG).read_text(errors="replace"))
        loaders = [m.group(1) for line in text.splitlines() if (m := _LINUX_RE.match(line))]
        out["entries"] = {"default": by_loader.get(loaders[0]) if loaders else None,
                          "previous": by_loader.get(loaders[1]) if len(loaders) > 1 else None}
        # Way (b) with the distribution's own default: nothing is counted, no grubenv.
        counted = not distro or (own / grub.ENV).exists()
        if counted:
            env = grub.read_envblock((own / grub.ENV).read_bytes())
            counts["trying"] = _number(env.get("dockerboot_trying"))
            counts["tries_left"] = _number(env.get("dockerboot_tries"))
    except (OSError, BootloaderError) as e:
        out["problems"].append(f"GRUB's files on the ESP not read: {e}")
    try:
        good = (top / status.state_dir(settings) / grub.GOOD_FILE).read_bytes()
        counts["good_generation"] = _number(grub.read_envblock(good).get("dockerboot_good"))
    except OSError:
        pass  # no boot marked good yet
    out["assessment"] = {
        "bootloader_counts": counted,
        "why": ("GRUB boots its distribution's default, so nothing counts the wizard's "
                "generations before the hook (the hook's fallback still works)") if not counted
        else f"GRUB counts the boots of the newest generation in {grub.OWN_DIR}/{grub.ENV} "
               f"on the ESP: {grub.TRIES} without the booted system's good mark, then it boots "
               "the previous generation (also when the kernel panics before the hook)",
        "grub": counts}
    return out


def systemd_boot_status(out: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``status`` of a machine systemd-boot boots (``sdboot.status``); no ESP: a problem line."""
    try:
        return sdboot.status(out, esp_dir(settings), settings)
    except (OSError, BootloaderError) as e:
        out["problems"].append(f"systemd-boot's entries on the ESP not read: {e}")
        return out


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
