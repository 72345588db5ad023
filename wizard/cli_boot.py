"""Headless commands for a configured partition: ``update``, ``rollback`` and ``status``.

All three start from the partition's saved config (what ``apply`` wrote);
``update`` and ``rollback`` print the plan, ask (unless ``--yes``) and carry
it out in one locked session; ``status`` writes nothing and takes no lock.
"""

from __future__ import annotations

import argparse
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from wizard.config import Settings
from wizard.errors import ConfigError

PROC_CMDLINE = Path("/proc/cmdline")


def add_parsers(sub: Any) -> None:
    """Add ``update``, ``rollback`` and ``status`` to the CLI's subparsers."""
    up = sub.add_parser("update", help="a new generation for the image the tag points at now "
                                       "(a build only when the kernel or initramfs inputs "
                                       "changed)")
    up.add_argument("--pull", action="store_true", help="docker pull the tag first")
    rb = sub.add_parser("rollback", help="make the previous generation the default again, "
                                         "its image pinned by ID")
    for p in (up, rb):
        p.add_argument("--label", required=True, help="label of the btrfs partition")
        p.add_argument("--esp", help="ESP directory holding rEFInd (default: the saved one)")
        p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    st = sub.add_parser("status", help="what boots, what booted, what is pending")
    st.add_argument("--label", required=True, help="label of the btrfs partition")
    st.add_argument("--json", action="store_true",
                    help="versioned JSON (docs/status-json.md)")


def saved_settings(label: str, esp: str | None = None) -> Settings:
    """The partition's saved config (read-only mount); ``esp`` overrides its ESP.

    Raises:
        ConfigError: the partition has no saved config (never applied).

    """
    from wizard import config, partitions

    with partitions.top_level(partitions.find_by_label(label), read_only=True) as top:
        saved = config.load(top)
    if saved is None:
        raise ConfigError(f"no saved config on LABEL={label}: nothing was applied to it",
                          "run `dockerboot-wizard apply --label LABEL --image NAME:TAG` first")
    return replace(saved, esp=esp) if esp else saved


def cmd_update(args: argparse.Namespace) -> int:
    """``update`` and ``rollback``: plan, show, confirm, execute."""
    from wizard import apply, update
    from wizard.cli import EXIT_ERROR, confirm, print_event

    apply.require_root()
    settings = saved_settings(args.label, args.esp)
    if getattr(args, "pull", False):
        from wizard import docker_daemon

        print(f"==> pulling {settings.image}", flush=True)
        docker_daemon.connect().images.pull(settings.image)
    with apply.open_session(settings, lock=not args.dry_run) as session:
        plan = (update.plan_rollback(session) if args.command == "rollback"
                else update.plan_update(session))
        print(plan.text)
        if plan.new is None and plan.refind_conf is None:
            return 0
        if args.dry_run:
            print("dry run: nothing was changed")
            return 0
        if not args.yes and not confirm("Go ahead?"):
            print("nothing was changed")
            return EXIT_ERROR
        for event in update.execute(session, plan, cancel=threading.Event()):
            print_event(event)
    new = plan.new
    if new is not None:
        print(f"done: the next boot of LABEL={args.label} starts generation "
              f"{new.record.number} ({new.record.image_ref} @{(new.record.image_id or '')[7:19]}"
              f", kernel {new.record.kernel_version})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the partition's status (text, or the versioned JSON)."""
    from wizard import apply, generations, initramfs, status
    from wizard.fingerprint import fingerprint
    from wizard.images import normalize_ref

    settings = saved_settings(args.label)
    with apply.open_session(settings, lock=False) as session:
        image = normalize_ref(settings.image)
        tag_id = str(session.client.images.get(image).id)
        newest = generations.load(session.top / settings.boot_dir).newest
        if newest is not None and newest.image_id == tag_id and newest.inputs is not None:
            inputs = fingerprint(newest.inputs.generator, newest.inputs.kernel_version)
        else:
            target = initramfs.detect(session.client, image)
            inputs = fingerprint(target.generator, target.kver)
        cmdline = _own_cmdline(settings.label)
        out = status.status(session.top, settings, tag_id=tag_id, tag_inputs=inputs,
                            cmdline=cmdline)
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(render_status(out))
    return 0


def _own_cmdline(label: str) -> str | None:
    # Inside the booted system /proc/cmdline tells the generation; elsewhere it is noise.
    try:
        text = PROC_CMDLINE.read_text()
    except OSError:
        return None
    return text if f"root=LABEL={label}" in text.split() or f"LABEL={label}" in text else None


def render_status(out: dict[str, Any]) -> str:
    """The status JSON as a few lines for people."""
    lines = [f"LABEL={out['label']}: {out['image']}"]
    gen, prev, booted = out["generation"], out["previous"], out["booted"]
    if gen:
        lines.append(f"default entry: generation {gen['number']}, kernel "
                     f"{gen['kernel_version']}, image @{(gen['image_id'] or '?')[7:19]}")
    if prev:
        lines.append(f"previous entry: generation {prev['number']}, kernel "
                     f"{prev['kernel_version']}, image @{(prev['image_id'] or '?')[7:19]}")
    if booted:
        lines.append(f"last boot: {booted['ref']} @{(booted['id'] or '?')[7:19]} on kernel "
                     f"{booted['kernel']}" + (f" — FALLBACK: {booted['fallback_reason']}"
                                              if booted["fallback"] else ""))
    if out["last_good"]:
        lines.append(f"last good image: @{out['last_good']['id'][7:19]}")
    pending = out["pending"]
    if pending["update"]:
        lines.append("update pending: " + "; ".join(pending["reasons"])
                     + (" (a build is needed)" if pending["build_needed"] else " (no build)"))
        lines.append(f"  run: dockerboot-wizard update --label {out['label']}")
    elif pending["update"] is False:
        lines.append("up to date")
    lines += [f"problem: {p}" for p in out["problems"]]
    return "\n".join(lines)
