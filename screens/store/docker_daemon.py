"""Docker: is the daemon reachable, on the btrfs driver, with its data-root on the partition?"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from screens.common.base import StepScreen, css
from wizard.common.errors import PartitionError
from wizard.flows.flow import Step, WizardState
from wizard.flows.services import DockerStatus


class DockerDaemonScreen(StepScreen):
    """The daemon's checks, each problem with its exact fix; Next only when all pass."""

    CSS_PATH = css("docker_daemon")
    STEP = Step.DOCKER
    BINDINGS = [Binding("r", "recheck", "Recheck")]

    @dataclass
    class Checked(Message):
        """The daemon was checked against the chosen partition."""

        status: DockerStatus

    status: reactive[DockerStatus | None] = reactive(None, init=False)
    """The last check's answer; None while checking."""

    def compose_body(self) -> ComposeResult:
        label = self.state.settings.label if self.state.settings else "?"
        yield Static(f"Checking the Docker daemon for partition LABEL={label}…", id="intro")
        yield Static("", id="checks")
        yield Static("", id="problem")

    def on_mount(self) -> None:
        self.run_check()

    def action_recheck(self) -> None:
        self.status = None
        self.clear_error()
        self.query_one("#checks", Static).update("Checking…")
        self.query_one("#problem", Static).update("")
        self.run_check()

    def watch_status(self) -> None:
        self.update_nav()

    def work_ended(self, job: str) -> None:
        # The check itself failed: nothing is "checking" any more; r tries again.
        self.query_one("#checks", Static).update("Not checked (r checks again).")

    @work(thread=True, exclusive=True, exit_on_error=False, group="check")
    def run_check(self) -> None:
        settings = self.state.settings
        label = settings.label if settings else ""
        with self.reporting("check"):
            part = next((p for p in self.services.partitions()
                         if label and p.label == label), None)
            if part is None:
                status = DockerStatus(reachable=False, problem=PartitionError(
                    f"no btrfs partition labelled {label or '(none chosen)'} is present",
                    "plug the disk in, or go back (b) and pick a partition"))
            else:
                status = self.services.docker_status(part)
            self.post_message(self.Checked(status))

    @on(Checked)
    def checked(self, message: Checked) -> None:
        status = self.status = message.status

        def mark(ok: bool) -> str:
            return "[green]✔[/]" if ok else "[red]✘[/]"

        lines = [f"{mark(status.reachable)} daemon reachable"]
        if status.reachable:
            lines.append(f"{mark(status.driver == 'btrfs')} storage driver: "
                         f"{escape(status.driver or 'unknown')}")
            lines.append(f"{mark(status.docker_path is not None)} data-root: "
                         f"{escape(status.data_root or 'unknown')}"
                         + (f" (docker_path={status.docker_path})" if status.docker_path
                            else ""))
        self.query_one("#checks", Static).update("\n".join(lines))
        problem = self.query_one("#problem", Static)
        if status.problem:
            fix = status.problem.fix
            problem.update(f"[b]Problem:[/b] {escape(status.problem.problem)}"
                           + (f"\n[b]Fix:[/b] {escape(fix)}" if fix else "")
                           + "\nThen press r to check again.")
            problem.add_class("error")
        else:
            problem.update("All checks passed: images on this daemon can boot.")
            problem.remove_class("error")

    def can_next(self) -> bool:
        status = self.status
        return status is not None and status.problem is None and status.docker_path is not None

    def next_state(self) -> WizardState:
        # Next is allowed only then (can_next).
        assert self.status is not None and self.status.docker_path is not None
        assert self.state.settings is not None
        return replace(self.state,
                       settings=replace(self.state.settings, docker_path=self.status.docker_path))
