"""GRUB way (b), a distribution's GRUB (wizard.loaders.distro_grub): found, followed, edited.

Sample ESP trees as Debian, Ubuntu, Fedora and a Windows + Debian dual boot
leave them; the wizard's block in ``custom.cfg`` with the user's own content
kept byte for byte; hostile files refused with one line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wizard.common.errors import BootloaderError
from wizard.common.mountinfo import MountEntry
from wizard.flows import bootchain
from wizard.loaders import distro_grub, esp_plan, grub
from wizard.settings import config
from wizard.settings.config import Settings

UUID = "0f5b4c2e-6d1a-4c3b-9a57-2f1e8d7c6b5a"
DEBIAN_STUB = (f"search.fs_uuid {UUID} root hd0,gpt2 \n"
               "set prefix=($root)'/boot/grub'\n"
               "configfile $prefix/grub.cfg\n")
FEDORA_STUB = (f"search --no-floppy --root-dev-only --fs-uuid --set=dev {UUID}\n"
               "set prefix=($dev)/grub2\n"
               "export $prefix\n"
               "configfile $prefix/grub.cfg\n")
BTRFS_STUB = (f"search.fs_uuid {UUID} root \n"
              "set prefix=($root)'/@rootfs/boot/grub'\n"
              "configfile $prefix/grub.cfg\n")
GENERATED = """\
set default="0"
menuentry 'Debian GNU/Linux' --class debian {
\tlinux /vmlinuz root=UUID=x ro quiet
}
### BEGIN /etc/grub.d/41_custom ###
if [ -f  ${config_directory}/custom.cfg ]; then
  source ${config_directory}/custom.cfg
elif [ -z "${config_directory}" -a -f  $prefix/custom.cfg ]; then
  source $prefix/custom.cfg
fi
### END /etc/grub.d/41_custom ###
"""
ENTRIES = [grub.Entry("dockerboot-default", "Docker image a:b", "boot_docker/gen/2/vmlinuz",
                      "boot_docker/gen/2/initrd.img", "dockerboot.generation=2 quiet"),
           grub.Entry("dockerboot-previous", "Docker image a:b (previous)",
                      "boot_docker/gen/1/vmlinuz", "boot_docker/gen/1/initrd.img",
                      "dockerboot.generation=1 quiet")]


def esp_with(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    esp = tmp_path / "esp"
    for rel, data in files.items():
        path = esp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    esp.mkdir(exist_ok=True)
    return esp


@pytest.mark.parametrize(("stub", "prefix"), [(DEBIAN_STUB, "/boot/grub"),
                                              (FEDORA_STUB, "/grub2"),
                                              (BTRFS_STUB, "/@rootfs/boot/grub")])
def test_stubs_of_each_distribution_are_followed(stub: str, prefix: str) -> None:
    assert distro_grub.parse_stub(stub) == (UUID, prefix)


@pytest.mark.parametrize("text", ["", "configfile /EFI/dockerboot/grub.cfg\n",
                                  "set prefix=($root)/boot/grub\n",  # no search for $root
                                  f"search.fs_uuid {UUID} dev\nset prefix=($root)/boot/grub\n",
                                  GENERATED])
def test_what_is_not_a_stub_is_not_followed(text: str) -> None:
    assert distro_grub.parse_stub(text) is None


def test_sample_esp_trees(tmp_path: Path) -> None:
    debian = esp_with(tmp_path / "d", {"EFI/debian/shimx64.efi": b"shim",
                                       "EFI/debian/grubx64.efi": b"grub",
                                       "EFI/debian/grub.cfg": DEBIAN_STUB})
    found = distro_grub.find(debian)
    assert found is not None and (found.vendor, found.prefix) == ("debian", "/boot/grub")
    ubuntu = esp_with(tmp_path / "u", {"EFI/ubuntu/grub.cfg": DEBIAN_STUB,
                                       "EFI/BOOT/BOOTX64.EFI": b"shim",
                                       "EFI/BOOT/grub.cfg": DEBIAN_STUB})
    assert distro_grub.find(ubuntu).vendor == "ubuntu"  # EFI/BOOT is never a distribution
    fedora = esp_with(tmp_path / "f", {"EFI/fedora/grub.cfg": FEDORA_STUB})
    assert distro_grub.find(fedora).prefix == "/grub2"
    windows_debian = esp_with(tmp_path / "w", {
        "EFI/Microsoft/Boot/bootmgfw.efi": b"MZ windows", "EFI/Boot/bootx64.efi": b"MZ",
        "EFI/debian/grub.cfg": DEBIAN_STUB})
    assert distro_grub.find(windows_debian).vendor == "debian"
    windows = esp_with(tmp_path / "wo", {"EFI/Microsoft/Boot/bootmgfw.efi": b"MZ"})
    assert distro_grub.find(windows) is None
    ours = esp_with(tmp_path / "o", {"EFI/dockerboot/grub.cfg": "configfile x\n"})
    assert distro_grub.find(ours) is None
    both = esp_with(tmp_path / "b", {"EFI/debian/grub.cfg": DEBIAN_STUB,
                                     "EFI/ubuntu/grub.cfg": DEBIAN_STUB})
    assert distro_grub.find(both, prefer="ubuntu").vendor == "ubuntu"


def test_a_whole_config_on_the_esp_is_refused_in_one_line(tmp_path: Path) -> None:
    esp = esp_with(tmp_path, {"EFI/arch/grub.cfg": GENERATED})
    with pytest.raises(BootloaderError) as e:
        distro_grub.find(esp)
    assert "not a stub" in e.value.problem and "\n" not in str(e.value)


STATE = "/boot_docker/state"


def block(default: bool = True, counting: bool = True) -> str:
    return distro_grub.render_block("dbw", ENTRIES, newest=2, state=STATE,
                                    default=default, counting=counting)


def test_block_sets_the_default_by_id_and_counts_only_when_asked() -> None:
    text = block()
    assert text.startswith(distro_grub.BEGIN + "\n") and text.endswith(distro_grub.END + "\n")
    assert "set default=dockerboot-default\n" in text
    assert "        set default=dockerboot-previous\n" in text  # tries gone: the previous one
    assert "search --no-floppy --file --set=dockerboot_esp /EFI/dockerboot/grubenv" in text
    assert "--id dockerboot-previous" in text and "linux /boot_docker/gen/1/vmlinuz" in text
    theirs = block(default=False)
    assert "set default" not in theirs and "grubenv" not in theirs
    assert "--id dockerboot-default" in theirs
    assert "grubenv" not in block(counting=False)


def test_user_content_is_kept_byte_for_byte(tmp_path: Path) -> None:
    mine_before = "# my own entries\r\nmenuentry 'Memtest' {\r\n  linux16 /memtest\r\n}\r\n"
    mine_after = "menuentry 'After' { true }"  # no newline at the end
    first = distro_grub.replace_block(mine_before, block(), tmp_path)
    assert first.startswith(mine_before) and first.endswith(block())
    edited = first + mine_after
    again = distro_grub.replace_block(edited, block(default=False), tmp_path)
    assert again == mine_before + block(default=False) + mine_after
    assert distro_grub.read_block(again) == block(default=False)
    assert distro_grub.replace_block(again, block(default=False), tmp_path) == again
    assert distro_grub.replace_block("x", block(), tmp_path) == "x\n" + block()


@pytest.mark.parametrize("text", [block() + distro_grub.BEGIN + "\n",
                                  distro_grub.END + "\n" + distro_grub.BEGIN + "\n",
                                  block() + block()])
def test_broken_markers_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(BootloaderError, match="markers"):
        distro_grub.replace_block(text, block(), tmp_path)


def _mounted_here(monkeypatch: pytest.MonkeyPatch, mountpoint: Path, root: str = "/",
                  options: str = "rw") -> None:
    monkeypatch.setattr(distro_grub, "_device", lambda uuid: "/dev/vda2")
    entry = MountEntry(1, 0, (0, 40), root, str(mountpoint), options, "btrfs", "/dev/vda2", "rw")
    monkeypatch.setattr(distro_grub, "read_mountinfo", lambda: [entry])


def test_the_config_directory_is_found_through_the_mount(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    host = tmp_path / "host"
    (host / "boot/grub").mkdir(parents=True)
    (host / "boot/grub/grub.cfg").write_text(GENERATED)
    _mounted_here(monkeypatch, host, root="/@rootfs")
    distro = distro_grub.DistroGrub("debian", tmp_path / "stub", UUID, "/@rootfs/boot/grub")
    assert distro_grub.config_dir(distro) == host / "boot/grub"
    change = distro_grub.plan_custom(distro, block())
    assert change.path == host / "boot/grub/custom.cfg" and change.old is None
    assert change.new.decode() == block() and change.distro == "debian"
    elsewhere = distro_grub.DistroGrub("debian", tmp_path / "stub", UUID, "/@home/boot/grub")
    with pytest.raises(BootloaderError, match="not mounted here"):
        distro_grub.config_dir(elsewhere)


def test_a_generated_config_without_41_custom_is_refused(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/grub.cfg").write_text("set default=0\nmenuentry x { true }\n")
    _mounted_here(monkeypatch, tmp_path)
    distro = distro_grub.DistroGrub("debian", tmp_path / "stub", UUID, "/boot/grub")
    with pytest.raises(BootloaderError, match="41_custom"):
        distro_grub.config_dir(distro)


def test_a_custom_cfg_that_is_a_link_is_never_written_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grubdir = tmp_path / "boot/grub"
    grubdir.mkdir(parents=True)
    (grubdir / "grub.cfg").write_text(GENERATED)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (grubdir / "custom.cfg").symlink_to(victim)
    _mounted_here(monkeypatch, tmp_path)
    distro = distro_grub.DistroGrub("debian", tmp_path / "stub", UUID, "/boot/grub")
    with pytest.raises(BootloaderError, match="not a plain file"):
        distro_grub.plan_custom(distro, block())
    assert victim.read_text() == "precious\n"


def test_written_last_with_a_backup_and_nothing_on_the_esp_without_a_count(
        tmp_path: Path) -> None:
    esp = esp_with(tmp_path, {"EFI/debian/grub.cfg": DEBIAN_STUB})
    custom = tmp_path / "custom.cfg"
    custom.write_text("# mine\n")
    change = esp_plan.CustomWrite(custom, custom.read_bytes(), b"# mine\n" + block().encode(),
                              "debian")
    lines = list(esp_plan.write_chain(esp_plan.ChainPlan(esp, [], [], "", change)))
    assert lines[-1].startswith(f"wrote {custom} (backup: ")
    assert custom.read_bytes() == change.new
    assert not (esp / "EFI/dockerboot").exists()  # the distribution's default: no count
    counted = esp_plan.ChainPlan(esp, [grub.plan_env(esp, 2)], [], "",
                             esp_plan.CustomWrite(custom, change.new, change.new, "debian"))
    written = list(esp_plan.write_chain(counted))
    assert written == [f"wrote {esp / 'EFI/dockerboot/grubenv'}"]  # custom.cfg unchanged
    env = grub.read_envblock((esp / "EFI/dockerboot/grubenv").read_bytes())
    assert env == {"dockerboot_trying": "2", "dockerboot_tries": str(grub.TRIES)}


def test_a_kernel_another_distribution_signed_is_refused_unless_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ubuntu's shim refuses Debian's kernel under Secure Boot: MOK is not the wizard's."""
    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/grub.cfg").write_text(GENERATED)
    _mounted_here(monkeypatch, tmp_path)
    monkeypatch.setattr(bootchain, "secure_boot", lambda: None)
    esp = esp_with(tmp_path, {"EFI/ubuntu/grub.cfg": DEBIAN_STUB})
    ubuntu = distro_grub.DistroGrub("ubuntu", esp / "EFI/ubuntu/grub.cfg", UUID, "/boot/grub")
    s = Settings(label="dbw", image="a:b", esp=str(esp))
    for signer in ("debian", ""):
        with pytest.raises(BootloaderError, match="--mixed-distribution") as refused:
            bootchain._plan_distro(esp, ubuntu, s, ENTRIES, 2, signer, state=STATE,
                                   counting=True)
        assert "ubuntu's shim refuses it" in refused.value.problem
    assert not (tmp_path / "boot/grub/custom.cfg").exists()
    plan, warnings = bootchain._plan_distro(esp, ubuntu, s, ENTRIES, 2, "Ubuntu", state=STATE,
                                            counting=True)  # the same, spelt otherwise
    assert plan.custom is not None and not any("refuses" in w for w in warnings)
    asked = Settings(label="dbw", image="a:b", esp=str(esp), mixed_distribution=True)
    plan, warnings = bootchain._plan_distro(esp, ubuntu, asked, ENTRIES, 2, "debian", state=STATE,
                                            counting=True)
    assert plan.custom is not None and plan.custom.new.decode() == block(default=False)
    assert "keep it off (--mixed-distribution)" in warnings[-1]
    monkeypatch.setattr(bootchain, "secure_boot", lambda: True)
    _, warnings = bootchain._plan_distro(esp, ubuntu, asked, ENTRIES, 2, "debian", state=STATE,
                                         counting=True)
    assert warnings[-1].startswith("Secure Boot is on here and ubuntu's shim refuses")


def test_own_grub_leaves_another_system_s_grub_alone_and_is_saved(tmp_path: Path) -> None:
    """``install`` beside another system: its GRUB (even a whole config) is not looked into."""
    esp = esp_with(tmp_path, {"EFI/debian/grub.cfg": DEBIAN_STUB,
                              "EFI/arch/grub.cfg": GENERATED})
    own = Settings(label="dbw", image="a:b", esp=str(esp), own_grub=True)
    assert bootchain.distro_grub_of(esp, own) is None
    assert bootchain.choose(own, None) == "refind"  # no signed pair in the image: not GRUB
    with pytest.raises(BootloaderError, match="not a stub"):
        bootchain.distro_grub_of(esp, Settings(label="dbw", image="a:b", esp=str(esp)))
    assert config.from_toml(config.to_toml(own)).own_grub is True
    assert "own_grub =" not in config.to_toml(replace(own, own_grub=False))
