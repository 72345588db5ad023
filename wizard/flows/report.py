"""Human-readable rendering of a plan: what ``--dry-run`` prints and the CLI confirms.

The same sections as the TUI's review (``wizard.flows.review.sections``), as text,
plus a line for each thing the chosen steps leave as it is.
"""

from __future__ import annotations

from wizard.flows.apply import EXECUTE_STEPS, Plan
from wizard.flows.review import sections


def render_plan(plan: Plan, steps: tuple[str, ...] = EXECUTE_STEPS) -> str:
    """The review of what ``steps`` write: command line, subvolumes, every file's diff."""
    s, top = plan.settings, plan.top
    out = [f"{section.title}:\n{_indent(section.body)}" for section in sections(plan, steps)]
    if "initramfs" not in steps:
        out.append(f"{top}/{s.boot_dir}: kernel + initramfs generations kept as they are")
    if "bootloader" not in steps:
        out.append("refind.conf: boot entry kept as it is")
    return "\n".join(out)


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" for line in text.splitlines()).rstrip("\n")
