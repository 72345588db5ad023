"""``dockerboot-wizard try``'s work: prepare the scratch disk, boot it, watch the serial line.

``prepare`` (a generator of events with a cancel token) reads the partition
through a read-only view (``scratch.read_only_view``), decides what boots
(``plan.choose``), copies what the boot reads into a scratch disk and
returns a ``Prepared`` VM; ``watch`` boots it headless and waits for the
login prompt (or an emergency shell, a panic, the timeout); ``console``
boots it with the serial console on this terminal.  ``run`` is the whole
headless try for the CLI and the screens.  The VM is a direct kernel boot
of the generation's kernel and initramfs under OVMF (no rEFInd, whose entry
only passes these three things), on a copy: nothing on the partition is
written and its dockerd keeps running.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pexpect

from wizard.boot import generations, status
from wizard.common.errors import WizardError
from wizard.common.events import Event, LogLine, Progress, StepDone, StepStarted, check_cancel
from wizard.sandbox import qemu
from wizard.sandbox.console import LOGIN, Console
from wizard.settings import config
from wizard.store import images
from wizard.trial import console_log, guest, plan, scratch

SCHEMA = 1
"""Version of ``try --json``'s object."""


@dataclass
class Prepared:
    """A VM ready to boot: its scratch disk, kernel, command line and size."""

    workdir: Path
    target: plan.Target
    vm: plan.Machine
    network: str
    label: str
    images: tuple[str, ...]
    """What the hook can resolve on the copy (the configured ref, the last good ID)."""
    scratch_bytes: int
    started: float = field(default_factory=time.monotonic)
    made: list[Path] = field(default_factory=list)
    keep: bool = False
    made_id: tuple[int, int] | None = None
    """``workdir``'s identity when the try made it (``scratch.identity``)."""
    left: list[str] = field(default_factory=list)
    """One line per thing ``cleanup`` refused to remove."""
    disk: Path = field(init=False)
    """The scratch disk image (in ``workdir``)."""
    log: Path = field(init=False)
    """The serial console's log (in ``workdir``)."""

    def __post_init__(self) -> None:
        self.disk, self.log = self.workdir / "scratch.img", self.workdir / "serial.log"

    def command(self) -> list[str]:
        """QEMU's command line: the sandbox's machine, a direct kernel boot."""
        self.made.append(self.log.with_suffix(".vars.fd"))
        return qemu.qemu_command(
            self.disk, qemu.ovmf_vars_copy(self.log), str(self.vm.memory_mib),
            ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"],
            accel=self.vm.accel, cpus=self.vm.cpus, network=self.network,
            extra=("-kernel", str(self.workdir / "vmlinuz"),
                   "-initrd", str(self.workdir / "initrd.img"),
                   "-append", self.target.boot_cmdline))

    def cleanup(self) -> None:
        """Remove the scratch disk and the rest of what the try made (unless kept).

        What it must not remove (``scratch.safe_remove``) is left, said in ``left``.
        """
        if not self.keep:
            self.left += scratch.safe_remove(self.workdir, self.made, self.made_id)


@dataclass(frozen=True)
class Result:
    """What a headless try saw."""

    login_prompt: bool
    emergency: bool
    seconds: float
    """From the start of the try to the login prompt (or to the end of the wait)."""
    boot_seconds: float
    """From QEMU's start."""
    hook_lines: tuple[str, ...]
    failed: tuple[str, ...]
    prepared: Prepared
    serial_log: str = ""
    console_tail: tuple[str, ...] = ()
    """The serial console's last lines (the login prompt, or the emergency shell's text)."""
    inside: guest.Inside | None = None
    """What a login on the console found (``--user``), else None."""

    @property
    def ok(self) -> bool:
        """The login prompt came, no emergency shell; with a login: it worked, no unit failed."""
        return not self.reason

    @property
    def reason(self) -> str:
        """One line: why the try is not ok (empty: it is)."""
        if self.emergency:
            return "the boot ended in an emergency shell (or a kernel panic)"
        if not self.login_prompt:
            return "no login prompt on the serial console"
        if self.inside is None:
            return ""
        if self.inside.reason:
            return self.inside.reason
        if self.inside.failed_units:
            return f"failed units: {', '.join(self.inside.failed_units)}"
        return ""

    @property
    def login_line(self) -> str:
        """The login prompt as the console showed it (``box login:``), or empty."""
        return next((line for line in reversed(self.console_tail)
                     if line.endswith("login:") and not line.startswith("Last login")), "")

    def to_json(self) -> dict[str, Any]:
        """The object ``try --json`` prints (``SCHEMA``)."""
        p, inside = self.prepared, self.inside
        return {"schema": SCHEMA, "ok": self.ok, "reason": self.reason,
                "login_prompt": self.login_prompt, "login_line": self.login_line,
                "emergency": self.emergency, "seconds": round(self.seconds, 1),
                "boot_seconds": round(self.boot_seconds, 1), "hook_lines": list(self.hook_lines),
                "failed": list(self.failed), "label": p.label,
                "generation": p.target.generation.number, "entry": p.target.entry,
                "cmdline": p.target.cmdline, "added_to_cmdline": list(p.target.added),
                "image": p.target.image, "images_copied": list(p.images),
                "accel": p.vm.accel, "memory_mib": p.vm.memory_mib, "cpus": p.vm.cpus,
                "network": p.network, "scratch_bytes": p.scratch_bytes,
                "serial_log": self.serial_log, "console_tail": list(self.console_tail),
                "user": inside.user if inside else None,
                "logged_in": inside.logged_in if inside else False,
                "system_state": inside.system_state or None if inside else None,
                "failed_units": list(inside.failed_units) if inside and inside.logged_in
                else None}


def _copy_plan(view: Path, settings: config.Settings, refs: list[str]
               ) -> tuple[scratch.Copy, tuple[str, ...], list[str]]:
    """What to copy; the refs the copy resolves; one line per ref the hook could not resolve."""
    data_root = view / settings.docker_path
    subvols: list[str] = []
    resolved: list[str] = []
    notes: list[str] = []
    for ref in refs:
        try:
            sub = images.resolve_subvolume(data_root, ref)
        except WizardError as e:
            notes.append(f"{ref}: {e.problem} (the hook will say so too)")
            continue
        rel = str(sub.relative_to(view))
        resolved.append(ref)
        if rel not in subvols:
            subvols.append(rel)
    boot = settings.boot_dir.strip("/")
    trees = [f"{settings.docker_path}/image", boot]
    for extra in (settings.toplayer_path, status.state_dir(settings)):
        if extra != boot and not extra.startswith(f"{boot}/") and (view / extra).is_dir():
            trees.append(extra)
    rw = settings.rwlayer
    # Not one below a tree copied whole (boot_docker/roots/<id>: dockerboot's
    # copies of images): made first, it would turn the tree's cp into a copy
    # inside it (boot_docker/boot_docker/...).
    empty = [s for s in scratch.top_subvolumes(view)
             if s != rw and not s.startswith(f"{rw}.") and s not in subvols
             and not any(s.startswith(f"{t}/") for t in trees)]
    if settings.docker_path not in empty:
        empty.append(settings.docker_path)
    size = sum(scratch.tree_bytes(view / rel) for rel in trees + subvols)
    return (scratch.Copy(tuple(subvols), tuple(trees), tuple(empty), size), tuple(resolved),
            notes)


def prepare(label: str, which: str | None = None, *, network: str = "none",
            accel: str = "auto", workdir: Path | None = None, keep: bool = False,
            cancel: threading.Event | None = None) -> Generator[Event, None, Prepared]:
    """Decide what the next boot boots and copy it into a scratch disk; return the VM.

    Args:
        label: the configured partition's label.
        which: None (the default entry), ``previous`` or a generation number.
        network: ``none`` or ``user``.
        accel: ``auto`` (KVM where ``/dev/kvm`` works), ``kvm`` or ``tcg``.
        workdir: a directory for the scratch disk (default: a new one in ``/var/tmp``).
        keep: leave the scratch disk and the serial log afterwards.
        cancel: set to stop between steps.

    Raises:
        TrialError: no QEMU/OVMF, no generation, not enough memory or disk.
        WizardError: the partition, its config or its records cannot be read.

    """
    from wizard.disk import partitions

    started = time.monotonic()
    missing = plan.tools_missing((qemu.OVMF_CODE, qemu.OVMF_VARS))
    if missing is not None:
        raise missing
    if network not in plan.NETWORKS:
        raise plan.TrialError(f"unknown network {network!r}", "give --network user, or none")
    total, available = plan.host_memory()
    vm = plan.machine(total, available, os.cpu_count() or 1, accel)
    yield LogLine(vm.line())
    part = partitions.find_by_label(label)
    yield StepStarted("view", f"a read-only view of LABEL={label} ({part.device}); "
                              "nothing is written to it")
    base = workdir or Path("/var/tmp")
    with scratch.read_only_view(part.device) as view:
        settings = config.load(view)
        if settings is None:
            raise plan.TrialError(f"nothing was applied to LABEL={label} (no saved config)",
                                  "run `dockerboot-wizard apply` first")
        target = plan.choose(settings, generations.load(view / settings.boot_dir), which)
        for rel in (target.kernel, target.initrd):
            if not (view / rel).is_file():
                raise plan.TrialError(f"{rel} is missing on LABEL={label}",
                                      "run `dockerboot-wizard update` to build it again")
        good, _booted = status.hook_images(view, settings)
        refs = [target.image] + ([good] if good and good != target.image else [])
        copy, resolved, notes = _copy_plan(view, settings, refs)
        for note in notes:
            yield LogLine(note)
        yield StepDone("view", f"generation {target.generation.number} ({target.entry} entry), "
                               f"docker_image={target.image}")
        check_cancel(cancel)
        base.mkdir(parents=True, exist_ok=True)
        scratch.check_space(base, copy)
        work = Path(tempfile.mkdtemp(prefix="dockerboot-try-", dir=base))
        prepared = Prepared(work, target, vm, network, label, resolved, 0, started, keep=keep,
                            made_id=scratch.identity(work))
        prepared.made += [prepared.disk, work / "vmlinuz", work / "initrd.img", prepared.log]
        try:
            shutil.copyfile(view / target.kernel, work / "vmlinuz")
            shutil.copyfile(view / target.initrd, work / "initrd.img")
            prepared.scratch_bytes = yield from scratch.build(view, copy, prepared.disk, label,
                                                              cancel)
        except BaseException:
            prepared.cleanup()
            raise
    return prepared


def watch(prepared: Prepared, timeout: float = 900, cancel: threading.Event | None = None,
          login: guest.Credentials | None = None) -> Generator[Event, None, Result]:
    """Boot the prepared VM headless; wait for the login prompt, an emergency shell or the end.

    With ``login``, the user logs in at the prompt and systemd's failed units
    are read (``guest.inspect``); the password is blanked from the serial log.
    The VM is powered off (killed) afterwards: the try leaves nothing running.
    A KVM that opens but cannot run the firmware (``KVM internal error``, as
    in some nested VMs) is said in one line and the boot starts again with TCG.
    """
    yield StepStarted("boot", f"booting generation {prepared.target.generation.number} in QEMU: "
                              f"{prepared.target.boot_cmdline}")
    outcome, (start, end), inside = yield from _boot(prepared, timeout, cancel, login)
    if outcome == "kvm-failed":
        prepared.vm = replace(prepared.vm, accel="tcg",
                              why="KVM failed in the firmware (KVM internal error)")
        yield LogLine(f"KVM cannot run this VM: booting again — {prepared.vm.line()}")
        outcome, (start, end), inside = yield from _boot(prepared, timeout, cancel, login)
    boot_seconds = end - start
    if login is not None:
        login.hide_file(prepared.log)
    serial = _read(prepared.log) if login is None else login.hide(_read(prepared.log))
    # What the console showed up to the prompt: not the login session's own text after it.
    prompt = re.search(LOGIN, serial) if inside is not None else None
    boot_text = serial[:prompt.end()] if prompt else serial
    emergency = outcome == "emergency" or console_log.emergency(boot_text)
    result = Result(login_prompt=outcome == "login", emergency=emergency,
                    seconds=end - prepared.started, boot_seconds=boot_seconds,
                    hook_lines=tuple(console_log.hook_lines(boot_text)),
                    failed=tuple(console_log.failures(serial)), prepared=prepared,
                    serial_log=str(prepared.log) if prepared.keep else "",
                    console_tail=tuple(console_log.tail(boot_text)), inside=inside)
    what = ("the login prompt" if result.login_prompt and not emergency
            else "an emergency shell" if emergency else "no login prompt")
    yield StepDone("boot", f"{what} after {boot_seconds:.0f}s in the VM")
    return result


def _boot(prepared: Prepared, timeout: float, cancel: threading.Event | None,
          login: guest.Credentials | None = None
          ) -> Generator[Event, None, tuple[str, tuple[float, float], guest.Inside | None]]:
    """One boot until: ``login``, ``emergency``, ``kvm-failed``, ``exit`` or ``timeout``.

    Returns the outcome, when QEMU started and when the outcome came
    (``time.monotonic``), and, at a login prompt with ``login``, what the login found.
    """
    console = Console.spawn(prepared.command(), prepared.log, timeout=timeout)
    patterns = [LOGIN, console_log.KVM_FAILED, *console_log.EMERGENCY]
    outcome, seen, inside, at = "timeout", 0, None, None
    try:
        while time.monotonic() - console.started < timeout:
            check_cancel(cancel)
            i = console.child.expect([*patterns, pexpect.EOF, pexpect.TIMEOUT], timeout=2)
            for line in console_log.hook_lines(_read(prepared.log))[seen:]:
                seen += 1
                yield LogLine(line)
            if i < len(patterns):
                at = time.monotonic()
                outcome = ("login", "kvm-failed")[i] if i < 2 else "emergency"
                if outcome == "emergency":  # let the last lines of the failure come
                    console.child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=5)
                if outcome == "login" and login is not None:
                    yield StepStarted("login", f"logging in as {login.user} on the serial "
                                               "console; systemd's failed units")
                    inside = guest.inspect(console, login)
                    yield StepDone("login", inside.line())
                break
            if i == len(patterns):
                outcome = "exit"  # a panic under -no-reboot, a power-off
                break
            yield Progress(time.monotonic() - console.started, timeout, "booting")
    finally:
        # Up to the prompt (or the end of the wait): a login after it is not the boot's time.
        end = at or time.monotonic()
        console.close()
    return outcome, (console.started, end), inside


def console(prepared: Prepared, escape: str = "\x1d", say: Callable[[str], None] = print,
            kvm_wait: float = 15) -> None:
    """Boot the prepared VM with its serial console on this terminal until ``escape``.

    With KVM the console is handed over after ``kvm_wait`` seconds of the boot
    (shown as they come): a KVM that fails in the firmware is said in one line
    and the VM starts again with TCG, as in ``watch``.
    """
    con = Console.spawn(prepared.command(), prepared.log, timeout=24 * 3600, echo=sys.stdout)
    try:
        if prepared.vm.accel == "kvm" and con.child.expect(
                [console_log.KVM_FAILED, pexpect.EOF, pexpect.TIMEOUT], timeout=kvm_wait) == 0:
            con.close()
            prepared.vm = replace(prepared.vm, accel="tcg",
                                  why="KVM failed in the firmware (KVM internal error)")
            say(f"try: KVM cannot run this VM: booting again — {prepared.vm.line()}")
            con = Console.spawn(prepared.command(), prepared.log, timeout=24 * 3600)
        con.interact(escape)
    finally:
        con.close()


def run(label: str, which: str | None = None, *, timeout: float = 900, network: str = "none",
        accel: str = "auto", workdir: Path | None = None, keep: bool = False,
        cancel: threading.Event | None = None,
        login: guest.Credentials | None = None) -> Generator[Event, None, Result]:
    """The whole headless try: ``prepare``, ``watch`` (and log in), clean up; the result."""
    prepared = yield from prepare(label, which, network=network, accel=accel, workdir=workdir,
                                  keep=keep, cancel=cancel)
    try:
        result = yield from watch(prepared, timeout, cancel, login)
    finally:
        prepared.cleanup()
    for line in prepared.left:
        yield LogLine(line)
    return result


def by_label(label: str, cancel: threading.Event) -> Generator[Event, None, dict[str, Any]]:
    """The headless try of the default entry as ``try --json``'s object (the TUI's action)."""
    result = yield from run(label, cancel=cancel)
    return result.to_json()


def _read(log: Path) -> str:
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")
    return ""

