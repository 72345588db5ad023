"""The install of what the TUI's Disk step chose, as ``RealServices`` runs it.

``wizard.flows`` sits below ``install`` (``flows`` may not import it), so the
entry point (``screens/app.py``) hands these two functions to
``RealServices``, as it hands it the try's work.  They are ``install``'s own
plan and flow with the sizes and rules of ``dockerboot-wizard install``: the
disk boots this machine (its UEFI is checked) or goes to another one
(``Target.here``), the image comes from this machine's docker or a registry
(no archive in the TUI).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import replace

from wizard.common.events import Event
from wizard.disk import layout
from wizard.disk.disks import Target
from wizard.flows import changes
from wizard.install import flow, sizes


def plan(target: Target) -> tuple[layout.Disk, layout.DiskPlan | None]:
    """The disk as it is now and install's plan for ``target`` (None: made by an earlier run).

    Raises:
        PartitionError: the one-line refusal (``install.flow.plan``).

    """
    return flow.plan(target, need=sizes.need(), boot_bytes=sizes.BOOT_BYTES)


def run(target: Target, disk_plan: layout.DiskPlan | None, request: changes.ApplyRequest,
        cancel: threading.Event) -> Generator[Event, None, None]:
    """``install.flow.install`` of ``request`` on ``target``, carrying out ``disk_plan``.

    The settings' ESP is the target's (as ``install --esp``), never a directory
    a saved configuration named.

    Raises:
        WizardError: a step failed (one line); ``Cancelled`` when ``cancel`` is set.

    """
    request = replace(request, settings=replace(request.settings, esp=None))
    request.settings.validate()  # before the disk is touched, as the CLI does
    return flow.install(target, disk_plan, request, cancel=cancel)
