"""GRUB from the image on the ESP (wizard.loaders.grub): the chain, grub.cfg, the ESP's edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.genhelp import make_gen
from wizard.boot import bootloader, generations
from wizard.common.errors import BootloaderError
from wizard.loaders import esp_plan, grub
from wizard.settings.config import Settings

SHIM, GRUB, MM = b"MZ shim signed", b"MZ grub signed", b"MZ mokmanager"
CHAIN = grub.Chain("debian", SHIM, GRUB, MM)
S = Settings(label="DOCKERBOOT", image="dockerboot/sample:latest")


def image_root(tmp_path: Path, os_id: str = "debian", *, merged_usr: bool = True) -> Path:
    root = tmp_path / "image"
    (root / "usr/lib/shim").mkdir(parents=True)
    (root / "usr/lib/grub/x86_64-efi-signed").mkdir(parents=True)
    (root / "usr/lib/shim/shimx64.efi.signed").write_bytes(SHIM)
    (root / "usr/lib/shim/mmx64.efi.signed").write_bytes(MM)
    (root / "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed").write_bytes(GRUB)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text(f'NAME="x"\nID={os_id}\n')
    if merged_usr:
        (root / "lib").symlink_to("usr/lib")
    return root


def test_the_chain_comes_from_the_image(tmp_path: Path) -> None:
    assert grub.find_chain(image_root(tmp_path)) == CHAIN


def test_an_image_without_the_chain_gets_one_line_naming_the_packages(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    assert grub.find_chain(root) is None
    err = grub.missing_chain("me/os:1", root)
    assert "shim-signed grub-efi-amd64-signed" in err.fix and "--bootloader refind" in err.fix
    assert "Secure Boot must be off" in err.fix


def test_a_symlink_out_of_the_image_is_not_followed(tmp_path: Path) -> None:
    root = image_root(tmp_path)
    outside = tmp_path / "host-shim"
    outside.write_bytes(b"host's file")
    target = root / "usr/lib/shim/shimx64.efi.signed"
    target.unlink()
    target.symlink_to(outside)  # absolute: resolved inside the image, where it is missing
    assert grub.find_chain(root) is None


def _entries(boot: Path, *, previous: bool = True) -> tuple[list[grub.Entry], int]:
    make_gen(boot, 1, "one")
    make_gen(boot, 2, "two")
    inv = generations.load(boot)
    menu = bootloader.menu_entries(S, inv.newest, inv.previous if previous else None)
    ids = ["dockerboot-default", "dockerboot-previous"]
    return [grub.Entry(ids[i], *e) for i, e in enumerate(menu)], inv.newest.number


def test_grub_cfg_names_what_the_refind_block_names(tmp_path: Path) -> None:
    boot = tmp_path / "boot_docker"
    entries, newest = _entries(boot)
    cfg = grub.render_cfg(S, entries, newest=newest, state="boot_docker/state", counting=True)
    inv = generations.load(boot)
    block = bootloader.render_entries(S, inv.newest, inv.previous)
    for title, loader, initrd, cmdline in bootloader.menu_entries(S, inv.newest, inv.previous):
        assert f'menuentry "{title}"' in block and f"menuentry '{title}'" in cfg
        assert f"linux /{loader} " in cfg and f"initrd /{initrd}" in cfg
        assert " ".join(f"'{w}'" for w in cmdline.split()) in cfg
    assert "set default=0" in cfg and "set fallback=1" in cfg  # by position (GRUB 2.06)
    assert cfg.index("--id dockerboot-default") < cfg.index("--id dockerboot-previous")
    assert "search --no-floppy --label --set=root 'DOCKERBOOT'" in cfg
    assert f"($dockerboot_root)/boot_docker/state/{grub.GOOD_FILE}" in cfg
    assert 'if [ "$dockerboot_good" != "2" ]' in cfg and "save_env --file $dockerboot_env" in cfg


def test_grub_cfg_counts_down_then_boots_the_previous_entry(tmp_path: Path) -> None:
    entries, newest = _entries(tmp_path / "boot_docker")
    cfg = grub.render_cfg(S, entries, newest=newest, state="boot_docker/state", counting=True)
    # Each branch sets one less try; at 0 the previous entry is the default.
    for k in range(1, grub.TRIES):
        assert f'elif [ "$dockerboot_tries" = "{k}" ]; then\n        set dockerboot_tries={k - 1}' \
            in cfg
    assert 'if [ "$dockerboot_tries" = "0" ]; then\n        set default=1' in cfg
    assert f"else\n        set dockerboot_tries={grub.TRIES - 1}" in cfg


def test_no_counting_without_a_good_mark_or_without_a_previous_entry(tmp_path: Path) -> None:
    entries, newest = _entries(tmp_path / "a")
    assert "save_env" not in grub.render_cfg(S, entries, newest=newest, state="s",
                                             counting=False)
    one, newest = _entries(tmp_path / "b", previous=False)
    cfg = grub.render_cfg(S, one, newest=newest, state="s", counting=True)
    assert "save_env" not in cfg and "fallback" not in cfg


def test_a_quote_in_the_kernel_options_stays_one_grub_word(tmp_path: Path) -> None:
    boot = tmp_path / "boot_docker"
    make_gen(boot, 1, "one")
    s = Settings(label="L", image="a:b", kernel_options="quiet x=it's$HOME;echo")
    menu = bootloader.menu_entries(s, generations.load(boot).newest)
    cfg = grub.render_cfg(s, [grub.Entry("dockerboot-default", *menu[0])], newest=1, state="s",
                          counting=True)
    assert "'x=it'\\''s$HOME;echo'" in cfg


def test_envblock_is_grub_editenvs_format() -> None:
    data = grub.envblock({"dockerboot_trying": "3", "dockerboot_tries": "2"})
    assert len(data) == 1024 and data.startswith(b"# GRUB Environment Block\n")
    assert data.endswith(b"#" * 100)
    assert grub.read_envblock(data) == {"dockerboot_trying": "3", "dockerboot_tries": "2"}
    assert grub.read_envblock(b"not an env block") == {}


def _plan(esp: Path, newest: int = 1, cfg: str = "cfg\n") -> esp_plan.ChainPlan:
    return grub.plan_chain(esp, CHAIN, cfg, newest=newest)


def _write(plan: esp_plan.ChainPlan) -> list[str]:
    return list(esp_plan.write_chain(plan))


def tree(esp: Path) -> dict[str, bytes]:
    return {str(p.relative_to(esp)): p.read_bytes() for p in sorted(esp.rglob("*"))
            if p.is_file()}


def test_an_empty_esp_gets_our_directory_and_the_removable_path(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    lines = _write(_plan(esp))
    got = tree(esp)
    assert got["EFI/BOOT/BOOTX64.EFI"] == SHIM == got["EFI/dockerboot/shimx64.efi"]
    assert got["EFI/BOOT/grubx64.efi"] == GRUB and got["EFI/BOOT/mmx64.efi"] == MM
    assert got["EFI/BOOT/grub.cfg"] == grub.STUB_CFG.encode()
    assert got["EFI/dockerboot/grub.cfg"] == b"cfg\n"
    assert grub.read_envblock(got["EFI/dockerboot/grubenv"]) == {
        "dockerboot_trying": "1", "dockerboot_tries": str(grub.TRIES)}
    # shim is the last file of the removable path: the firmware never starts it alone.
    assert lines[-1].startswith(f"wrote {esp}/EFI/BOOT/BOOTX64.EFI")
    # Again: nothing changes, nothing is written, no backup.
    again = _plan(esp)
    assert again.changed == [] and _write(again) == [] and tree(esp) == got


def test_grubs_count_is_kept_by_a_reapply_and_reset_by_a_new_generation(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    _write(_plan(esp))
    env = esp / "EFI/dockerboot/grubenv"
    counted = grub.envblock({"dockerboot_trying": "1", "dockerboot_tries": "1"})
    env.write_bytes(counted)  # GRUB's save_env, in place
    assert _plan(esp).changed == []
    _write(_plan(esp, newest=2, cfg="cfg 2\n"))
    assert grub.read_envblock(env.read_bytes())["dockerboot_trying"] == "2"
    assert list(env.parent.glob("grub.cfg.dockerboot-*.bak"))  # the old grub.cfg kept


@pytest.mark.parametrize("vendor_cfg", ["EFI/debian/grub.cfg", "efi/Debian/x86_64-efi/GRUB.CFG"])
def test_another_debians_grub_config_is_refused(tmp_path: Path, vendor_cfg: str) -> None:
    esp = tmp_path / "esp"
    (esp / vendor_cfg).parent.mkdir(parents=True)
    (esp / vendor_cfg).write_text("their config\n")
    before = tree(esp)
    with pytest.raises(BootloaderError, match="another GRUB's") as e:
        _plan(esp)
    assert "--bootloader refind" in e.value.fix
    assert tree(esp) == before


def test_windows_and_its_removable_path_are_kept_byte_for_byte(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    theirs = {"EFI/Boot/bootx64.efi": b"MZ windows boot manager copy",
              "EFI/Microsoft/Boot/bootmgfw.efi": b"MZ windows",
              "EFI/fedora/grub.cfg": b"fedora's\n"}
    for rel, data in theirs.items():
        (esp / rel).parent.mkdir(parents=True, exist_ok=True)
        (esp / rel).write_bytes(data)
    plan = _plan(esp)
    assert [w.rel for w in plan.writes if w.rel.startswith("EFI/BOOT")] == []
    assert plan.kept and "kept as they are" in plan.kept[0]
    assert "EFI/Boot/bootx64.efi" in plan.kept[0]
    _write(plan)
    got = tree(esp)
    assert all(got[rel] == data for rel, data in theirs.items())
    assert not (esp / "EFI/BOOT").exists() or (esp / "EFI/BOOT").samefile(esp / "EFI/Boot")
    assert got["EFI/dockerboot/shimx64.efi"] == SHIM


def test_an_esp_that_is_no_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for esp in (tmp_path / "missing", tmp_path / "file"):
        with pytest.raises(BootloaderError, match="is not a directory"):
            _plan(esp)
    assert not (tmp_path / "missing").exists()


def test_a_file_changed_by_hand_in_our_directory_is_refused(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    _write(_plan(esp))
    cfg = esp / "EFI/dockerboot/grub.cfg"
    cfg.write_text("my own edit\n")
    with pytest.raises(BootloaderError, match="not written by dockerboot-wizard"):
        _plan(esp, cfg="cfg 2\n")
    assert cfg.read_text() == "my own edit\n"


def test_a_symlink_planted_in_our_directory_is_refused(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    (esp / "EFI/dockerboot").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (esp / "EFI/dockerboot/grub.cfg").symlink_to(victim)
    with pytest.raises(BootloaderError):
        _plan(esp)
    assert victim.read_text() == "keep me\n"


@pytest.mark.parametrize("link", ["EFI", "EFI/dockerboot", "EFI/BOOT"])
def test_a_directory_linked_out_of_the_esp_is_refused(tmp_path: Path, link: str) -> None:
    esp, outside = tmp_path / "esp", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep me\n")
    (esp / link).parent.mkdir(parents=True, exist_ok=True)
    (esp / link).symlink_to(outside)
    with pytest.raises(BootloaderError, match="is a symbolic link"):
        _plan(esp)
    assert [p.name for p in outside.iterdir()] == ["keep"]
    assert (outside / "keep").read_text() == "keep me\n"


def test_a_removable_loader_that_is_a_link_is_kept_and_not_followed(tmp_path: Path) -> None:
    esp, victim = tmp_path / "esp", tmp_path / "victim"
    victim.write_bytes(b"not ours\n")
    (esp / "EFI/BOOT").mkdir(parents=True)
    (esp / "EFI/BOOT/BOOTX64.EFI").symlink_to(victim)
    plan = _plan(esp)
    assert plan.kept and not [w for w in plan.writes if w.rel.startswith("EFI/BOOT")]
    _write(plan)
    assert victim.read_bytes() == b"not ours\n"
    assert (esp / "EFI/BOOT/BOOTX64.EFI").is_symlink()


def test_a_removable_path_we_wrote_is_updated_with_the_image(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    _write(_plan(esp))
    newer = grub.Chain("debian", b"MZ shim 16.2", GRUB, MM)
    plan = grub.plan_chain(esp, newer, "cfg\n", newest=1)
    assert {w.rel for w in plan.changed} == {"EFI/dockerboot/shimx64.efi", "EFI/BOOT/BOOTX64.EFI"}
    _write(plan)
    assert (esp / "EFI/BOOT/BOOTX64.EFI").read_bytes() == b"MZ shim 16.2"


def test_a_kill_between_owned_and_the_files_leaves_them_ours(tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    _write(_plan(esp))
    newer = grub.Chain("debian", b"MZ shim 16.2", GRUB, MM)
    writes = esp_plan.write_chain(grub.plan_chain(esp, newer, "cfg 2\n", newest=2))
    next(writes)  # owned names old and new, the first file is written: then the kill
    writes.close()
    assert (esp / "EFI/dockerboot/shimx64.efi").read_bytes() == b"MZ shim 16.2"
    assert (esp / "EFI/BOOT/BOOTX64.EFI").read_bytes() == SHIM
    # A rerun takes every file for the wizard's, old bytes or new, and finishes.
    rerun = grub.plan_chain(esp, newer, "cfg 2\n", newest=2)
    assert {w.rel for w in rerun.changed} == {"EFI/dockerboot/grub.cfg", "EFI/dockerboot/grubenv",
                                              "EFI/BOOT/BOOTX64.EFI"}
    _write(rerun)
    assert (esp / "EFI/dockerboot/grub.cfg").read_text() == "cfg 2\n"
    assert (esp / "EFI/BOOT/BOOTX64.EFI").read_bytes() == b"MZ shim 16.2"
    assert grub.plan_chain(esp, newer, "cfg 2\n", newest=2).changed == []


def test_too_little_space_is_refused_before_writing(tmp_path: Path, monkeypatch) -> None:
    esp = tmp_path / "esp"
    esp.mkdir()
    plan = _plan(esp)
    monkeypatch.setattr(esp_plan.shutil, "disk_usage", lambda p: shutil_usage(1000))
    with pytest.raises(BootloaderError, match="no space on the ESP"):
        esp_plan.check_space(plan)
    assert tree(esp) == {}


def shutil_usage(free: int) -> object:
    return type("Usage", (), {"free": free, "total": free, "used": 0})()


def test_status_reads_grubs_entries_count_and_good_mark(tmp_path: Path) -> None:
    from wizard.flows import bootchain

    top, esp = tmp_path / "top", tmp_path / "esp"
    esp.mkdir()
    entries, newest = _entries(top / "boot_docker")
    s = Settings(label="DOCKERBOOT", image="dockerboot/sample:latest", esp=str(esp),
                 bootloader="grub")
    cfg = grub.render_cfg(s, entries, newest=newest, state="boot_docker/state", counting=True)
    _write(_plan(esp, newest=newest, cfg=cfg))
    (esp / "EFI/dockerboot/grubenv").write_bytes(
        grub.envblock({"dockerboot_trying": "2", "dockerboot_tries": "1"}))  # GRUB counted
    (top / "boot_docker/state").mkdir(parents=True)
    (top / "boot_docker/state" / grub.GOOD_FILE).write_bytes(grub.envblock({"dockerboot_good":
                                                                            "1"}))
    out = bootchain.grub_status({"entries": None, "problems": []}, top, s)
    assert out["entries"] == {"default": 2, "previous": 1} and out["problems"] == []
    assert out["assessment"]["bootloader_counts"] is True
    assert out["assessment"]["grub"] == {"esp": str(esp), "trying": 2, "tries_left": 1,
                                         "good_generation": 1}
    # Nothing readable: nulls and one problem line, never an exception.
    bare = bootchain.grub_status({"entries": None, "problems": []}, top,
                                 Settings(label="L", image="a:b", esp=str(tmp_path / "none"),
                                          bootloader="grub"))
    assert bare["assessment"]["grub"]["trying"] is None and len(bare["problems"]) == 1
