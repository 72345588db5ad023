"""The booted system's ``dockerboot-update`` for GRUB from the image: its shell against the Python.

``grub.sh`` renders ``EFI/dockerboot/grub.cfg`` and GRUB's count as
``wizard.loaders.grub`` does (one entry or two, counted or not, a rollback,
command-line words GRUB must quote) and writes them as ``esp_plan.write_chain``
does on an ESP directory: ``owned`` as the wizard's, a backup, the count kept
while it counts the same generation, a file not the wizard's refused with
nothing written.  The full run on the lab (a new generation, then the wizard's
own ``update`` finding nothing to change) is tests/integration/test_selfupdate.py.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from wizard.common.resources import assets_dir
from wizard.loaders import esp_files, grub
from wizard.settings.config import Settings

SHELLS = ["busybox sh", "dash"]
LABEL = "desk-1"
STATE = "boot_docker/state"
OPTS = "root=LABEL=desk-1 docker_image=desk:1 quiet it's=\"x\"\\y dockerboot.generation=7"
DEFAULT = grub.Entry("dockerboot-default", "Docker image desk:1", "boot_docker/gen/7/vmlinuz",
                     "boot_docker/gen/7/initrd.img", OPTS)
PREVIOUS = grub.Entry("dockerboot-previous", "Previous generation 6: desk:1 @0123456789ab",
                      "boot_docker/gen/6/vmlinuz", "boot_docker/gen/6/initrd.img",
                      "root=LABEL=desk-1 docker_image=sha256:0123 dockerboot.generation=6")


def shell(sh: str, esp: Path, run: Path, entries: list[grub.Entry], counting: bool,
          action: str) -> subprocess.CompletedProcess:
    """Source the parts with entries()'s variables set as dockerboot-update sets them."""
    run.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "label": LABEL, "state_dir": STATE, "esp": str(esp),
           "run": str(run), "counting": "1" if counting else "0", "e_num2": ""}
    for i, e in enumerate(entries, 1):
        env |= {f"e_num{i}": e.loader.split("/")[2], f"e_title{i}": e.title,
                f"e_loader{i}": e.loader, f"e_initrd{i}": e.initrd, f"e_opts{i}": e.cmdline}
    parts = assets_dir() / "selfupdate"
    script = ('NL="\n"; say() { printf "%s\\n" "$*"; }; '
              'die() { printf "error: %s - %s\\n" "$1" "$2" >&2; exit 1; }; '
              f". {parts / 'esp.sh'}; . {parts / 'grub.sh'}; {action}")
    return subprocess.run([*sh.split(), "-c", script], env=env, capture_output=True,
                          text=True, timeout=30)


def python_cfg(entries: list[grub.Entry], counting: bool) -> str:
    newest = int(entries[0].loader.split("/")[2])
    return grub.render_cfg(Settings(label=LABEL, image="desk:1"), entries, newest=newest,
                           state=STATE, counting=counting)


@pytest.mark.parametrize("sh", SHELLS)
@pytest.mark.parametrize("counting", [True, False])
@pytest.mark.parametrize("previous", [True, False])
def test_grub_cfg_is_the_wizards(sh: str, counting: bool, previous: bool,
                                 tmp_path: Path) -> None:
    entries = [DEFAULT, PREVIOUS] if previous else [DEFAULT]
    r = shell(sh, tmp_path, tmp_path / "run", entries, counting, "grub_render")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "run/grub.cfg").read_text() == python_cfg(entries, counting)


def esp_as_applied(esp: Path, cfg: str, env: bytes | None = None) -> None:
    """An ESP as the wizard's apply left it: grub.cfg, its count, owned."""
    own = esp / esp_files.OWN_DIR
    own.mkdir(parents=True)
    (own / "grub.cfg").write_text(cfg)
    (own / "grubenv").write_bytes(env or grub.envblock({"dockerboot_trying": "6",
                                                        "dockerboot_tries": "1"}))
    (own / "shimx64.efi").write_bytes(b"MZ shim")
    owned = {f"{esp_files.OWN_DIR}/grub.cfg": {esp_files.digest(cfg.encode())},
             f"{esp_files.OWN_DIR}/grubenv": {"-"},
             f"{esp_files.OWN_DIR}/shimx64.efi": {esp_files.digest(b"MZ shim")}}
    (own / "owned").write_bytes(esp_files.owned_bytes(owned))


def tree(esp: Path) -> dict[str, str]:
    return {str(p.relative_to(esp)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(esp.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("sh", SHELLS)
def test_a_new_generation_is_written_as_the_wizard_writes_it(sh: str, tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    old_cfg = python_cfg([PREVIOUS], counting=True)
    esp_as_applied(esp, old_cfg)
    r = shell(sh, esp, tmp_path / "run", [DEFAULT, PREVIOUS], True, "grub_write")
    assert r.returncode == 0, r.stderr
    own = esp / esp_files.OWN_DIR
    new_cfg = python_cfg([DEFAULT, PREVIOUS], counting=True)
    assert (own / "grub.cfg").read_text() == new_cfg
    # The count starts over for generation 7, as grub.plan_env makes it.
    assert (own / "grubenv").read_bytes() == grub.plan_env(esp, 7).new
    assert (own / "grubenv").read_bytes() == grub.envblock(
        {"dockerboot_trying": "7", "dockerboot_tries": str(grub.TRIES)})
    # owned is what the wizard's write leaves: the new digest only, the rest as it was.
    assert esp_files.read_owned(esp) == {
        f"{esp_files.OWN_DIR}/grub.cfg": {esp_files.digest(new_cfg.encode())},
        f"{esp_files.OWN_DIR}/grubenv": {"-"},
        f"{esp_files.OWN_DIR}/shimx64.efi": {esp_files.digest(b"MZ shim")}}
    [backup] = own.glob("grub.cfg.dockerboot-*.bak")
    assert backup.read_text() == old_cfg
    assert f"{own}/grub.cfg: the entries name generation 7" in r.stdout
    # Again: nothing changes, not even the count GRUB keeps (a re-run never resets it).
    (own / "grubenv").write_bytes(grub.envblock({"dockerboot_trying": "7",
                                                 "dockerboot_tries": "1"}))
    before = tree(esp)
    again = shell(sh, esp, tmp_path / "run", [DEFAULT, PREVIOUS], True, "grub_write")
    assert again.returncode == 0 and "entries unchanged" in again.stdout, again.stderr
    assert tree(esp) == before
    # Named already, counted or not: an up-to-date run needs no probe of the image.
    for counting in (True, False):
        names = shell(sh, esp, tmp_path / "run", [DEFAULT, PREVIOUS], counting, "grub_names")
        assert names.returncode == 0, names.stderr


@pytest.mark.parametrize("sh", SHELLS)
def test_a_grub_cfg_not_the_wizards_is_refused_and_nothing_written(sh: str,
                                                                   tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp_as_applied(esp, python_cfg([PREVIOUS], counting=True))
    cfg = esp / esp_files.OWN_DIR / "grub.cfg"
    cfg.write_text(cfg.read_text() + "# the user's own line\n")
    before = tree(esp)
    r = shell(sh, esp, tmp_path / "run", [DEFAULT, PREVIOUS], True, "grub_write")
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "was not written by dockerboot-wizard" in r.stderr
    assert tree(esp) == before
    assert shell(sh, esp, tmp_path / "run", [DEFAULT, PREVIOUS], True,
                 "grub_names").returncode == 1


@pytest.mark.parametrize("sh", SHELLS)
def test_a_symlinked_directory_on_the_esp_is_never_written_through(sh: str,
                                                                   tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    elsewhere = tmp_path / "elsewhere"
    esp_as_applied(elsewhere, python_cfg([PREVIOUS], counting=True))
    (esp / "EFI").mkdir(parents=True)
    (esp / "EFI/dockerboot").symlink_to(elsewhere / "EFI/dockerboot")
    before = tree(elsewhere)
    r = shell(sh, esp, tmp_path / "run", [DEFAULT, PREVIOUS], True, "grub_write")
    assert r.returncode == 1 and "symbolic link" in r.stderr, r.stdout + r.stderr
    assert tree(elsewhere) == before


@pytest.mark.parametrize("sh", SHELLS)
def test_the_esp_is_found_by_its_grub_cfg_naming_the_label(sh: str, tmp_path: Path) -> None:
    esp = tmp_path / "esp"
    esp_as_applied(esp, python_cfg([PREVIOUS], counting=False).replace(LABEL, "other"))
    r = shell(sh, esp, tmp_path / "run", [DEFAULT], False,
              f'DOCKERBOOT_ESP={esp}; grub_find && echo "found $esp"')
    assert r.returncode == 1 and "no EFI/dockerboot/grub.cfg for LABEL=desk-1" in r.stderr
    (esp / esp_files.OWN_DIR / "grub.cfg").write_text(python_cfg([PREVIOUS], counting=False))
    r = shell(sh, esp, tmp_path / "run", [DEFAULT], False,
              f'DOCKERBOOT_ESP={esp}; grub_find && echo "found $esp"')
    assert r.returncode == 0 and f"found {esp}" in r.stdout, r.stderr
