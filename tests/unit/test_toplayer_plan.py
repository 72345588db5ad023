"""Homes are unpacked only where nothing is: hostile leftovers under /home are never followed.

``toplayer_plan.install`` with a real GNU tar against a scratch directory
standing for the partition's top level (no subvolumes to create here).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from wizard.toplayer.plan import ToplayerPlan, install
from wizard.toplayer.users import HomeDir


def _home_tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        d = tarfile.TarInfo(name)
        d.type, d.mode = tarfile.DIRTYPE, 0o700
        tf.addfile(d)
        data = b"# skel\n"
        f = tarfile.TarInfo(f"{name}/.profile")
        f.size = len(data)
        tf.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def _listing(root: Path) -> dict[str, bytes | str]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink()
                                             else "link" if p.is_symlink() else "dir")
            for p in sorted(root.rglob("*"))}


def test_new_home_is_unpacked_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    made = install(tmp_path, ToplayerPlan(homes=[HomeDir("ann", "/home/ann",
                                                         _home_tar("ann"))]))
    assert made == ["home /home/ann of ann"]
    assert _listing(tmp_path / "home") == {"ann": "dir", "ann/.profile": b"# skel\n"}


def test_existing_entries_and_symlinks_are_never_followed_or_replaced(tmp_path: Path) -> None:
    top, outside = tmp_path / "top", tmp_path / "outside"
    (top / "home").mkdir(parents=True)
    outside.mkdir()
    (outside / "keep").write_text("not the wizard's\n")
    (top / "home/eve").symlink_to(outside)            # a symlink where a home would go
    (top / "home/bob").mkdir()                        # a user's own home
    (top / "home/bob/notes").write_text("mine\n")
    (top / "home/ann").write_text("a file, not a home\n")
    before = _listing(tmp_path)
    homes = [HomeDir(n, f"/home/{n}", _home_tar(n)) for n in ("eve", "bob", "ann")]
    assert install(top, ToplayerPlan(homes=homes)) == []
    assert _listing(tmp_path) == before

    # /home itself a symlink (the subvolume replaced by hand): nothing written through it.
    (top / "home").rename(top / "home.aside")
    (top / "home").symlink_to(outside)
    before = _listing(tmp_path)
    assert install(top, ToplayerPlan(homes=[HomeDir("zed", "/home/zed",
                                                    _home_tar("zed"))])) == []
    assert _listing(tmp_path) == before
