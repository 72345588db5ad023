"""systemd-boot's entries and kernel copies on the ESP (wizard.loaders.systemd_boot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizard.common.errors import BootloaderError
from wizard.loaders import esp_files, esp_plan, systemd_boot

LABEL = "lab disk"  # a blank: not allowed in an entry's name or a FAT path as is
TOK = "lab_disk"


def esp_with_sdboot(tmp_path: Path, loader_conf: str = "#timeout 3\n") -> Path:
    esp = tmp_path / "esp"
    (esp / "EFI/systemd").mkdir(parents=True)
    (esp / "EFI/systemd/systemd-bootx64.efi").write_bytes(b"MZ sd")
    (esp / "loader/entries").mkdir(parents=True)
    (esp / "loader/loader.conf").write_text(loader_conf)
    (esp / "loader/entries/debian-6.1.conf").write_text("title Debian\nlinux /vmlinuz\n")
    return esp


def gen(tmp_path: Path, n: int, built: bool = True) -> systemd_boot.BootEntry:
    d = tmp_path / "top/boot_docker/gen" / str(n)
    d.mkdir(parents=True, exist_ok=True)
    if built:
        (d / "vmlinuz").write_bytes(b"kernel %d" % n)
        (d / "initrd.img").write_bytes(b"initrd %d" % n)
    return systemd_boot.BootEntry(n, f"Docker image a:b ({n})", d / "vmlinuz", d / "initrd.img",
                                  f"root=LABEL=x dockerboot.generation={n}")


def apply(esp: Path, entries: list[systemd_boot.BootEntry], counting: bool = True,
          choice: str = "") -> list[str]:
    writes, removes = systemd_boot.plan_entries(esp, LABEL, entries, counting=counting)
    conf = systemd_boot.plan_loader_conf(esp, LABEL, choice)
    plan = esp_plan.ChainPlan(esp, writes, [], "", conf, removes, loader="systemd-boot")
    return list(esp_plan.write_chain(plan))


def test_found_only_where_it_is_installed(tmp_path: Path) -> None:
    assert systemd_boot.find(esp_with_sdboot(tmp_path)) is not None
    empty = tmp_path / "empty"
    (empty / "EFI/BOOT").mkdir(parents=True)
    assert systemd_boot.find(empty) is None


@pytest.mark.parametrize(("name", "parsed"), [
    ("dockerboot-x-2.conf", ("dockerboot-x-2", None, 0)),
    ("dockerboot-x-2+3.conf", ("dockerboot-x-2", 3, 0)),
    ("dockerboot-x-2+0-3.conf", ("dockerboot-x-2", 0, 3)),
    ("debian-6.1+2-1.conf", ("debian-6.1", 2, 1)),
])
def test_counters_are_read_from_the_name(name: str, parsed: tuple) -> None:
    assert systemd_boot.counter(name) == parsed


def test_a_new_generation_is_counted_copied_and_the_old_ones_leave(tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    apply(esp, [gen(tmp_path, 1)])
    assert systemd_boot.ours(esp, LABEL) == {1: f"dockerboot-{TOK}-1.conf"}  # nothing to count
    apply(esp, [gen(tmp_path, 2), gen(tmp_path, 1)])
    assert systemd_boot.ours(esp, LABEL) == {1: f"dockerboot-{TOK}-1.conf",
                                             2: f"dockerboot-{TOK}-2+3.conf"}
    entry = (esp / f"loader/entries/dockerboot-{TOK}-2+3.conf").read_text()
    assert f"linux /EFI/dockerboot/{TOK}/2/vmlinuz\n" in entry and "version 2\n" in entry
    assert (esp / f"EFI/dockerboot/{TOK}/2/initrd.img").read_bytes() == b"initrd 2"
    # systemd-boot counted one try: a re-apply keeps the name, and so the count.
    entries = esp / "loader/entries"
    (entries / f"dockerboot-{TOK}-2+3.conf").rename(entries / f"dockerboot-{TOK}-2+2-1.conf")
    assert apply(esp, [gen(tmp_path, 2), gen(tmp_path, 1)]) == []
    # Generation 3: generation 1's entry and copies go, theirs stays.
    lines = apply(esp, [gen(tmp_path, 3), gen(tmp_path, 2)])
    assert systemd_boot.ours(esp, LABEL) == {2: f"dockerboot-{TOK}-2+2-1.conf",
                                             3: f"dockerboot-{TOK}-3+3.conf"}
    assert not (esp / f"EFI/dockerboot/{TOK}/1").exists()
    assert any(line.startswith("removed ") for line in lines)
    assert (entries / "debian-6.1.conf").read_text() == "title Debian\nlinux /vmlinuz\n"
    assert f"EFI/dockerboot/{TOK}/1/vmlinuz" not in esp_files.read_owned(esp)


def test_a_generation_built_by_the_same_apply_is_copied_at_write_time(tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    new = gen(tmp_path, 1, built=False)
    writes, _ = systemd_boot.plan_entries(esp, LABEL, [new], counting=True)
    assert [w.source for w in writes if w.source] == [new.kernel, new.initrd]
    new.kernel.write_bytes(b"built later")
    new.initrd.write_bytes(b"initrd later")
    list(esp_plan.write_chain(esp_plan.ChainPlan(esp, writes, [], "", None, [],
                                                 loader="systemd-boot")))
    assert (esp / f"EFI/dockerboot/{TOK}/1/vmlinuz").read_bytes() == b"built later"
    assert esp_files.digest(b"built later") in esp_files.read_owned(esp)[
        f"EFI/dockerboot/{TOK}/1/vmlinuz"]


def test_a_copy_the_wizard_did_not_write_is_refused_and_kept(tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    theirs = esp / f"EFI/dockerboot/{TOK}/1/vmlinuz"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"someone's")
    with pytest.raises(BootloaderError, match="not written by dockerboot-wizard"):
        systemd_boot.plan_entries(esp, LABEL, [gen(tmp_path, 1)], counting=True)
    assert theirs.read_bytes() == b"someone's"


def test_a_copy_changed_since_is_kept_when_its_generation_leaves(tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    apply(esp, [gen(tmp_path, 2), gen(tmp_path, 1)])
    changed = esp / f"EFI/dockerboot/{TOK}/1/initrd.img"
    changed.write_bytes(b"edited by hand")
    lines = apply(esp, [gen(tmp_path, 3), gen(tmp_path, 2)])
    assert changed.read_bytes() == b"edited by hand"
    assert f"kept {changed}: not as dockerboot-wizard wrote it" in lines


def test_an_owned_line_walking_out_of_the_wizards_directory_removes_nothing(
        tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    apply(esp, [gen(tmp_path, 2), gen(tmp_path, 1)])
    victim = esp / "EFI/other/2/grubx64.efi"
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"another system's")
    outside = tmp_path / "9/outside"
    outside.parent.mkdir()
    outside.write_bytes(b"not on the ESP")
    owned = esp / "EFI/dockerboot/owned"
    planted = [f"{esp_files.digest(victim.read_bytes())} EFI/dockerboot/{TOK}/1/../../../other/2/"
               "grubx64.efi",
               f"- EFI/dockerboot/{TOK}/1/../../../../../9/outside",
               f"- EFI/dockerboot/{TOK}/1/..", "- EFI/other/2/grubx64.efi"]
    owned.write_text(owned.read_text() + "".join(f"{line}\n" for line in planted))
    lines = apply(esp, [gen(tmp_path, 3), gen(tmp_path, 2)])
    assert victim.read_bytes() == b"another system's"
    assert outside.read_bytes() == b"not on the ESP"
    assert not (esp / f"EFI/dockerboot/{TOK}/1").exists()  # generation 1's copies went
    assert all(str(victim) not in line and "outside" not in line for line in lines)


def test_loader_conf_only_when_asked_and_every_other_byte_kept(tmp_path: Path) -> None:
    mine = "timeout 5\r\ndefault debian-*\r\n# my comment\r\neditor no"  # CRLF, no final newline
    esp = esp_with_sdboot(tmp_path, mine)
    conf = esp / "loader/loader.conf"
    apply(esp, [gen(tmp_path, 1)])                       # never asked: untouched
    apply(esp, [gen(tmp_path, 1)], choice="no")
    assert conf.read_bytes().decode() == mine
    apply(esp, [gen(tmp_path, 1)], choice="yes")
    text = conf.read_bytes().decode()
    assert text == ("timeout 5\r\n" + systemd_boot.REPLACED + "default debian-*\r\n"
                    "# my comment\r\neditor no\n" + systemd_boot.OURS
                    + f"\ndefault dockerboot-{TOK}-*\n")
    assert systemd_boot.default_line(esp) == f"default dockerboot-{TOK}-*"
    assert list(conf.parent.glob("loader.conf.dockerboot-*.bak"))  # a backup of theirs
    apply(esp, [gen(tmp_path, 2), gen(tmp_path, 1)], choice="yes")  # again: the same bytes
    assert conf.read_bytes().decode() == text
    apply(esp, [gen(tmp_path, 1)], choice="no")          # said no later: theirs back
    assert conf.read_bytes().decode().startswith(mine)
    assert systemd_boot.default_line(esp) == "default debian-*"


def test_a_planted_link_in_the_entries_is_not_taken_for_an_entry(tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (esp / f"loader/entries/dockerboot-{TOK}-1.conf").symlink_to(victim)
    assert systemd_boot.ours(esp, LABEL) == {}
    with pytest.raises(BootloaderError, match="not a plain file"):
        systemd_boot.plan_entries(esp, LABEL, [gen(tmp_path, 1)], counting=True)
    assert victim.read_text() == "precious\n"


def test_an_entry_rewritten_leaves_no_backup_where_systemd_boot_reads(tmp_path: Path) -> None:
    esp = esp_with_sdboot(tmp_path)
    apply(esp, [gen(tmp_path, 1)])
    one = gen(tmp_path, 1)
    previous = systemd_boot.BootEntry(1, "Previous: generation 1", one.kernel, one.initrd,
                                      "root=LABEL=x docker_image=sha256:ab")
    apply(esp, [gen(tmp_path, 2), previous])
    entry = esp / f"loader/entries/dockerboot-{TOK}-1.conf"
    assert "docker_image=sha256:ab" in entry.read_text()
    assert sorted(p.name for p in (esp / "loader/entries").iterdir()) == [
        "debian-6.1.conf", f"dockerboot-{TOK}-1.conf", f"dockerboot-{TOK}-2+3.conf"]


def test_unchanged_copies_are_known_by_digest_and_never_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An update with nothing to do plans again every run: the kernel copies on the ESP
    and their sources are compared by digest, read in pieces, and nothing is written."""
    esp = esp_with_sdboot(tmp_path)
    entries = [gen(tmp_path, 2), gen(tmp_path, 1)]
    apply(esp, entries)
    owned = (esp / "EFI/dockerboot/owned").read_bytes()
    kernels = {e.kernel for e in entries} | {e.initrd for e in entries}
    copies = {esp / rel for e in entries for rel, _ in systemd_boot.copies(LABEL, e)}
    read_whole = Path.read_bytes

    def guarded(path: Path) -> bytes:
        assert path not in kernels | copies, f"{path} read whole"
        return read_whole(path)

    monkeypatch.setattr(Path, "read_bytes", guarded)
    writes, removes = systemd_boot.plan_entries(esp, LABEL, entries, counting=True)
    plan = esp_plan.ChainPlan(esp, writes, [], "", None, removes, loader="systemd-boot")
    assert not plan.changed and not removes
    assert {w.rel for w in writes if w.digest} == {str(c.relative_to(esp)) for c in copies}
    assert list(esp_plan.write_chain(plan)) == []
    assert (esp / "EFI/dockerboot/owned").read_bytes() == owned
    monkeypatch.undo()
    # A source that changed since (the same number, other bytes) is written again.
    entries[0].initrd.write_bytes(b"initrd 2, rebuilt")
    writes, _ = systemd_boot.plan_entries(esp, LABEL, entries, counting=True)
    [changed] = [w for w in writes if w.old != w.new]
    assert changed.new == b"initrd 2, rebuilt" and changed.digest is None
