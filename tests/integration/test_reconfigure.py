"""Reconfiguring only the top layer, against the real lab (RealServices and the CLI).

After a full apply, a top-layer change must plan and execute without the ESP
and without any container (no initramfs probe, no build): only the top layer
and the saved config change; kernel, initramfs and refind.conf keep every byte
and their mtimes.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import ServicesLab
from tests.lab import scenario
from wizard.boot import generations
from wizard.common.errors import InitramfsError
from wizard.flows import apply
from wizard.flows.flow import Mode, WizardState
from wizard.flows.services import RealServices
from wizard.settings import config
from wizard.settings.config import Settings

pytestmark = pytest.mark.lab

CONFIG = "dockerboot-wizard.toml"
# What a top-layer change may touch inside boot_docker/ (top layer, its backups, the config).
MAY_CHANGE = ("toplayer/", "backups/", CONFIG)


@dataclass
class Applied:
    settings: Settings
    """What the full apply saved."""
    stale_left: bool
    """Whether a crashed build's directory survived the full apply's build."""


def files_with_mtimes(root: Path) -> dict[str, tuple[str, int]]:
    """relative path -> (sha256, mtime_ns) of every file under ``root``."""
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                             p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def fixed_part(lab: ServicesLab) -> dict[str, tuple[str, int]]:
    """Everything a top-layer change must leave alone: the ESP, the kernel pair, …"""
    boot = {f"boot_docker/{k}": v for k, v in files_with_mtimes(lab.top / "boot_docker").items()
            if not k.startswith(MAY_CHANGE)}
    return {**boot, **{f"esp/{k}": v for k, v in files_with_mtimes(lab.esp).items()}}


def containers_created(during: Callable[[], object]) -> tuple[int, int]:
    """Run ``during``; return (container create events, change of ``docker ps -a``)."""
    client = docker.from_env()
    try:
        time.sleep(1.1)  # events are filtered by whole seconds: skip earlier ones
        before = len(client.containers.list(all=True))
        start = int(time.time())
        during()
        time.sleep(1.1)
        end = int(time.time()) + 1
        events = list(client.events(since=start, until=end, decode=True,
                                    filters={"type": "container", "event": "create"}))
        return len(events), len(client.containers.list(all=True)) - before
    finally:
        client.close()


def cli(lab: ServicesLab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([scenario.wizard_command(), "apply", "--label", lab.label, *args],
                          env=lab.daemon.env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def applied(services_lab: ServicesLab) -> Applied:
    """A full apply (probe, build, boot entry) as the TUI's Review runs it."""
    boot = services_lab.top / "boot_docker"
    crashed = boot / ".build-crashed"  # a build interrupted long ago
    crashed.mkdir(parents=True)
    (crashed / "vmlinuz.new").write_bytes(b"half a kernel")
    settings = Settings(label=services_lab.label, image=services_lab.image,
                        esp=str(services_lab.esp), hostname="first-box")
    services = RealServices()
    state = WizardState(settings=settings)
    preview = services.preview(state, cancel=threading.Event())
    list(services.apply(state, cancel=threading.Event()))
    newest = generations.load(boot).newest
    assert newest is not None and (boot / newest.loader).stat().st_size > 0
    assert "# >>> dockerboot-wizard" in (services_lab.esp / "EFI/BOOT/refind.conf").read_text()
    return Applied(preview.plan.settings, crashed.exists())


@pytest.fixture
def no_saved_config(services_lab: ServicesLab) -> Iterator[None]:
    """The partition without its saved config (moved aside, put back afterwards)."""
    path = services_lab.top / "boot_docker" / CONFIG
    aside = path.with_name(CONFIG + ".aside")
    if path.exists():
        path.rename(aside)
    try:
        yield
    finally:
        if aside.exists():
            aside.rename(path)


def test_toplayer_only_without_saved_config_is_one_line_and_changes_nothing(
        services_lab: ServicesLab, no_saved_config: None) -> None:
    before = fixed_part(services_lab), files_with_mtimes(services_lab.top / "boot_docker")
    r = cli(services_lab, "--toplayer-only", "--hostname", "nobox", "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "no saved config" in lines[0] and "--image" in lines[0]  # the fix is named
    r = cli(services_lab, "--toplayer-only", "--image", services_lab.image, "--yes")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "--image cannot be used with --toplayer-only" in r.stderr
    assert (fixed_part(services_lab), files_with_mtimes(services_lab.top / "boot_docker")) \
        == before


def test_full_apply_removed_a_crashed_build(applied: Applied) -> None:
    assert not applied.stale_left


def test_reconfigure_without_esp_needs_no_container_and_writes_only_the_top_layer(
        services_lab: ServicesLab, applied: Applied, tmp_path: Path) -> None:
    no_esp = tmp_path / "esp-not-mounted"  # no refind.conf anywhere under it
    no_esp.mkdir()
    new = replace(applied.settings, hostname="second-box", esp=str(no_esp))
    state = WizardState(settings=new, saved=applied.settings,
                        mode=Mode.RECONFIGURE_TOPLAYER,
                        toplayer_edits={"etc/motd": b"reconfigured\n"})
    services = RealServices()
    fixed = fixed_part(services_lab)
    refind = (services_lab.esp / "EFI/BOOT/refind.conf").read_bytes()
    boot = services_lab.top / "boot_docker"
    config_before = (boot / CONFIG).read_bytes()
    plans = []

    def reconfigure() -> None:
        preview = services.preview(state, cancel=threading.Event())
        plans.append(preview.plan)
        assert preview.steps == apply.TOPLAYER_ONLY
        list(services.apply(state, cancel=threading.Event()))

    created, ps_change = containers_created(reconfigure)
    assert (created, ps_change) == (0, 0)
    assert plans[0].target is None and plans[0].refind_conf is None
    assert fixed_part(services_lab) == fixed  # vmlinuz, initrd.img, ESP: bytes and mtimes
    assert (services_lab.esp / "EFI/BOOT/refind.conf").read_bytes() == refind
    assert list(no_esp.iterdir()) == []
    files = services.toplayer_files(state)
    assert files["etc/hostname"] == b"second-box\n" and files["etc/motd"] == b"reconfigured\n"
    assert (boot / CONFIG).read_bytes() != config_before
    saved = config.load(services_lab.top)
    assert saved is not None and saved.hostname == "second-box"
    assert saved.image == applied.settings.image

    # The detector above does see a container: the full mode's probe makes one.
    probed, _ = containers_created(lambda: services.detect_initramfs(services_lab.image))
    assert probed >= 1


def test_cli_toplayer_only_changes_hostname_without_container(
        services_lab: ServicesLab, applied: Applied) -> None:
    fixed = fixed_part(services_lab)
    dry = cli(services_lab, "--toplayer-only", "--hostname", "cli-box", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "+cli-box" in dry.stdout and "kept as they are" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout
    results = []
    created, ps_change = containers_created(lambda: results.append(
        cli(services_lab, "--toplayer-only", "--hostname", "cli-box", "--yes")))
    r = results[0]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "top layer of LABEL=" in r.stdout
    assert (created, ps_change) == (0, 0)
    assert fixed_part(services_lab) == fixed
    top = services_lab.top / "boot_docker/toplayer"
    assert (top / "etc/hostname").read_bytes() == b"cli-box\n"
    saved = config.load(services_lab.top)
    assert saved is not None and saved.hostname == "cli-box"


def test_discard_staged_removes_only_the_staged_build(services_lab: ServicesLab,
                                                      applied: Applied) -> None:
    boot = services_lab.top / "boot_docker"
    staged = boot / ".build-left"
    staged.mkdir()
    (staged / "initrd.img.new").write_bytes(b"never installed")
    loader = generations.load(boot).newest.loader  # type: ignore[union-attr]
    kernel = files_with_mtimes(boot)[loader]
    services = RealServices()
    state = WizardState(settings=applied.settings,
                        staged_initramfs=staged.relative_to(services_lab.top).as_posix())
    services.discard_staged(state)
    assert not staged.exists() and files_with_mtimes(boot)[loader] == kernel
    services.discard_staged(state)  # already gone: nothing to do
    with pytest.raises(InitramfsError, match="not a staged build"):
        services.discard_staged(replace(state, staged_initramfs="boot_docker/toplayer"))
    assert (boot / "toplayer").is_dir()
