"""Done step: what happens at the next boot, how to update, how to come back."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Markdown

from wizard.flow import Mode, Next, Outcome, Quit, WizardState
from wizard.machine import PERSISTENT
from wizard.resources import asset
from wizard.services import Services


def _text(state: WizardState) -> str:
    s = state.settings
    image = s.image if s else "the image"
    label = s.label if s else "the partition"
    rw = s.rwlayer if s else "docker_rwlayer"
    top = s.toplayer_path if s else "boot_docker/toplayer"
    what = ("The top layer was updated; kernel, initramfs and boot entry are unchanged."
            if state.mode is Mode.RECONFIGURE_TOPLAYER else
            f"Kernel, initramfs and the rEFInd entry for `{image}` are in place.")
    kept = [f"`{m.mountpoint}` (subvolume `{m.subvolume}`)" for m in PERSISTENT
            if s is None or getattr(s, m.setting)]
    if s is None or s.docker_store:
        kept.append(f"`/var/lib/docker`: the store this machine boots from (`{label}`)")
    persists = ", ".join(kept) if kept else "nothing but the top layer"
    return f"""\
# Done

{what}

## At the next boot
Pick **dockerboot {image}** in rEFInd. The initramfs resolves `{image}` on `LABEL={label}`,
snapshots it as a fresh `{rw}`, copies the top layer (`{top}`) over it and boots it.
**Everything outside the top layer and the persistent mounts in its fstab is reset at
every boot.** What persists: {persists}.

## To update
Inside the booted system: `docker pull {image}` (or `docker build`), then reboot.
A new kernel in the image needs **Rebuild initramfs** in the wizard.

## To come back
`sudo dockerboot-wizard` loads the saved config and offers: reconfigure the top layer,
switch image/tag, rebuild the initramfs, rewrite the boot entry.
"""


class DoneScreen(Screen[Outcome]):
    """The last screen: a summary and how to go on."""

    CSS_PATH = str(asset("tcss/done.tcss"))
    BINDINGS = [
        Binding("enter,n", "finish", "Finish"),
        Binding("q", "quit_wizard", "Quit"),
    ]

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        self.services = services

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="text"):
            yield Markdown(_text(self.state))
        with Horizontal(id="buttons"):
            yield Button("Finish", id="finish", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Done"
        self.query_one("#finish", Button).focus()

    def action_finish(self) -> None:
        self.dismiss(Next(self.state))

    def action_quit_wizard(self) -> None:
        self.dismiss(Quit())

    @on(Button.Pressed, "#finish")
    def _finish(self) -> None:
        self.action_finish()
