"""Locate the files shipped in ``assets/`` (hook core, adapters, build script, .tcss).

The wheel maps the repository's ``assets/`` to ``wizard/_assets`` (see
``pyproject.toml``), but an editable install ignores that remap and imports
``wizard`` straight from the repository, so both places are tried.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_REPO_ASSETS = Path(__file__).resolve().parents[2] / "assets"


def assets_dir() -> Path:
    """The directory holding the shipped assets.

    Returns:
        ``wizard/_assets`` inside an installed wheel, else ``<repo>/assets``.

    Raises:
        FileNotFoundError: neither location exists (a broken install).

    """
    packaged = Path(str(files("wizard") / "_assets"))
    if packaged.is_dir():
        return packaged
    if _REPO_ASSETS.is_dir():
        return _REPO_ASSETS
    raise FileNotFoundError(f"no assets directory at {packaged} or {_REPO_ASSETS}")


def asset(rel: str) -> Path:
    """Path of one shipped asset, e.g. ``asset("build-initramfs.sh")``.

    Args:
        rel: path relative to the assets directory.

    Returns:
        The first existing of ``wizard/_assets/<rel>`` and ``<repo>/assets/<rel>``.

    Raises:
        FileNotFoundError: the asset is in neither place.

    """
    candidates = [Path(str(files("wizard") / "_assets" / rel)), _REPO_ASSETS / rel]
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(map(str, candidates))
    raise FileNotFoundError(f"asset {rel!r} not found (looked in {looked})")
