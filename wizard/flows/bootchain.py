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
from wizard.loaders import grub
from wizard.loaders.esp import esp_warning, find_esp, find_refind_conf, secure_boot
from wizard.settings.config import Settings


def esp_dir(settings: Settings) -> Path:
    """The ESP the entries go to: ``--esp``, else the mounted one.

    Raises:
        BootloaderError: none given and none mounted.

    """
    return Path(settings.esp) if settings.esp else find_esp()


def choose(settings: Settings, chain: grub.Chain | None) -> str:
    """The bootloader apply writes for: the saved or given one, else what the ESP boots.

    Without a choice: rEFInd when it has a ``refind.conf`` there (or one is
    named), else GRUB when the image carries its signed shim + GRUB
    (``chain``, ``grub.find_chain``), else rEFInd (whose lookup then says
    what is missing).
    """
    if settings.bootloader:
        return settings.bootloader
    if settings.refind_conf:
        return "refind"
    try:
        find_refind_conf(esp_dir(settings))
        return "refind"
    except BootloaderError:
        pass
    return "grub" if chain is not None else "refind"


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
    lines.append(f"GRUB: the image carries {chain.vendor}'s signed shim + GRUB" if chain
                 else f"GRUB: {grub.missing_chain(settings.image, image_root).problem}")
    why = ("saved or given" if settings.bootloader
           else "rEFInd is on the ESP" if refind
           else "no rEFInd on the ESP" + ("" if chain else ", and no GRUB in the image"))
    lines.append(f"written: {'GRUB' if chosen == 'grub' else 'rEFInd'} ({why}; "
                 "--bootloader grub|refind chooses)")
    if sb and chosen == "refind":
        lines.append("warning: Secure Boot is on and rEFInd is unsigned: the firmware will "
                     "refuse it (use --bootloader grub, or turn Secure Boot off)")
    return lines


def plan_grub(top: Path, settings: Settings, new: bootset.NewGeneration | None,
              image_root: Path, chain: grub.Chain | None, *,
              counting: bool) -> tuple[grub.ChainPlan, list[str]]:
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
    if chain is None:
        raise grub.missing_chain(settings.image, image_root)
    menu, newest = bootset.menu(top, settings, new)
    entries = [grub.Entry(f"dockerboot-{'default' if i == 0 else 'previous'}", *e)
               for i, e in enumerate(menu)]
    cfg = grub.render_cfg(settings, entries, newest=newest, state=status.state_dir(settings),
                          counting=counting)
    plan = grub.plan_chain(esp, chain, cfg, newest=newest)
    grub.check_space(plan)
    warning = esp_warning(esp, loader="GRUB")
    warnings = [warning] if warning else []
    if not counting:
        warnings.append(f"image {settings.image} cannot mark its boots good (no systemd): GRUB "
                        "does not count its boots, the hook's fallback still works")
    return plan, warnings + plan.kept


def cfg_path(plan: grub.ChainPlan) -> Path:
    """Where ``plan`` writes grub.cfg."""
    return plan.esp / grub.OWN_DIR / grub.CFG


def old_cfg(plan: grub.ChainPlan) -> bytes | None:
    """grub.cfg as it is on the ESP now (None: not there)."""
    return next((w.old for w in plan.writes if w.rel == f"{grub.OWN_DIR}/{grub.CFG}"), None)


def describe(plan: grub.ChainPlan) -> str:
    """One line per file: written new, replaced (a backup kept), or unchanged."""
    lines = []
    for w in plan.writes:
        what = ("unchanged" if w.old == w.new else
                "new" if w.old is None else "replaced, a backup kept")
        if w.rel.endswith(f"/{grub.ENV}") and w.old is not None and w.old == w.new:
            what = "kept (GRUB counts the boots in it)"
        lines.append(f"{plan.esp / w.rel}: {what}")
    return "\n".join(lines + plan.kept)


def write_grub(plan: grub.ChainPlan, top: Path, settings: Settings,
               client: Any) -> Iterator[Event]:
    """Moves 2 and 3 for GRUB (``bootset``): its files on the ESP, then old generations go."""
    yield StepStarted("bootloader", f"writing shim, GRUB and grub.cfg on the ESP {plan.esp}")
    for line in grub.write_chain(plan):
        yield LogLine(line)
    yield from bootset.collect_old(top, settings, client)
    yield StepDone("bootloader", f"{cfg_path(plan)}" if plan.changed else "entries unchanged")


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
    try:
        esp = esp_dir(settings)
        counts["esp"] = str(esp)
        own = esp / grub.OWN_DIR
        loaders = [m.group(1) for line in (own / grub.CFG).read_text(errors="replace")
                   .splitlines() if (m := _LINUX_RE.match(line))]
        out["entries"] = {"default": by_loader.get(loaders[0]) if loaders else None,
                          "previous": by_loader.get(loaders[1]) if len(loaders) > 1 else None}
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
        "bootloader_counts": True,
        "why": f"GRUB counts the boots of the newest generation in {grub.OWN_DIR}/{grub.ENV} "
               f"on the ESP: {grub.TRIES} without the booted system's good mark, then it boots "
               "the previous generation (also when the kernel panics before the hook)",
        "grub": counts}
    return out


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
