"""The user's extra kernel options: what the wizard refuses and what it merges.

The boot hook trusts the command line: a ``rootflags=subvol=`` naming
docker's data-root makes it replace the store with a snapshot, and a second
``rootflags=`` silently replaces the generated one (the last one wins).  So
the parameters the wizard generates itself are refused in the user's extra
options, each with one line naming the setting that does it, and the other
``rootflags=`` options (``compress=zstd``, …) are merged into the generated
``rootflags=subvol=<rw>``.
"""

from __future__ import annotations

import re

from wizard.common.errors import ConfigError

RESERVED: dict[str, str] = {
    "root": "--label / the saved label",
    "docker_path": "the daemon's data-root, found on the partition",
    "docker_image": "--image / the saved image",
    "toplayer": "--label: the top layer lives on the same partition",
    "toplayerflags": "the wizard: the top layer is read from the partition's top level",
    "toplayerfstype": "the wizard: the top layer is on the btrfs partition",
    "toplayer_path": "toplayer_path in the saved config",
    "dockerboot.previous": "--no-keep-previous-root / keep_previous_root in the saved config",
}
"""Parameters the wizard generates -> the setting that does it."""
SUBVOL_SETTING = "from rwlayer in the saved config, default docker_rwlayer"
"""What sets ``rootflags=subvol=``."""
NAMESPACE = "dockerboot."
"""New parameters of the wizard are namespaced; the user may not set them…"""
USER_SETTABLE = frozenset({"dockerboot.tries", "dockerboot.state"})
"""…except the boot hook's own settings (boot assessment: tries before a fallback,
where its state lives), which the wizard never generates."""
_SUBVOL_OPTIONS = ("subvol", "subvolid")
# rEFInd's options "…" has no escape: a quote or a control character ends or breaks it.
_UNSAFE = re.compile(r'["\x00-\x1f\x7f]')


def _fix(param: str) -> str:
    return f"remove {param} from --kernel-options (or kernel_options in the saved config)"


def split_options(options: str) -> list[str]:
    """The user's kernel options as words (the kernel splits at blanks)."""
    return options.split()


def check_kernel_options(options: str) -> None:
    """Raise ``ConfigError`` (one line) for a reserved or unsafe extra kernel option.

    Refused: a double quote or control character (the boot entry cannot carry
    it), ``root=``, ``rootflags=`` with ``subvol=``/``subvolid=``,
    ``docker_path=``, ``docker_image=``, ``toplayer=``, ``toplayerflags=``,
    ``toplayerfstype=``, ``toplayer_path=`` and any ``dockerboot.*`` but the
    hook's own settings in ``USER_SETTABLE``.
    """
    bad = _UNSAFE.search(options.replace("\t", " "))  # a tab is a blank to the kernel
    if bad:
        raise ConfigError(f"kernel options {options!r} contain {bad.group()!r}, which the "
                          "rEFInd entry cannot carry",
                          "remove double quotes, line breaks and control characters")
    for word in split_options(options):
        key, eq, value = word.partition("=")
        if key in RESERVED:
            raise ConfigError(f"{key}= is set by the wizard ({RESERVED[key]})", _fix(word))
        if key.startswith(NAMESPACE) and key not in USER_SETTABLE:
            raise ConfigError(f"{key} is reserved for the wizard's own dockerboot.* "
                              "parameters", _fix(key))
        if key == "rootflags":
            names = [opt.partition("=")[0] for opt in value.split(",")]
            hit = next((n for n in names if n in _SUBVOL_OPTIONS), None)
            if hit:
                raise ConfigError(f"rootflags={hit}= is set by the wizard ({SUBVOL_SETTING})",
                                  f"remove {hit}= from rootflags= in --kernel-options (or "
                                  "kernel_options in the saved config); other rootflags "
                                  "options are merged into the wizard's")
            if not eq or not value or "" in value.split(","):
                raise ConfigError(f"kernel option {word!r} has an empty mount option",
                                  "give rootflags=OPT[,OPT…], e.g. rootflags=compress=zstd")


def merge_rootflags(generated_subvol: str, options: str) -> tuple[str, str]:
    """``("rootflags=subvol=<rw>,<user's options>", the other options)``.

    The user's ``rootflags=`` words are taken out of ``options`` and their mount
    options appended to the generated one, subvol first, so one ``rootflags=``
    reaches the kernel and it still names the rw layer.
    """
    flags = [f"subvol={generated_subvol}"]
    words = split_options(options)
    if not any(w.partition("=")[0] == "rootflags" for w in words):
        return "rootflags=" + flags[0], options.strip()  # the user's spacing kept
    rest = []
    for word in words:
        key, _, value = word.partition("=")
        if key == "rootflags":
            flags += [opt for opt in value.split(",") if opt and opt not in flags]
        else:
            rest.append(word)
    return "rootflags=" + ",".join(flags), " ".join(rest)
