"""``scratch.safe_remove`` against hostile leftovers: it deletes only what the try made.

The try's workdir holds its scratch disk, kernel, initramfs, serial log and
OVMF variables.  Whatever someone (or something) put there in their place —
a symlink to a file elsewhere, a hard link, a directory, a mount — or a
workdir swapped for a link to another directory, a path outside the workdir
in the list: each is left in place, said in one line, and nothing outside
the workdir changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wizard.common.mountinfo import MountEntry
from wizard.trial import scratch

NAMES = ("scratch.img", "vmlinuz", "initrd.img", "serial.log", "serial.vars.fd")


def make_try(base: Path) -> tuple[Path, list[Path], tuple[int, int]]:
    """A workdir as ``run.prepare`` makes it: its files, its list and its identity."""
    work = base / "dockerboot-try-x"
    work.mkdir()
    made = [work / name for name in NAMES]
    for path in made:
        path.write_bytes(b"try's own " + path.name.encode())
    return work, made, scratch.identity(work)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A directory of someone else's files that must survive every case."""
    other = tmp_path / "someone-else"
    other.mkdir()
    for name in (*NAMES, "precious"):
        (other / name).write_text(f"not the try's {name}\n")
    return other


def untouched(victim: Path) -> bool:
    return all((victim / name).read_text() == f"not the try's {name}\n"
               for name in (*NAMES, "precious"))


def test_its_own_files_and_the_empty_workdir_are_removed(tmp_path, victim):
    work, made, ident = make_try(tmp_path)
    made.append(work / "never-made.fd")  # listed, never made: nothing to say
    assert scratch.safe_remove(work, made, ident) == []
    assert not work.exists() and untouched(victim)


@pytest.mark.parametrize("target", ["precious", "."])
def test_a_symlink_planted_for_a_file_it_made_is_left_and_its_target_kept(
        tmp_path, victim, target):
    work, made, ident = make_try(tmp_path)
    (work / "scratch.img").unlink()
    (work / "scratch.img").symlink_to(victim / target)
    left = scratch.safe_remove(work, made, ident)
    assert left == [f"{work / 'scratch.img'}: left in place, it is not a file the try made "
                    "(a link or a directory)"]
    assert (work / "scratch.img").is_symlink() and untouched(victim)
    assert sorted(p.name for p in work.iterdir()) == ["scratch.img"]  # its own files went


def test_a_hard_link_or_a_directory_in_place_of_its_files_is_left(tmp_path, victim):
    work, made, ident = make_try(tmp_path)
    (work / "vmlinuz").unlink()
    os.link(victim / "precious", work / "vmlinuz")
    (work / "initrd.img").unlink()
    (work / "initrd.img").mkdir()
    (work / "initrd.img" / "inside").write_text("kept\n")
    left = scratch.safe_remove(work, made, ident)
    assert len(left) == 2 and all("left in place, it is not a file the try made" in line
                                  for line in left)
    assert untouched(victim) and (work / "initrd.img" / "inside").read_text() == "kept\n"
    assert (work / "vmlinuz").exists() and work.exists()


def test_a_workdir_swapped_for_a_link_to_another_directory_changes_nothing_there(
        tmp_path, victim):
    work, made, ident = make_try(tmp_path)
    moved = tmp_path / "moved-away"
    work.rename(moved)
    work.symlink_to(victim)
    left = scratch.safe_remove(work, made, ident)
    assert len(left) == 1 and left[0].startswith(f"{work}: left in place, it is not the try's "
                                                 "directory"), left
    assert untouched(victim) and work.is_symlink()
    # Without the identity (an older caller) the link is refused all the same.
    assert scratch.safe_remove(work, made) == left
    assert untouched(victim)


def test_a_workdir_replaced_by_another_directory_is_left_whole(tmp_path, victim):
    work, made, ident = make_try(tmp_path)
    work.rename(tmp_path / "moved-away")
    victim.rename(work)  # someone else's directory now has the workdir's name
    assert scratch.safe_remove(work, made, ident) == [
        f"{work}: left in place, it is not the directory the try made"]
    assert untouched(work)


def test_a_file_it_did_not_list_stays_and_so_does_the_workdir(tmp_path):
    work, made, ident = make_try(tmp_path)
    (work / "notes.txt").write_text("mine\n")
    assert scratch.safe_remove(work, made, ident) == []
    assert [p.name for p in work.iterdir()] == ["notes.txt"]
    assert (work / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("outside", ["{victim}/precious", "{work}/../someone-else/precious",
                                     "{work}/sub/../../someone-else/precious",
                                     "{work}/..", "{work}"])
def test_paths_outside_the_workdir_are_refused(tmp_path, victim, outside):
    work, made, ident = make_try(tmp_path)
    path = Path(outside.replace("{victim}", str(victim)).replace("{work}", str(work)))
    left = scratch.safe_remove(work, [path, *made], ident)
    assert left == [f"{path}: left in place, it is not in {work}"]
    assert untouched(victim) and tmp_path.is_dir()
    assert not any(work.iterdir())  # its own files went; the dir stays: a line was said


def test_a_mount_point_in_its_place_is_left(tmp_path, monkeypatch):
    work, made, ident = make_try(tmp_path)
    entry = MountEntry(1, 0, (0, 1), "/", str(work / "scratch.img"), "rw", "ext4", "x", "")
    monkeypatch.setattr(scratch.mountinfo, "read_mountinfo", lambda: [entry])
    assert scratch.safe_remove(work, made, ident) == [
        f"{work / 'scratch.img'}: left in place, it is still mounted — unmount it by hand"]
    assert (work / "scratch.img").read_bytes() == b"try's own scratch.img"


def test_a_missing_workdir_is_nothing_to_do(tmp_path):
    assert scratch.safe_remove(tmp_path / "gone", [tmp_path / "gone" / "x"]) == []
