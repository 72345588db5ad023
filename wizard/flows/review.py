"""What the review step shows, as structured sections (the TUI's view of ``report``).

``report.render_plan`` prints one text block for the CLI; the TUI wants the
same facts split into titled sections, limited to what the chosen steps
will really write (reconfigure mode touches only the top layer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from wizard.boot import bootloader
from wizard.common.diffs import unified_diff
from wizard.flows import bootchain
from wizard.flows.apply import EXECUTE_STEPS, Plan
from wizard.settings.config import Settings
from wizard.store import images
from wizard.toplayer import machine
from wizard.toplayer.files import diff_text


class Section(NamedTuple):
    """One block of the review.

    ``title`` is its heading (e.g. a file's path), ``body`` the text under it
    (a diff for files).
    """

    title: str
    body: str


@dataclass(frozen=True)
class RefindPreview:
    """The boot entries and the change they make to refind.conf, as a plan writes them."""

    conf: Path
    """The refind.conf the plan edits."""
    entry: str
    """The wizard's marked block (``Plan.refind_block``)."""
    new: bytes
    """refind.conf after the edit."""
    diff: str
    """Unified diff old -> new ('' when already up to date)."""
    bootloader: str = "refind"
    """Which bootloader the entries are for: "refind" or "grub"."""
    survey: tuple[str, ...] = ()
    """What each bootloader found, Secure Boot, and why this one (``Plan.survey``)."""


def entry_title(settings: Settings) -> str:
    """The default entry's title as apply writes it for ``settings`` (Done names it)."""
    return bootloader.default_title(replace(settings, image=images.normalize_ref(settings.image)))


def refind_preview(plan: Plan) -> RefindPreview:
    """The boot entries of ``plan`` (made with the ``bootloader`` step) and their diff."""
    if plan.chain is not None:
        conf, old = bootchain.cfg_path(plan.chain), bootchain.old_cfg(plan.chain)
        new = plan.chain.cfg.encode()
        return RefindPreview(conf, plan.chain.cfg, new, unified_diff(old, new, str(conf)),
                             plan.chain.loader, tuple(plan.survey))
    if plan.refind_conf is None or plan.refind_new is None or plan.refind_block is None:
        raise ValueError("the plan was made without the bootloader step")
    return RefindPreview(plan.refind_conf, plan.refind_block, plan.refind_new,
                         unified_diff(plan.refind_old, plan.refind_new, str(plan.refind_conf)),
                         "refind", tuple(plan.survey))


def sections(plan: Plan, steps: tuple[str, ...] = EXECUTE_STEPS) -> list[Section]:
    """The review of ``plan`` restricted to ``steps`` (see ``apply.EXECUTE_STEPS``)."""
    s, top = plan.settings, plan.top
    boot = f"{top}/{s.boot_dir}"
    out = [Section("Summary",
                   f"Partition: LABEL={s.label} ({plan.device})\n"
                   f"Image: {s.image} -> subvolume {plan.image_subvolume}\n"
                   f"Kernel command line: {plan.cmdline}"),
           Section("Subvolumes",
                   f"{s.docker_path}: docker's data-root (exists, kept)\n"
                   f"{s.rwlayer}: recreated at EVERY boot from the image; everything outside "
                   "the top layer and persistent mounts is reset at each boot"
                   + "".join(f"\n{m.subvolume}: created now, mounted at {m.mountpoint} "
                             f"({m.why})" for m in machine.PERSISTENT
                             if m.subvolume in plan.persistent.subvolumes))]
    if "initramfs" in steps:
        how = ("already built, installed now" if plan.staged is not None
               else "built now inside a container of the image")
        what = (f"{plan.target.generator}, kernel {plan.target.kver}: " if plan.target
                else "kernel + initramfs ")
        gen = plan.generation
        title = (f"{boot}/{gen.record.loader}, {gen.record.initrd_path}" if gen
                 else f"{boot} kernel + initramfs")
        body = f"{what}{how} (the older generations stay until the new one is complete)"
        if gen is not None:
            body += (f"\nGeneration {gen.record.number} of {gen.record.image_ref} @"
                     f"{(gen.record.image_id or '')[7:19]}; the default entry boots it")
            if gen.previous is not None and gen.previous.image_id:
                body += (f"\nThe \"previous\" entry boots generation {gen.previous.number} "
                         f"(kernel {gen.previous.kernel_version}) with image "
                         f"@{gen.previous.image_id[7:19]}, pinned by ID")
        out.append(Section(title, body))
    if "toplayer" in steps:
        if plan.persistent.homes:
            out.append(Section("Home directories", "\n".join(
                f"{h.path} of {h.user}: made from the image's /etc/skel (an existing one "
                "is never touched)" for h in plan.persistent.homes)))
        if plan.persistent.landings:
            out.append(Section("Top layer over the image (never written through a symlink)",
                               "\n".join(f"{x.relpath}: {x.note}"
                                         for x in plan.persistent.landings)))
        for change in plan.toplayer_changes:
            out.append(Section(f"{top}/{s.toplayer_path}/{change.relpath}",
                               diff_text(change) or "(unchanged)"))
    if "bootloader" in steps and plan.survey:
        out.append(Section("Bootloader", "\n".join(plan.survey)))
    if "bootloader" in steps and plan.chain is not None:
        conf, old = bootchain.cfg_path(plan.chain), bootchain.old_cfg(plan.chain)
        custom = plan.chain.custom if plan.chain.loader == "grub" else None
        title = (f"systemd-boot entries (the wizard's files in {conf}: one per generation)"
                  if plan.chain.loader == "systemd-boot"
                 else f"GRUB entries (the wizard's block in {conf}, read by {custom.distro}'s "
                 "GRUB; the rest kept byte for byte; backup kept)" if custom
                 else f"GRUB entries ({conf}, written whole; backup kept)")
        out.append(Section(title, unified_diff(old, plan.chain.cfg.encode(), str(conf))
                           or plan.chain.cfg.rstrip("\n")))
        if custom:
            out.append(Section("Default entry", bootchain.describe_default(plan.chain,
                                                                           s.default_entry)))
        out.append(Section("Files written (the boot count on the ESP, the entries)" if custom
                           else "Files on the ESP (kernel copies, entries, loader.conf when "
                           "asked)" if plan.chain.loader == "systemd-boot"
                           else "Files on the ESP (shim + GRUB from the image, signed by its "
                           "distribution)", bootchain.describe(plan.chain)))
    if "bootloader" in steps and plan.refind_conf is not None and plan.refind_new is not None:
        if plan.refind_block is not None:
            out.append(Section("rEFInd entries (the block written into refind.conf)",
                               plan.refind_block.rstrip("\n")))
        out.append(Section("Default entry", bootloader.describe_default(
            bootloader.decode(plan.refind_old or b""), s.default_entry)))
        out.append(Section(f"{plan.refind_conf} (backup kept)",
                           unified_diff(plan.refind_old, plan.refind_new, str(plan.refind_conf))
                           or "(unchanged)"))
    if "config" in steps:
        out.append(Section(f"{boot}/dockerboot-wizard.toml",
                           unified_diff(plan.config_old, plan.config_new,
                                        "dockerboot-wizard.toml") or "(unchanged)"))
    out += [Section("Warning", w) for w in plan.warnings]
    return out
