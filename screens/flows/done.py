"""Done step: what happens at the next boot, how to update, how to come back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Button, Markdown, Static
from textual.worker import get_current_worker

from screens.common.base import StepScreen, css
from screens.common.worklog import Relayed, ShowsWork, WorkLog, relay
from wizard.flows.flow import Mode, Step, WizardState
from wizard.flows.review import entry_title
from wizard.toplayer.machine import PERSISTENT

if TYPE_CHECKING:
    from wizard.flows.services import Services

TRY_STEPS = 3
"""The try's steps (the read-only view, the scratch copy, the boot): its progress bar."""


def _text(state: WizardState) -> str:
    s = state.settings
    image = s.image if s else "the image"
    label = s.label if s else "the partition"
    rw = s.rwlayer if s else "docker_rwlayer"
    top = s.toplayer_path if s else "boot_docker/toplayer"
    entry = f"**{entry_title(s)}**" if s else "the default entry"
    new_machine = state.mode is Mode.NEW_MACHINE
    chosen = s.bootloader if s is not None and s.bootloader else "refind"
    # A new machine's ESP and image chose its bootloader (install.flow): not in the state.
    loader = {"grub": "GRUB", "systemd-boot": "systemd-boot"}.get(
        chosen, "The bootloader" if new_machine and not (s and s.bootloader) else "rEFInd")
    by_itself = {"grub": " GRUB boots it by itself when the newest generation did not come "
                         "up in 3 boots (a kernel that panics, a broken initramfs) or its "
                         "kernel is refused.",
                 "systemd-boot": " systemd-boot boots it by itself when the newest generation "
                                 "did not come up in 3 boots (a kernel that panics, a broken "
                                 "initramfs)."}.get(chosen, "")
    if state.mode is Mode.ROLLBACK:
        entry += " (rolled back to @<the image ID it boots>)"
    what = {Mode.RECONFIGURE_TOPLAYER: "The top layer was updated; kernel, initramfs and "
                                       "boot entry are unchanged.",
            Mode.UPDATE: f"A new generation for what `{image}` is now is the default entry.",
            Mode.ROLLBACK: "The previous generation is the default entry again, its image "
                           "pinned by ID, until the next update.",
            Mode.NEW_MACHINE: f"`LABEL={label}` holds `{image}` in a docker store of its own, "
                              "with kernel, initramfs, the boot chain on the ESP and the "
                              "firmware's boot entry."}.get(
        state.mode, f"Kernel, initramfs and the {loader} entry for `{image}` are in place.")
    kept = [f"`{m.mountpoint}` (subvolume `{m.subvolume}`)" for m in PERSISTENT
            if s is None or getattr(s, m.setting)]
    if s is None or s.docker_store:
        kept.append(f"`/var/lib/docker`: the store this machine boots from (`{label}`)")
    persists = ", ".join(kept) if kept else "nothing but the top layer"
    if s is None or s.auto_update:
        how = (f"In the booted system, `sudo docker pull {image}` (or `docker build`) and reboot: "
               "its own `dockerboot-update` (in the top layer) sees the tag move and builds a "
               "new generation by itself when the kernel changed; otherwise the next boot "
               "simply snapshots the new image. `sudo dockerboot-update status` there, or "
               f"`sudo dockerboot-wizard update --label {label}` from here.")
    else:
        how = (f"`docker pull {image}` (or `docker build`), then `sudo dockerboot-update` in the "
               f"booted system (the automatic update is off) or `sudo dockerboot-wizard update "
               f"--label {label}` here, and reboot: a new generation, built only when the kernel "
               "or the initramfs inputs changed.")
    elsewhere = new_machine and state.new_disk is not None and not state.new_disk.target.here
    boot_it = ("\n## To boot it\nPut the disk in the UEFI machine it is for: its firmware boots "
               "it from the removable path, with no boot entry.\n" if elsewhere else
               f"\n## To boot it\nReboot and choose the disk, or \"dockerboot {label}\", in the "
               "firmware's boot menu.\n" if new_machine else "")
    return f"""\
# Done

{what}
{boot_it}
## At the next boot
{loader} boots its default entry, {entry}. The initramfs resolves `{image}` on `LABEL={label}`,
snapshots it as a fresh `{rw}`, copies the top layer (`{top}`) over it and boots it.
**Everything outside the top layer and the persistent mounts in its fstab is reset at
every boot.** What persists: {persists}.

## To update
{how}
Without an update, a root whose `/lib/modules` lacks the running kernel never boots: the last
good image boots instead, with one line saying why. {loader}'s **Previous generation** entry boots
the generation before, its image pinned by ID;{by_itself}
`sudo dockerboot-wizard rollback --label {label}` makes it the default.
`dockerboot-wizard status --label {label}` shows what boots and what is pending.

{_come_back(label, new_machine)}
"""


def _come_back(label: str, new_machine: bool) -> str:
    offers = ("`sudo dockerboot-wizard` loads the saved config and offers: reconfigure the top "
              "layer,\nswitch image/tag, rebuild the initramfs, rewrite the boot entry.")
    if not new_machine:
        return f"## To come back\n{offers}"
    return f"""\
## To come back
The system you installed from stays in the firmware's boot menu: choose it there to boot
it again. From either system, {offers}"""


class DoneScreen(StepScreen, ShowsWork):
    """The last screen: a summary and how to go on; Finish (or Enter) ends the wizard.

    Review applied everything before this screen: there is no Back, and
    quitting never asks (the state has nothing unsaved any more).  Try in a
    VM (t) boots what the next boot will boot, over a copy, headless
    (``Services.try_boot``), and shows what the VM's console showed last.
    """

    STEP = Step.DONE
    NEXT_LABEL = "Finish"
    CSS_PATH = css("done")
    BINDINGS = [Binding("n", "next", "Finish"),
                Binding("enter", "next", "Finish", show=False),
                Binding("t", "try_vm", "Try in a VM"),
                Binding("escape", "cancel", "Cancel")]

    @dataclass
    class Tried(Message):
        """The try ended: ``try --json``'s object."""

        result: dict[str, Any]

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(state, services)
        self.work_log = WorkLog(id="work")
        self.work_log.display = False  # room for the text until a try starts

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="text"):
            yield Markdown(_text(self.state))
        yield Static("", id="status")
        yield self.work_log

    def compose_buttons(self) -> ComposeResult:
        yield Button("Try in a VM (t)", id="try", action="screen.try_vm")

    def on_mount(self) -> None:
        self.query_one("#back", Button).display = False
        self.query_one("#status", Static).display = False

    def can_leave(self) -> bool:
        return not self.busy  # a running try is cancelled first (Escape)

    def update_nav(self) -> None:
        super().update_nav()
        if self.query("#try"):
            self.query_one("#try", Button).disabled = not self._can_try()

    def _can_try(self) -> bool:
        return not self.busy and self.state.settings is not None

    def set_status(self, text: str) -> None:
        status = self.query_one("#status", Static)
        status.update(Text(text))
        status.display = True

    def show_progress(self, label: str) -> None:
        self.set_status(f"Trying in a VM… {label}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return False  # hidden: what was applied stays applied
        if action == "try_vm":
            return self._can_try() or None
        if action == "cancel":
            return self.busy or None
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        """Nothing to go back to after Apply."""

    def action_try_vm(self) -> None:
        settings = self.state.settings
        if settings is None or self.busy:
            return
        self.clear_error()
        self.busy = True
        self.set_status(f"Trying in a VM: copying what the next boot reads (nothing on "
                        f"LABEL={settings.label} is written), then booting it…")
        self.work_log.display = True
        self.work_log.reset()
        self.run_try()

    def action_cancel(self) -> None:
        if self.busy:
            self.set_status("Cancelling the try…")
            self.workers.cancel_group(self, "try")

    # --- the worker: only posts messages ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="try")
    def run_try(self) -> None:
        settings = self.state.settings
        assert settings is not None  # _can_try
        seen = Relayed()
        with self.reporting("try", seen.tail):
            cancel = get_current_worker().cancelled_event
            result = relay(self.services.try_boot(settings, cancel=cancel), self,
                           steps=TRY_STEPS, seen=seen)
            self.post_message(self.Tried(result))

    @on(Tried)
    def show_tried(self, message: Tried) -> None:
        self.busy = False
        self.work_log.finish()
        out = message.result
        self.work_log.write_line("== the VM's console, last lines:")
        for line in out.get("console_tail", []):
            self.work_log.write_line(f"   {line}")
        for line in out.get("failed", []):
            self.work_log.write_line(f"   failed: {line}")
        if out.get("ok"):
            prompt = f" ({out['login_line']})" if out.get("login_line") else ""
            self.set_status(f"The VM reached the login prompt{prompt} after "
                            f"{out.get('seconds', 0):.0f}s: the next boot works. Nothing on the "
                            "partition changed.")
        else:
            what = "ended in emergency mode" if out.get("emergency") else \
                "did not reach the login prompt"
            self.set_status(f"The VM {what}: fix it before you reboot (see the console's "
                            "lines below). Nothing on the partition changed.")
