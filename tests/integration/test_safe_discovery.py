"""Real loop disks and a real dockerd: read-only discovery, errors per partition, and
the next run removing what a killed run left (containers, mounts)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import ServicesLab
from tests.lab import lab
from wizard.common import leftovers
from wizard.disk import partitions
from wizard.flows.services import RealServices
from wizard.settings import config
from wizard.store import docker_daemon

# Discovery is of every btrfs partition of the machine.
pytestmark = [pytest.mark.lab, pytest.mark.machine_wide]


def _dead_owner() -> str:
    proc = subprocess.Popen(["sleep", "60"])
    token = leftovers.owner_token(proc.pid)
    proc.kill()
    proc.wait()
    return token


def test_leftover_containers_of_a_killed_run_are_removed(services_lab: ServicesLab) -> None:
    client = docker_daemon.connect()
    dead = _dead_owner()

    def make(labels: dict[str, str] | None, *, start: bool = False) -> str:
        c = client.containers.create(services_lab.image, ["sleep", "600"], labels=labels or {},
                                     network_mode="none")
        if start:
            c.start()
        return c.id

    killed_created = make({leftovers.LABEL: "create-users", leftovers.OWNER_LABEL: dead})
    killed_running = make({leftovers.LABEL: "initramfs", leftovers.OWNER_LABEL: dead},
                          start=True)
    old_style_exited = make({leftovers.LABEL: "probe"})
    old_style_running = make({leftovers.LABEL: "probe"}, start=True)
    live = make(leftovers.container_labels("create-users"))  # this process: alive
    users_own = make(None, start=True)
    users_labelled = make({"dockerboot-wizard-like": "x"})
    try:
        RealServices()._docker()  # the TUI's first docker use cleans up
        left = {c.id for c in client.containers.list(all=True)}
        assert killed_created not in left and killed_running not in left
        assert old_style_exited not in left
        assert {old_style_running, live, users_own, users_labelled} <= left
    finally:
        for cid in (old_style_running, live, users_own, users_labelled):
            client.containers.get(cid).remove(force=True)


def test_every_wizard_container_carries_the_owner_label() -> None:
    # One helper makes every throwaway container, with the owner label.
    wizard_dir = Path(__file__).parents[2] / "wizard"
    assert "labels=container_labels(purpose)" in (wizard_dir / "store/containers.py").read_text()
    for module in ("boot/initramfs", "boot/initramfs_detect", "toplayer/users", "flows/services"):
        text = (wizard_dir / f"{module}.py").read_text()
        assert "throwaway(" in text, module
        assert "containers.create(" not in text, module
        assert '"dockerboot-wizard": "' not in text, module


def test_stale_mount_of_a_dead_wizard_is_unmounted(services_lab: ServicesLab) -> None:
    part = partitions.find_by_label(services_lab.label)
    run_dir = leftovers.private_run_dir()
    stale = run_dir / f"top-{_dead_owner()}-abcdefgh"
    live = run_dir / f"{leftovers.mount_dir_prefix()}ijklmnop"
    foreign = run_dir / "notes"
    for d in (stale, live, foreign):
        d.mkdir()
    (foreign / "keep.txt").write_text("mine")
    lab.run("mount", "-t", "btrfs", "-o", "subvolid=5", part.device, stale)
    try:
        with partitions.top_level(part, read_only=True) as top:
            assert not str(top).startswith(str(run_dir)) or top != stale
        assert not stale.exists()
        assert not any(m.mountpoint == str(stale) for m in partitions.read_mountinfo())
        assert live.is_dir() and (foreign / "keep.txt").read_text() == "mine"
    finally:
        subprocess.run(["umount", str(stale)], capture_output=True)
        for d in (stale, live):
            if d.exists():
                d.rmdir()
        (foreign / "keep.txt").unlink()
        foreign.rmdir()


def test_discovery_mounts_read_only_and_a_broken_btrfs_keeps_the_list(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in ("good", "bad"):
        (tmp_path / d).mkdir()
    with lab.loop_disk(tmp_path / "good", size="1G") as good, \
            lab.loop_disk(tmp_path / "bad", size="1G") as bad:
        # Keep the primary superblock (udev still says btrfs) but wipe the trees.
        lab.run("dd", "if=/dev/zero", f"of={bad.btrfs_dev}", "bs=1M", "seek=1", "count=600",
                "oflag=direct", "conv=fsync")
        lab.udev_settle()
        services = RealServices()
        found = {p.label: p for p in services.partitions()}
        assert good.label in found and bad.label in found
        assert found[good.label].error is None
        err = found[bad.label].error
        assert err and "\n" not in err and " — " in err and bad.btrfs_dev in err
        assert services.has_data_root(found[bad.label]) is False

        seen: list[str] = []
        real_load = config.load

        def spy(top: Path, *args: object, **kwargs: object) -> object:
            seen.extend(m.options for m in partitions.read_mountinfo()
                        if m.mountpoint == str(top))
            return real_load(top, *args, **kwargs)

        monkeypatch.setattr(config, "load", spy)
        assert services.saved_config(found[good.label]) is None
        assert seen and all("ro" in o.split(",") for o in seen), seen
        # No mount of the good disk is left after discovery.
        assert not any(m.source == good.btrfs_dev for m in partitions.read_mountinfo())

        # The CLI lists both, the bad one with its error.
        out = subprocess.run(["dockerboot-wizard", "partitions", "--json"],
                             capture_output=True, text=True, check=True).stdout
        listed = {p["label"]: p for p in json.loads(out)}
        assert listed[good.label]["error"] is None and listed[bad.label]["error"]


def test_discovery_mount_is_read_only_while_it_runs(tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="1G") as disk:
        part = partitions.find_by_label(disk.label)
        inside = threading.Event()
        with partitions.top_level(part, read_only=True) as top:
            inside.set()
            entry = next(m for m in partitions.read_mountinfo() if m.mountpoint == str(top))
            assert entry.read_only and str(top).startswith(str(leftovers.RUN_DIR))
            with pytest.raises(OSError):
                (top / "x").write_text("no")
        assert inside.is_set() and not Path(top).exists()
