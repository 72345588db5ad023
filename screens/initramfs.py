"""Initramfs step: build kernel + initramfs inside a container of the image, staged.

Nothing is installed here: the build lands in a staged directory on the
partition and Review installs it, so Cancel (or leaving the wizard) keeps
the previous kernel/initramfs in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Static
from textual.worker import get_current_worker

from screens.worklog import Relayed, ShowsWork, WorkLog, relay
from wizard.errors import Cancelled
from wizard.faults import message as fault_line
from wizard.flow import Back, Next, Outcome, Quit, WizardState
from wizard.initramfs import BuildTarget, InitramfsBuildError
from wizard.resources import asset
from wizard.services import Services


class InitramfsScreen(ShowsWork, Screen[Outcome]):
    """Detect the generator, run the staged build with a live log, Next on success."""

    CSS_PATH = str(asset("tcss/initramfs.tcss"))
    BINDINGS = [
        Binding("r", "build", "Build"),
        Binding("escape", "cancel", "Cancel build"),
        Binding("n", "next", "Next"),
        Binding("b", "back", "Back"),
        Binding("q", "quit_wizard", "Quit"),
    ]

    @dataclass
    class Detected(Message):
        """The generator and kernel were found in the image."""

        target: BuildTarget

    @dataclass
    class Built(Message):
        """The staged build finished."""

        staged: str
        detail: str

    @dataclass
    class Failed(Message):
        """Detection or build failed, or was cancelled."""

        problem: str
        cancelled: bool = False

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__()
        self.state = state
        self.services = services
        self.building = False
        self.work_log = WorkLog(id="work")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Looking for the initramfs generator and kernel in the image…",
                     id="target")
        yield Static("", id="status")
        yield self.work_log
        with Horizontal(id="buttons"):
            yield Button("Back", id="back")
            yield Button("Build (r)", id="build")
            yield Button("Cancel (esc)", id="cancel", variant="warning", disabled=True)
            yield Button("Next", id="next", variant="primary",
                         disabled=self.state.staged_initramfs is None)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Initramfs"
        if self.state.staged_initramfs is not None:
            self._status("Already built in this session (r rebuilds).")
        self.detect()

    # --- workers: only post messages ---

    @work(thread=True, exclusive=True, exit_on_error=False, group="initramfs")
    def detect(self) -> None:
        assert self.state.settings is not None
        try:
            target = self.services.detect_initramfs(self.state.settings.image)
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e)))
            return
        self.post_message(self.Detected(target))

    @work(thread=True, exclusive=True, exit_on_error=False, group="initramfs")
    def build(self) -> None:
        cancel = get_current_worker().cancelled_event
        seen = Relayed()
        try:
            staged = relay(self.services.build_initramfs(self.state, cancel=cancel), self,
                           seen=seen)
        except Cancelled:
            self.post_message(self.Failed("Build cancelled: the previous kernel and "
                                          "initramfs are untouched.", cancelled=True))
        except InitramfsBuildError as e:
            for line in e.log_tail[-5:]:
                self.post_message(WorkLog.Line(line))
            self.post_message(self.Failed(str(e)))
        except Exception as e:  # noqa: BLE001 — any fault is shown, never a stuck screen
            self.post_message(self.Failed(fault_line(e)))
        else:
            self.post_message(self.Built(str(staged), seen.last_done))

    # --- message handlers: the only code touching widgets ---

    def on_initramfs_screen_detected(self, message: Detected) -> None:
        t = message.target
        self.query_one("#target", Static).update(
            f"Generator: {t.generator}    kernel: {t.kver} ({t.kernel_path})")
        if self.state.staged_initramfs is None:
            self.action_build()

    def show_progress(self, label: str) -> None:
        self._status(label)

    def on_initramfs_screen_built(self, message: Built) -> None:
        self._set_building(False)
        self.state = self.state.with_changes(staged_initramfs=message.staged)
        self.work_log.finish()
        self._status(f"Built (installed at Review): {message.detail}")
        self.query_one("#next", Button).disabled = False
        self.query_one("#next", Button).focus()

    def on_initramfs_screen_failed(self, message: Failed) -> None:
        self._set_building(False)
        self.query_one("#status", Static).set_class(not message.cancelled, "error")
        self._status(message.problem)
        self.query_one("#next", Button).disabled = self.state.staged_initramfs is None

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    def _set_building(self, building: bool) -> None:
        self.building = building
        self.query_one("#cancel", Button).disabled = not building
        self.query_one("#build", Button).disabled = building
        self.refresh_bindings()

    # --- actions ---

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next":
            return not self.building and self.state.staged_initramfs is not None
        if action == "cancel":
            return self.building
        if action == "build":
            return not self.building
        return True

    def action_build(self) -> None:
        if self.building:
            return
        self._set_building(True)
        self.query_one("#status", Static).remove_class("error")
        self.work_log.reset()
        self.query_one("#next", Button).disabled = True
        self.state = self.state.with_changes(staged_initramfs=None)
        self._status("Building…")
        self.build()

    def action_cancel(self) -> None:
        if self.building:
            self._status("Cancelling…")
            self.workers.cancel_group(self, "initramfs")

    def action_next(self) -> None:
        if not self.building and self.state.staged_initramfs is not None:
            self.dismiss(Next(self.state))

    def action_back(self) -> None:
        self.workers.cancel_group(self, "initramfs")
        self.dismiss(Back())

    def action_quit_wizard(self) -> None:
        self.workers.cancel_group(self, "initramfs")
        self.dismiss(Quit())

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"back": self.action_back, "build": self.action_build,
                   "cancel": self.action_cancel, "next": self.action_next}
        actions[event.button.id or ""]()
