"""Real components for integration and e2e tests (DESIGN §7).

The machinery now ships in the product (``wizard.sandbox_parts``, used by
``dockerboot-wizard sandbox``); this module keeps the test lab's names.
Everything runs as root against the real kernel: loop devices, btrfs,
systemd-udevd, a private dockerd per disk.
"""

from __future__ import annotations

from wizard.sandbox_parts import (
    UDEVD,
    CommandError,
    Disk,
    Dockerd,
    attach_disk,
    dockerd,
    ensure_udevd,
    loop_disk,
    mounted,
    rootfs_tarball,
    run,
    udev_settle,
    unique_label,
)

__all__ = ["UDEVD", "CommandError", "Disk", "Dockerd", "attach_disk", "dockerd", "ensure_udevd",
           "loop_disk", "mounted", "rootfs_tarball", "run", "udev_settle", "unique_label"]
