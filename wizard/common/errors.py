"""Error types of the core.

Every error carries one line saying what is wrong and one saying how to fix
it; the CLI prints ``str(error)`` as a single line and exits non-zero.  The
core never exits the process itself.
"""

from __future__ import annotations


class WizardError(Exception):
    """A problem the user can fix; ``str()`` is one line: problem, then fix."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


class NotRootError(WizardError):
    """The operation needs root."""


class PartitionError(WizardError):
    """No such btrfs partition, or it cannot be mounted."""


class DockerError(WizardError):
    """The Docker daemon is unreachable or set up in a way the boot path cannot use."""


class ImageError(WizardError):
    """The image or tag does not exist or cannot be resolved to a subvolume."""


class ToplayerError(WizardError):
    """The top layer cannot be written (bad hostname, user creation failed, …)."""


class InitramfsError(WizardError):
    """The image lacks what the initramfs needs, or the generator failed."""


class BootloaderError(WizardError):
    """No refind.conf found, or it cannot be edited safely."""


class ConfigError(WizardError):
    """The saved config file is missing, unreadable or invalid."""


class Cancelled(WizardError):
    """The user cancelled long-running work; nothing was changed."""


class SandboxError(WizardError):
    """The disposable sandbox (loop disk, private dockerd, sample image, QEMU) failed."""
