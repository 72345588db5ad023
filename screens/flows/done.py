"""Done step: what happens at the next boot, how to update, how to come back."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Button, Markdown

from screens.common.base import StepScreen, css
from wizard.flows.flow import Mode, Step, WizardState
from wizard.flows.review import entry_title
from wizard.toplayer.machine import PERSISTENT


def _text(state: WizardState) -> str:
    s = state.settings
    image = s.image if s else "the image"
    label = s.label if s else "the partition"
    rw = s.rwlayer if s else "docker_rwlayer"
    top = s.toplayer_path if s else "boot_docker/toplayer"
    entry = f"**{entry_title(s)}**" if s else "the default entry"
    if state.mode is Mode.ROLLBACK:
        entry += " (rolled back to @<the image ID it boots>)"
    what = {Mode.RECONFIGURE_TOPLAYER: "The top layer was updated; kernel, initramfs and "
                                       "boot entry are unchanged.",
            Mode.UPDATE: f"A new generation for what `{image}` is now is the default entry.",
            Mode.ROLLBACK: "The previous generation is the default entry again, its image "
                           "pinned by ID, until the next update."}.get(
        state.mode, f"Kernel, initramfs and the rEFInd entry for `{image}` are in place.")
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
    return f"""\
# Done

{what}

## At the next boot
rEFInd boots its default entry, {entry}. The initramfs resolves `{image}` on `LABEL={label}`,
snapshots it as a fresh `{rw}`, copies the top layer (`{top}`) over it and boots it.
**Everything outside the top layer and the persistent mounts in its fstab is reset at
every boot.** What persists: {persists}.

## To update
{how}
Without an update, a root whose `/lib/modules` lacks the running kernel never boots: the last
good image boots instead, with one line saying why. rEFInd's **Previous generation** entry boots
the generation before, its image pinned by ID; `sudo dockerboot-wizard rollback --label {label}`
makes it the default. `dockerboot-wizard status --label {label}` shows what boots and what is
pending.

## To come back
`sudo dockerboot-wizard` loads the saved config and offers: reconfigure the top layer,
switch image/tag, rebuild the initramfs, rewrite the boot entry.
"""


class DoneScreen(StepScreen):
    """The last screen: a summary and how to go on; Finish (or Enter) ends the wizard.

    Review applied everything before this screen: there is no Back, and
    quitting never asks (the state has nothing unsaved any more).
    """

    STEP = Step.DONE
    NEXT_LABEL = "Finish"
    CSS_PATH = css("done")
    BINDINGS = [Binding("n", "next", "Finish"),
                Binding("enter", "next", "Finish", show=False)]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="text"):
            yield Markdown(_text(self.state))

    def on_mount(self) -> None:
        self.query_one("#back", Button).display = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return False  # hidden: what was applied stays applied
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        """Nothing to go back to after Apply."""
