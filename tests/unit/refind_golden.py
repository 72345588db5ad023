"""What the rEFInd tests share: the settings they render and the golden files."""

from __future__ import annotations

from pathlib import Path

from wizard.settings.config import Settings

DATA = Path(__file__).parent / "data" / "refind"
SETTINGS = Settings(label="linux", image="registry.example.com/me/desktop:2024-06")


def golden(name: str) -> str:
    """The golden file ``name`` as it is: bytes decoded, not read_text()
    (universal newlines would hide CR bytes)."""
    return (DATA / name).read_bytes().decode()
