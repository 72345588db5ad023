"""Human-readable rendering of a plan: what ``--dry-run`` prints and the CLI confirms."""

from __future__ import annotations

from wizard.apply import EXECUTE_STEPS, Plan
from wizard.diffs import unified_diff
from wizard.toplayer import diff_text


def render_plan(plan: Plan, steps: tuple[str, ...] = EXECUTE_STEPS) -> str:
    """The review of what ``steps`` write: command line, subvolumes, every file's diff."""
    s, top = plan.session.settings, plan.session.top
    boot = f"{top}/{s.boot_dir}"
    out = [
        f"Partition:      LABEL={s.label} ({plan.session.partition.device}), top level at {top}",
        f"Image:          {s.image} -> subvolume {plan.image_subvolume}",
    ]
    if plan.target is not None:
        out.append(f"Initramfs:      {plan.target.generator}, kernel {plan.target.kver}")
    out += [
        f"Kernel command line:\n  {plan.cmdline}",
        "",
        "Subvolumes:",
        f"  {s.docker_path}: docker's data-root (exists, kept)",
        f"  {s.rwlayer}: recreated at EVERY boot as a snapshot of the image; everything",
        "    outside the top layer and persistent mounts is reset at each boot",
        "",
        "Files:",
    ]
    if "initramfs" in steps:
        how = (f"the build staged in {plan.staged} is installed" if plan.staged is not None
               else "rebuilt inside a container of the image")
        out.append(f"  {boot}/vmlinuz, {boot}/initrd.img: {how} "
                   "(the old pair stays until the new one is complete)")
    else:
        out.append(f"  {boot}/vmlinuz, {boot}/initrd.img: kept as they are")
    if "toplayer" in steps:
        for change in plan.toplayer_changes:
            out.append(f"  {top}/{s.toplayer_path}/{change.relpath}:")
            out.append(_indent(diff_text(change)))
    if "bootloader" in steps and plan.refind_conf is not None and plan.refind_new is not None:
        out.append(f"  {plan.refind_conf} (backup kept):")
        out.append(_indent(_diff(plan.refind_old, plan.refind_new, str(plan.refind_conf))))
    elif "bootloader" not in steps:
        out.append("  refind.conf: boot entry kept as it is")
    if "config" in steps:
        out.append(f"  {boot}/dockerboot-wizard.toml:")
        out.append(_indent(_diff(plan.config_old, plan.config_new, "dockerboot-wizard.toml")))
    for warning in plan.warnings:
        out.append(f"warning: {warning}")
    return "\n".join(out)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines()).rstrip("\n")


def _diff(old: bytes | None, new: bytes, name: str) -> str:
    return unified_diff(old, new, name) or "(unchanged)"
