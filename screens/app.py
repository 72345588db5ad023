"""Entry point of ``dockerboot-wizard``.

With a command (``apply``, ``partitions``, ``images``, ``--help``) it runs the
headless CLI without importing Textual, so scripts start fast; without
arguments it opens the interactive wizard.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the docker SDK behind wizard.flows.services costs ~0.1 s: not for --help
    import threading
    from collections.abc import Generator

    from wizard.common.events import Event
    from wizard.disk.disks import Target
    from wizard.disk.layout import Disk, DiskPlan
    from wizard.flows.changes import ApplyRequest
    from wizard.flows.flow import WizardState
    from wizard.flows.services import Services


def run_tui(services: Services | None = None, *, state: WizardState | None = None) -> int:
    """Open the wizard over ``services`` (the real core by default); return the exit code.

    ``state`` pre-fills the wizard (``dockerboot-wizard sandbox`` passes its
    partition, sample image and ESP directory).
    """
    from screens.wizard_app import make_app  # Textual is imported only here
    from wizard.flows.services import RealServices

    app = make_app(services or RealServices(try_boot=_try_boot, plan_install=_plan_install,
                                            run_install=_run_install), state=state)
    app.run()
    return app.return_code or 0


def _try_boot(label: str, cancel: threading.Event) -> Generator[Event, None, dict[str, Any]]:
    """The Done screen's Try in a VM: ``wizard.trial`` sits above ``flows``, so it is handed in
    from here (imported on first use: QEMU's helpers are not for the first screen)."""
    from wizard.trial.run import by_label

    return by_label(label, cancel)


def _plan_install(target: Target) -> tuple[Disk, DiskPlan | None]:
    """The New machine route's plan: ``wizard.install`` sits above ``flows``, so it is handed
    in from here, as the try is."""
    from wizard.install.chosen import plan

    return plan(target)


def _run_install(target: Target, disk_plan: DiskPlan | None, request: ApplyRequest,
                 cancel: threading.Event) -> Generator[Event, None, None]:
    """The New machine route's install (``wizard.install.chosen.run``), handed in likewise."""
    from wizard.install.chosen import run

    return run(target, disk_plan, request, cancel)


def main() -> None:
    """Dispatch: arguments go to the headless CLI, none opens the TUI."""
    argv = sys.argv[1:]
    if argv:
        from wizard.cli.main import main as cli_main

        sys.exit(cli_main(argv, open_tui=lambda state: run_tui(state=state)))
    sys.exit(run_tui())


if __name__ == "__main__":
    main()
