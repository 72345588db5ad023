"""``update`` and ``rollback``: a new generation for what the tag or the previous one is now.

``plan_update`` compares the configured tag's image ID now with the newest
generation's.  The same image with the same initramfs inputs: nothing to do
(no container is started).  A new image whose inputs (generator, kernel
version, hook assets) are the newest generation's: that generation's
kernel + initramfs are copied (a reflink) as a new generation of the new
image: no build, seconds.  Otherwise a build in a container of the new
image.  ``plan_rollback`` makes the previous generation's pair and image the
newest, pinned by ID, recording the images it turns away from (the newest
generation's and the tag's): the default entry boots it whatever the tag
says.  The rollback holds until the tag moves to another image than those,
or ``update`` is run by hand: the automatic update (``auto``, as the booted
system's ``dockerboot-update --auto`` does) leaves it alone and says why.
Both are carried out by ``execute`` in the three moves of
``wizard.boot.bootset``; nothing is written before it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wizard.boot import bootloader, bootset, generations, initramfs
from wizard.boot.fingerprint import assets_hash, fingerprint
from wizard.boot.generations import rollback_line, rollback_state
from wizard.boot.status import status
from wizard.common import atomic
from wizard.common.diffs import unified_diff
from wizard.common.errors import WizardError
from wizard.common.events import Event, check_cancel
from wizard.flows import bootchain
from wizard.flows.apply import (
    Session,
    check_esp_writable,
    check_target,
    locate_refind,
    open_session,
)
from wizard.loaders import esp_plan, grub
from wizard.settings.config import Settings
from wizard.store import images
from wizard.store.images import normalize_ref
from wizard.toplayer import machine


class NothingToRollBackError(WizardError):
    """There is no previous generation whose image can boot."""


@dataclass(frozen=True)
class UpdatePlan:
    """What ``execute`` will do (plain data; nothing written yet)."""

    settings: Settings
    """The saved settings (``docker_path`` from the daemon)."""
    top: Path
    """Where the partition's top level is mounted."""
    new: bootset.NewGeneration | None
    """The generation to add; None: up to date, nothing to do."""
    target: initramfs.BuildTarget | None
    """Set when the new generation is built (its kernel or inputs changed)."""
    reasons: list[str] = field(default_factory=list)
    """Why: the tag moved, the kernel changed, … (one line each)."""
    refind_conf: Path | None = None
    """The refind.conf to write (None with ``new``)."""
    refind_old: bytes = b""
    """Its content now."""
    refind_new: bytes = b""
    """Its content after ``execute``."""
    chain: esp_plan.ChainPlan | None = None
    """GRUB's files on the ESP to write, when GRUB boots the entries (instead of refind.conf)."""

    @property
    def writes_entries(self) -> bool:
        """Whether ``execute`` writes the boot entries."""
        return self.refind_conf is not None or self.chain is not None

    def _entries_diff(self) -> str:
        if self.chain is not None:
            conf = bootchain.cfg_path(self.chain)
            return (unified_diff(bootchain.old_cfg(self.chain), self.chain.cfg.encode(),
                                 str(conf)) or f"{conf}: unchanged")
        assert self.refind_conf is not None
        return (unified_diff(self.refind_old, self.refind_new, str(self.refind_conf))
                or f"{self.refind_conf}: unchanged")

    @property
    def text(self) -> str:
        """The plan as the CLI prints it before asking."""
        if self.new is None and not self.writes_entries:
            return "\n".join(["up to date: nothing to do", *self.reasons])
        if self.new is None:
            return "\n".join([*self.reasons, self._entries_diff()])
        rec = self.new.record
        how = ("built now in a container of the image" if self.target is not None
               else f"copied from generation {self.new.copy_from.number} (same inputs): "
                    "no build" if self.new.copy_from else "")
        out = [*self.reasons,
               f"new generation {rec.number}: {rec.image_ref} @{(rec.image_id or '')[7:19]}, "
               f"kernel {rec.kernel_version}: {how}"]
        prev = self.new.previous
        if prev is not None and prev.image_id is not None:
            out.append(f'the "previous" entry boots generation {prev.number} '
                       f"(kernel {prev.kernel_version}, image @{prev.image_id[7:19]})")
        if self.writes_entries:
            out.append(self._entries_diff())
        return "\n".join(out)


def plan_update(session: Session, *, auto: bool = False) -> UpdatePlan:
    """Plan an update to the configured tag's image (runs at most one probe container).

    ``auto``: as an automatic run (a write of the docker store, not the
    user): a rollback that holds (the tag still names an image it turned
    away from) is left alone, with the reason.  By hand, an update returns to
    the tag.

    Raises:
        WizardError: the tag is not in the store, has no bootable root, or the
            ESP / refind.conf cannot be written.

    """
    s = session.settings
    image = normalize_ref(s.image)
    images.resolve_subvolume(session.data_root, image)  # the tag exists and has a root
    tag_id = str(session.client.images.get(image).id)
    inv = generations.load(session.top / s.boot_dir)
    newest = inv.newest
    rollback = rollback_state(inv, tag_id)
    if auto and rollback is not None and rollback["holds"]:
        return _repair(session, UpdatePlan(
            s, session.top, None, None,
            [f"{rollback_line(rollback, image, tag_id)}: the automatic update does nothing"]))
    if (newest is not None and not newest.pinned and newest.image_id == tag_id
            and newest.inputs is not None
            and newest.inputs.assets == assets_hash(newest.inputs.generator)):
        return _repair(session, UpdatePlan(
            s, session.top, None, None,
            [f"{image} is still @{tag_id[7:19]}, generation {newest.number}"]))
    reasons = []
    if rollback is not None and newest is not None:
        # Not "the tag moved": it may well not have (a rollback pins another image).
        reasons.append(f"generation {newest.number} is a rollback to "
                       f"@{(newest.image_id or '?')[7:19]}: back to {image} @{tag_id[7:19]} "
                       + ("(run by hand)" if rollback["holds"] else
                          f"({image} moved since the rollback)"))
    elif newest is None or newest.image_id != tag_id:
        old = (newest.image_id or "unknown")[7:19] if newest else "none"
        reasons.append(f"{image} moved: @{old} -> @{tag_id[7:19]}")
    target = initramfs.detect(session.client, image)
    inputs = fingerprint(target.generator, target.kver)
    changes = inputs.changes(newest.inputs if newest else None)
    reuse = newest if newest is not None and not newest.legacy and not changes else None
    reasons += changes
    new = bootset.plan_new(session.top, replace(s, image=image), image_id=tag_id,
                           inputs=inputs, copy_from=reuse)
    return _with_entries(session, UpdatePlan(s, session.top, new,
                                             None if reuse else target, reasons))


def plan_rollback(session: Session) -> UpdatePlan:
    """Plan making the previous generation the default again, its image pinned by ID.

    Raises:
        NothingToRollBackError: no previous generation, its image is unknown
            (an earlier version's pair) or no longer in the store.

    """
    s = session.settings
    inv = generations.load(session.top / s.boot_dir)
    prev = inv.previous
    if prev is None or prev.image_id is None or prev.inputs is None:
        raise NothingToRollBackError(
            "there is no previous generation to roll back to" if prev is None else
            f"generation {prev.number} was made by an earlier version: its image is unknown",
            'pick the "Previous generation" entry in the rEFInd menu, or apply an image')
    try:
        session.client.images.get(prev.image_id)
    except Exception as e:  # noqa: BLE001 — docker's NotFound, without importing docker here
        raise NothingToRollBackError(
            f"the image of generation {prev.number} (@{prev.image_id[7:19]}) is no longer "
            f"in the docker store ({type(e).__name__})",
            "pull or build that image again, or apply another one") from e
    # What it turns away from: the newest generation's image, and the tag's now
    # (a pull with the same kernel boots without a new generation).
    away = {inv.newest.image_id} if inv.newest is not None and inv.newest.image_id else set()
    try:
        away.add(str(session.client.images.get(normalize_ref(s.image)).id))
    except Exception:  # noqa: BLE001, S110 — the tag is gone: its image is no concern
        pass
    new = bootset.plan_new(session.top, replace(s, image=normalize_ref(s.image)),
                           image_id=prev.image_id, inputs=prev.inputs, copy_from=prev,
                           pinned=True, rolled_back_from=tuple(away))
    reason = (f"rollback: generation {prev.number} ({prev.image_ref} @{prev.image_id[7:19]}, "
              f"kernel {prev.kernel_version}) becomes the default, pinned by ID")
    return _with_entries(session, UpdatePlan(s, session.top, new, None, [reason]))


def _grub(session: Session, settings: Settings,
          new: bootset.NewGeneration | None) -> tuple[esp_plan.ChainPlan, list[str]]:
    """GRUB's or systemd-boot's part: entries for the generations (and GRUB's chain)."""
    newest = (new.record if new is not None
              else generations.load(session.top / settings.boot_dir).newest)
    image_id = newest.image_id if newest is not None else None
    root = images.resolve_subvolume(session.data_root, image_id or normalize_ref(settings.image))
    return bootchain.plan_loader(session.top,
                                 replace(settings, image=normalize_ref(settings.image)),
                                 new, root, grub.find_chain(root),
                                 counting=machine.has_systemd(root))


def _repair(session: Session, plan: UpdatePlan) -> UpdatePlan:
    # Up to date, unless an earlier run stopped between adding a generation and
    # naming it: then the entries are written now.
    if plan.settings.bootloader in bootchain.ON_ESP:
        chain, _ = _grub(session, plan.settings, None)
        if not chain.changed and not chain.removes:
            return plan
        return replace(plan, reasons=[f"{bootchain.NAMES[chain.loader]}'s entries do not name "
                                      "the newest generation yet (an earlier run stopped), or "
                                      "what they load changed: writing them"], chain=chain)
    conf, _ = locate_refind(plan.settings)
    old, new = bootloader.plan_refind(conf, bootset.current_block(
        plan.top, replace(plan.settings, image=normalize_ref(plan.settings.image))),
        plan.settings.default_entry)
    if old == new:
        return plan
    check_esp_writable(conf, len(old) + len(new))
    return replace(plan, reasons=["the boot entries do not name the newest generation yet "
                                  "(an earlier run stopped): writing them"],
                   refind_conf=conf, refind_old=old, refind_new=new)


def _with_entries(session: Session, plan: UpdatePlan) -> UpdatePlan:
    assert plan.new is not None
    if plan.settings.bootloader in bootchain.ON_ESP:
        chain, warnings = _grub(session, plan.settings, plan.new)
        return replace(plan, reasons=[*plan.reasons, *warnings], chain=chain)
    conf, warnings = locate_refind(plan.settings)
    old, new = bootloader.plan_refind(conf, plan.new.block, plan.settings.default_entry)
    check_esp_writable(conf, len(old) + len(new))
    text = bootloader.decode(old)
    if bootloader.user_defaults(text):
        warnings = [*warnings, bootloader.describe_default(text, plan.settings.default_entry)]
    return replace(plan, reasons=[*plan.reasons, *warnings], refind_conf=conf,
                   refind_old=old, refind_new=new)


def execute(session: Session, plan: UpdatePlan, *,
            cancel: threading.Event | None = None) -> Iterator[Event]:
    """Carry out ``plan``: the new generation, then the entries, then the old ones go.

    A failure or a kill at any point leaves entries that all name complete
    generations: before the refind.conf write the old entries stand (the
    new generation is merely unnamed and kept), after it the new ones do.
    """
    if plan.new is None and not plan.writes_entries:
        return
    if plan.top != session.top:
        raise WizardError(f"the plan was made for {plan.top}, not {session.top}",
                          "run the command again")
    check_target(session)
    s = plan.settings
    name, _, tag = normalize_ref(s.image).rpartition(":")
    if plan.new is not None:
        yield from bootset.make_generation(session.client, session.top, s, plan.new,
                                           target=plan.target, cancel=cancel,
                                           image_name=name, image_tag=tag)
        check_cancel(cancel)  # a new generation no entry names yet: the next run names it
    check_target(session)
    if plan.chain is not None:
        yield from bootchain.write_grub(plan.chain, session.top, s, session.client)
        atomic.syncfs(session.top)
        atomic.syncfs(plan.chain.esp)
        return
    assert plan.refind_conf is not None
    yield from bootset.write_entries(plan.refind_conf, plan.refind_new, session.top, s,
                                     session.client)
    atomic.syncfs(session.top)
    atomic.syncfs(plan.refind_conf.parent)


def preview(settings: Settings, *, rollback: bool = False) -> UpdatePlan:
    """Plan an update (or a rollback) in a session of its own; nothing stays mounted or locked."""
    with open_session(settings, lock=False) as session:
        return plan_rollback(session) if rollback else plan_update(session)


def run(settings: Settings, *, rollback: bool = False,
        cancel: threading.Event | None = None) -> Generator[Event, None, None]:
    """Plan again and execute in one locked session of its own (what the TUI runs).

    The plan shown by ``preview`` may be stale by now (a pull meanwhile): this
    one is made from what is on disk when the lock is held.
    """
    with open_session(settings) as session:
        plan = plan_rollback(session) if rollback else plan_update(session)
        yield from execute(session, plan, cancel=cancel)


def partition_status(settings: Settings, cmdline: str | None = None) -> dict[str, Any]:
    """``status`` with what docker knows: the tag's ID now and a build's inputs from it.

    Runs a probe container only when the tag is not the newest generation's image.
    """
    with open_session(settings, lock=False) as session:
        image = normalize_ref(settings.image)
        tag_id = str(session.client.images.get(image).id)
        newest = generations.load(session.top / settings.boot_dir).newest
        if newest is not None and newest.image_id == tag_id and newest.inputs is not None:
            inputs = fingerprint(newest.inputs.generator, newest.inputs.kernel_version)
        else:
            target = initramfs.detect(session.client, image)
            inputs = fingerprint(target.generator, target.kver)
        conf: Path | None = None
        if settings.bootloader not in bootchain.ON_ESP:
            try:
                conf = locate_refind(settings)[0]
            except WizardError:
                conf = None  # no ESP found: the entries are not known
        out = status(session.top, settings, tag_id=tag_id, tag_inputs=inputs,
                     cmdline=cmdline, refind_conf=conf)
        if settings.bootloader == "grub":
            out = bootchain.grub_status(out, session.top, settings)
        elif settings.bootloader == "systemd-boot":
            out = bootchain.systemd_boot_status(out, settings)
        return out
