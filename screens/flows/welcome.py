"""Welcome: what was found on this machine, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from screens.common.base import StepScreen, css
from wizard.boot.status import summary
from wizard.common.faults import message as fault_line
from wizard.disk.partitions import Partition
from wizard.flows.flow import Mode, Next, Step, WizardState
from wizard.settings.config import Settings

MODE_TEXT = {
    Mode.RECONFIGURE_TOPLAYER: "Reconfigure top layer (writes only the top layer; seconds)",
    Mode.SWITCH_IMAGE: "Switch image/tag",
    Mode.REBUILD_INITRAMFS: "Rebuild initramfs",
    Mode.REWRITE_BOOT_ENTRY: "Rewrite boot entry",
    Mode.UPDATE: "Update to what the tag is now (a build only for a new kernel)",
    Mode.ROLLBACK: "Roll back to the previous generation",
    Mode.NEW_MACHINE: "New machine: a disk, free space or an empty partition",
    Mode.FULL: "Full setup",
}
MACHINE_WIDE = (Mode.NEW_MACHINE, Mode.FULL)
"""Offered once, after every saved configuration's own modes (Full setup last)."""


class WelcomeScreen(StepScreen):
    """Lists saved configurations found on the btrfs partitions and offers the modes."""

    CSS_PATH = css("welcome")
    STEP = Step.WELCOME
    AUTO_FOCUS = "#modes"

    @dataclass
    class Scanned(Message):
        """The partitions were searched for saved configs."""

        found: list[tuple[str, Settings]]
        """(partition label, saved settings) pairs."""
        problems: list[str]
        """Configs that could not be read (one line each)."""
        statuses: dict[str, list[str]]
        """Per label: what boots and what is pending (``wizard.boot.status.summary``)."""

    found: reactive[list[tuple[str, Settings]] | None] = reactive(None, init=False)
    """Saved configs by partition label; None until the scan is done."""

    def compose_body(self) -> ComposeResult:
        yield Static("dockerboot-wizard boots this machine straight into a Docker image: "
                     "every boot starts from a fresh snapshot of the image plus your "
                     "per-machine top layer.", id="intro")
        yield Static("Looking for saved configurations…", id="found", markup=False)
        yield OptionList(id="modes")

    def on_mount(self) -> None:
        self.run_scan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="scan")
    def run_scan(self) -> None:
        with self.reporting("scan"):
            found, problems = self._saved_configs(self.services.partitions())
            self.post_message(self.Scanned(found, problems, self._statuses(found)))

    def _saved_configs(self, partitions: list[Partition]
                       ) -> tuple[list[tuple[str, Settings]], list[str]]:
        found: list[tuple[str, Settings]] = []
        problems: list[str] = []
        for partition in partitions:
            try:
                saved = self.services.saved_config(partition)
            except Exception as e:  # noqa: BLE001 — one bad partition must not hide the rest
                problems.append(f"{partition.label or partition.device}: {fault_line(e)}")
                continue
            if saved is not None:
                found.append((partition.label, saved))
        return found, problems

    def _statuses(self, found: list[tuple[str, Settings]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for label, saved in found:
            try:
                out[label] = summary(self.services.status(saved))[1:]
            except Exception as e:  # noqa: BLE001 — the status is a bonus: say why it is missing
                out[label] = [f"status unavailable: {fault_line(e)}"]
        return out

    @on(Scanned)
    def show_found(self, message: Scanned) -> None:
        self.found = message.found
        lines: list[str] = []
        for label, s in message.found:
            lines.append(f"Saved configuration on LABEL={label}: boots {s.image}"
                         + (f", hostname {s.hostname}" if s.hostname else ""))
            lines += [f"  {line}" for line in message.statuses.get(label, [])]
        lines = lines or ["No saved configuration found: set up a new machine on a disk, or "
                          "a full setup on a btrfs partition made by hand."]
        lines += [f"Unreadable config on {p}" for p in message.problems]
        self.query_one("#found", Static).update("\n".join(lines))
        modes = self.query_one("#modes", OptionList)
        modes.clear_options()
        for index, (label, _) in enumerate(message.found):
            prefix = f"{label}: " if len(message.found) > 1 else ""
            modes.add_options([Option(prefix + MODE_TEXT[mode], id=f"{index}:{mode.value}")
                               for mode in Mode if mode not in MACHINE_WIDE])
        modes.add_options([Option(MODE_TEXT[mode], id=f"-1:{mode.value}")
                           for mode in MACHINE_WIDE])
        ids = [modes.get_option_at_index(i).id for i in range(modes.option_count)]
        modes.highlighted = ids.index(self.wanted(bool(message.found)))
        modes.focus()

    def wanted(self, found: bool) -> str:
        """The option highlighted first: the mode of the state, else what suits the machine.

        Nothing saved and no partition chosen beforehand (``dockerboot-wizard
        sandbox`` chooses its own): a new machine most likely.
        """
        mode = self.state.mode
        if found and mode not in MACHINE_WIDE:
            return f"0:{mode.value}"
        if mode is Mode.NEW_MACHINE or (not found and self.state.settings is None):
            return f"-1:{Mode.NEW_MACHINE.value}"
        return f"0:{Mode.RECONFIGURE_TOPLAYER.value}" if found else f"-1:{Mode.FULL.value}"

    def work_ended(self, job: str) -> None:
        # The partitions could not be listed: a new machine and a full setup are still
        # offered (the partition step lists them again and says what is wrong).
        self.post_message(self.Scanned([], [], {}))

    def watch_found(self) -> None:
        self.update_nav()

    def can_next(self) -> bool:
        return self.found is not None

    def chosen_state(self, option_id: str) -> WizardState:
        index, _, mode = option_id.partition(":")
        found = self.found or []
        saved: Settings | None
        if int(index) >= 0:
            saved = found[int(index)][1]
        else:
            # Full setup starts from the saved values of the partition already
            # chosen (e.g. the sandbox's), or of the only configured one.
            current = self.state.settings
            matching = [s for label, s in found if current and label == current.label]
            saved = matching[0] if matching else (found[0][1] if len(found) == 1 and
                                                  current is None else None)
        if Mode(mode) is Mode.NEW_MACHINE:
            # A new partition: nothing saved on it; what was chosen for one before is kept.
            again = self.state.mode is Mode.NEW_MACHINE
            return replace(self.state, mode=Mode.NEW_MACHINE, saved=None,
                           settings=self.state.settings if again else None,
                           new_disk=self.state.new_disk if again else None)
        settings = saved if Mode(mode) is not Mode.FULL else (self.state.settings or saved)
        return replace(self.state, mode=Mode(mode), saved=saved, settings=settings,
                       new_disk=None)

    def next_state(self) -> WizardState:
        modes = self.query_one("#modes", OptionList)
        option = modes.get_option_at_index(modes.highlighted or 0)
        return self.chosen_state(option.id or "")

    @on(OptionList.OptionSelected, "#modes")
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.leave(Next(self.chosen_state(event.option.id or "")))
