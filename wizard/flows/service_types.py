"""What some ``Services`` calls return: plain data the screens show."""

from __future__ import annotations

from dataclasses import dataclass

from wizard.common.errors import WizardError


@dataclass(frozen=True)
class DockerStatus:
    """What the Docker step shows for a partition."""

    reachable: bool
    """Whether the daemon answered."""
    driver: str = ""
    """Storage driver name (``btrfs`` is the only one that boots)."""
    data_root: str = ""
    """The daemon's data-root."""
    docker_path: str | None = None
    """Data-root relative to the partition's top level, when it is on the partition."""
    problem: WizardError | None = None
    """What is wrong (problem and fix), or None when all is well."""


@dataclass(frozen=True)
class Environment:
    """Preconditions checked before the first screen."""

    is_root: bool
    """Running as root."""
    problem: WizardError | None
    """What blocks the wizard entirely (not root, no btrfs, …) with its fix, or None."""
