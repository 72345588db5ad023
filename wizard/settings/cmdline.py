"""The kernel command line the boot entry passes (DESIGN §2, seed-compatible)."""

from __future__ import annotations

import shlex

from wizard.settings.config import Settings
from wizard.settings.kernel_options import merge_rootflags


def kernel_cmdline(settings: Settings) -> str:
    """Render the kernel parameters for ``settings``.

    The top layer lives on the same partition as the root; ``docker_image``
    is given explicitly so the entry says what it boots (it overrides the
    default baked into the initramfs).  ``settings.kernel_options`` come
    last so the user can append anything; their ``rootflags=`` options are
    merged into the generated one (subvol first), the reserved parameters
    are refused earlier by ``Settings.validate``.
    """
    rootflags, extra = merge_rootflags(settings.rwlayer, settings.kernel_options)
    params = [
        f"root=LABEL={settings.label}",
        rootflags,
        "rw",
        f"docker_path={settings.docker_path}",
        f"docker_image={settings.image}",
        f"toplayer=LABEL={settings.label}",
        f"toplayer_path={settings.toplayer_path}",
    ]
    if not settings.keep_previous_root:
        # Only when off: the hook keeps <rw>.previous by default, and the
        # entries of existing installs stay as they were.
        params.append("dockerboot.previous=0")
    return " ".join(params + ([extra] if extra else []))


def parse_cmdline(text: str) -> dict[str, str]:
    """Parse a kernel command line into ``{key: value}`` (bare flags map to "")."""
    out: dict[str, str] = {}
    for item in shlex.split(text):
        key, _, value = item.partition("=")
        out[key] = value
    return out
