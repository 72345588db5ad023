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


STATE_KEY = "dockerboot.state"
_STATE_USE = ("use a directory of its own below the top level, e.g. "
              "dockerboot.state=boot_docker/state")
_STATE_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
"""What ``dockerboot-update`` accepts in ``update.conf``'s ``state_dir=``."""


def state_option(options: str) -> str | None:
    """The ``dockerboot.state=`` value the hook reads from ``options``, or None.

    As the hook's ``_db_arg``: words split at blanks, the last one wins, a
    bare ``dockerboot.state`` (no ``=``) is no value.
    """
    value = None
    for word in split_options(options):
        key, eq, rest = word.partition("=")
        if key == STATE_KEY and eq:
            value = rest
    return value


def _norm(path: str) -> str:
    return "/".join(p for p in path.split("/") if p not in ("", "."))


def _overlap(a: str, b: str) -> bool:
    return not b or a == b or a.startswith(b + "/") or b.startswith(a + "/")


def check_state_dir(value: str, *, docker_path: str, rwlayer: str, boot_dir: str,
                    toplayer_path: str) -> None:
    """Raise ``ConfigError`` (one line) for a ``dockerboot.state=`` the boot cannot use.

    Refused like the hook's ``_db_assess_args``: a ``..`` component, the top
    level, a name that is, holds or lies inside docker's data-root or the rw
    layer.  Also names the hook's boot trips on later (its working names
    ``<rw>.new``/``.previous``/``.old``, the top layer, ``boot_dir`` itself
    or its ``gen/``), characters ``dockerboot-update`` refuses, and any
    spelling the hook would normalise (``./``, ``//``, a leading or trailing
    ``/``): the wizard reads the value as written, so it must be the
    hook's own form — nothing is normalised silently.
    """
    opt = f"{STATE_KEY}={value}"
    parts = value.split("/")
    if ".." in parts:
        raise ConfigError(f"{opt} contains ..", _STATE_USE)
    norm = _norm(value)
    if not norm:
        raise ConfigError(f"{opt} names the partition's top level", _STATE_USE)
    if norm != value:
        raise ConfigError(f"{opt} is not a plain relative path (the hook reads it as {norm})",
                          f"write {STATE_KEY}={norm}")
    if not _STATE_CHARS.fullmatch(value):
        raise ConfigError(f"{opt} has characters other than letters, digits and ._/-",
                          _STATE_USE)
    rw = _norm(rwlayer)
    taken = [(_norm(docker_path), "docker's data-root"), (rw, "the rw layer")]
    taken += [(f"{rw}.{s}", f"the hook's {rw}.{s}") for s in ("new", "old", "previous")]
    taken += [(_norm(toplayer_path), "the top layer"),
              (_norm(boot_dir) + "/gen", "the generations"),
              # The hook's own name, whatever boot_dir is (wizard/boot/roots.py).
              ("boot_docker/roots", "dockerboot's copies of the fallback images")]
    for other, what in taken:
        if _overlap(value, other):
            raise ConfigError(f"{opt} is, holds or lies inside {what} ({other})", _STATE_USE)
    boot = _norm(boot_dir)
    if value == boot or boot.startswith(value + "/"):
        raise ConfigError(f"{opt} is or holds {boot_dir} (kernels, initramfs, config)",
                          _STATE_USE)


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
