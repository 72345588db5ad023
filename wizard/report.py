"""Human-readable rendering of a plan: what ``--dry-run`` prints and the CLI confirms."""

from __future__ import annotations

from wizard.apply import Plan
from wizard.diffs import unified_diff
from wizard.toplayer import diff_text


def render_plan(plan: Plan) -> str:
    """The full review: kernel command line, subvolumes, and every file with its diff."""
    s, top = plan.session.settings, plan.session.top
    boot = f"{top}/{s.boot_dir}"
    out = [
        f"Partition:      LABEL={s.label} ({plan.session.partition.device}), top level at {top}",
        f"Image:          {s.image} -> subvolume {plan.image_subvolume}",
        f"Initramfs:      {plan.target.generator}, kernel {plan.target.kver}",
        f"Kernel command line:\n  {plan.cmdline}",
        "",
        "Subvolumes:",
        f"  {s.docker_path}: docker's data-root (exists, kept)",
        f"  {s.rwlayer}: recreated at EVERY boot as a snapshot of the image; everything",
        "    outside the top layer and persistent mounts is reset at each boot",
        "",
        "Files:",
        f"  {boot}/vmlinuz, {boot}/initrd.img: rebuilt inside a container of the image "
        "(the old pair stays until the new one is complete)",
    ]
    for change in plan.toplayer_changes:
        out.append(f"  {top}/{s.toplayer_path}/{change.relpath}:")
        out.append(_indent(diff_text(change)))
    out.append(f"  {plan.refind_conf} (backup kept):")
    out.append(_indent(_diff(plan.refind_old, plan.refind_new, str(plan.refind_conf))))
    out.append(f"  {boot}/dockerboot-wizard.toml:")
    out.append(_indent(_diff(plan.config_old, plan.config_new, "dockerboot-wizard.toml")))
    for warning in plan.warnings:
        out.append(f"warning: {warning}")
    return "\n".join(out)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines()).rstrip("\n")


def _diff(old: bytes | None, new: bytes, name: str) -> str:
    return unified_diff(old, new, name) or "(unchanged)"
