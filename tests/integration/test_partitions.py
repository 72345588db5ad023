"""Partitions against the real lab: loop btrfs devices, real udevd, real mounts."""

from __future__ import annotations

import os
import queue
import tempfile
import time
from pathlib import Path

import pytest

from tests.lab import lab
from wizard.common.errors import PartitionError
from wizard.disk import partitions

# udev events of every device, and the machine's next free loop device.
pytestmark = [pytest.mark.lab, pytest.mark.machine_wide]


def mounted_at(path: Path) -> bool:
    return any(e.mountpoint == str(path) for e in partitions.read_mountinfo())


def test_list_btrfs_reports_udev_facts(tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="1G") as disk:
        found = [p for p in partitions.list_btrfs() if p.label == disk.label]
        assert len(found) == 1
        p = found[0]
        blkid_uuid = lab.run("blkid", "-s", "UUID", "-o", "value", disk.btrfs_dev).stdout.strip()
        st = os.stat(disk.btrfs_dev)
        assert p.device == disk.btrfs_dev
        assert p.uuid == blkid_uuid
        assert p.size == 2**30
        assert p.devnum == (os.major(st.st_rdev), os.minor(st.st_rdev))
        assert p.mountpoints == ()
        assert p.to_json()["label"] == disk.label


def test_partition_on_gpt_disk_and_its_mounts(tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="1G", gpt=True) as disk, \
            lab.mounted(disk.btrfs_dev, tmp_path / "top") as top:
        lab.run("btrfs", "subvolume", "create", top / "docker")
        with lab.mounted(disk.btrfs_dev, tmp_path / "sub", "subvol=docker") as sub:
            p = partitions.find_by_label(disk.label)
            assert p.device == disk.btrfs_dev and p.device.endswith("p2")
            # The btrfs partition, not the whole disk: 1 GiB minus ESP and GPT.
            assert 900 * 2**20 < p.size < 2**30 - 64 * 2**20
            roots = {(m.mountpoint, m.root) for m in p.mountpoints}
            assert roots == {(str(top), "/"), (str(sub), "/docker")}


def test_find_by_label_unknown() -> None:
    with pytest.raises(PartitionError) as e:
        partitions.find_by_label(lab.unique_label("nope"))
    assert "no btrfs partition labelled nope-" in str(e.value)
    assert "dockerboot-wizard partitions" in str(e.value)


def test_find_by_label_not_btrfs(tmp_path: Path) -> None:
    label = lab.unique_label("ext")
    image = tmp_path / "ext.img"
    lab.run("truncate", "-s", "64M", image)
    lab.run("mkfs.ext4", "-q", "-L", label, image)
    loop = lab.run("losetup", "--show", "-f", image).stdout.strip()
    try:
        lab.udev_settle()
        with pytest.raises(PartitionError) as e:
            partitions.find_by_label(label)
        assert f"LABEL={label} is a ext4 filesystem on {loop}, not btrfs" in str(e.value)
    finally:
        lab.run("losetup", "-d", loop, check=False)


def test_find_by_label_ambiguous(tmp_path: Path) -> None:
    label = lab.unique_label()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with lab.loop_disk(tmp_path / "a", label=label, size="256M") as a, \
            lab.loop_disk(tmp_path / "b", label=label, size="256M") as b:
        with pytest.raises(PartitionError) as e:
            partitions.find_by_label(label)
        assert "several btrfs filesystems" in str(e.value)
        assert a.btrfs_dev in str(e.value) and b.btrfs_dev in str(e.value)


def test_top_level_mounts_and_cleans_up(tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="256M") as disk:
        with lab.mounted(disk.btrfs_dev, tmp_path / "top") as top:
            lab.run("btrfs", "subvolume", "create", top / "docker")
            (top / "docker" / "inside").write_text("x")
        # Only the docker subvolume is mounted: that is not the top level.
        with lab.mounted(disk.btrfs_dev, tmp_path / "sub", "subvol=docker"):
            p = partitions.find_by_label(disk.label)
            with partitions.top_level(p) as mnt:
                assert mnt != tmp_path / "sub"
                assert mounted_at(mnt)
                assert (mnt / "docker" / "inside").read_text() == "x"
            assert not mounted_at(mnt) and not mnt.exists()

            with pytest.raises(RuntimeError, match="boom"):
                with partitions.top_level(p) as mnt2:
                    raise RuntimeError("boom")
            assert not mounted_at(mnt2) and not mnt2.exists()


def test_top_level_reuses_existing_mount(tmp_path: Path) -> None:
    with lab.loop_disk(tmp_path, size="256M") as disk, \
            lab.mounted(disk.btrfs_dev, tmp_path / "top") as top:
        p = partitions.find_by_label(disk.label)
        with partitions.top_level(p) as mnt:
            assert mnt == top
        assert mounted_at(top)  # someone else's mount is left alone


def test_top_level_mount_failure_is_partition_error(tmp_path: Path) -> None:
    bogus = partitions.Partition(label="x", uuid="", device=str(tmp_path / "no-such-dev"),
                                 size=0, devnum=(0, 0))
    before = set(Path(tempfile.gettempdir()).glob("dockerboot-top-*"))
    with pytest.raises(PartitionError, match="mount"):
        with partitions.top_level(bogus):
            pass
    assert set(Path(tempfile.gettempdir()).glob("dockerboot-top-*")) == before


def test_monitor_sees_btrfs_come_and_go(tmp_path: Path) -> None:
    events: queue.Queue[partitions.BlockEvent] = queue.Queue()
    observer = partitions.monitor_btrfs(events.put)
    try:
        label = lab.unique_label()
        with lab.loop_disk(tmp_path, label=label, size="256M") as disk:
            device = disk.btrfs_dev
            assert wait_for(events, lambda e: e.is_btrfs and e.label == label
                            and e.device == device)
        # Detaching the loop device drops its filesystem: a non-btrfs event follows.
        assert wait_for(events, lambda e: e.device == device and not e.is_btrfs)
    finally:
        observer.stop()
    assert not observer.is_alive()


def wait_for(events: queue.Queue, match, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if match(events.get(timeout=0.5)):
                return True
        except queue.Empty:
            pass
    return False


def test_label_with_space_is_exact(tmp_path: Path) -> None:
    # udev's ID_FS_LABEL turns the space into "_"; the \x20-escaped ID_FS_LABEL_ENC keeps it.
    label = lab.unique_label("my disk")
    with lab.loop_disk(tmp_path, label=label, size="256M") as disk:
        assert partitions.find_by_label(label).device == disk.btrfs_dev
        assert not [p for p in partitions.list_btrfs() if p.label == label.replace(" ", "_")]


def test_gpt_disk_attaches_to_a_loop_with_stale_partitions(tmp_path: Path) -> None:
    """A loop detached while its partitions were busy keeps them (no partscan
    flag): the next GPT image on it must still get its own partitions (CI saw
    `partx -a`: "error adding partitions 1-2" there)."""
    stale = tmp_path / "stale.img"
    lab.run("truncate", "-s", "300M", stale)
    lab.run("sgdisk", "-o", "-n", "1:1M:+64M", "-n", "2:0:0", stale)
    loop = lab.run("losetup", "--show", "-f", stale).stdout.strip()
    lab.run("partx", "-a", loop)
    lab.run("losetup", "-d", loop)  # partitions left behind, as after a busy detach
    name = Path(loop).name
    try:
        assert (Path("/sys/block") / name / f"{name}p2").exists()
        lab.run("udevadm", "settle")
        for _ in range(50):  # a detach waits for udev's probe of the partitions to close
            if lab.run("losetup", "-f").stdout.strip() == loop:
                break
            time.sleep(0.1)
        assert lab.run("losetup", "-f").stdout.strip() == loop
        (tmp_path / "new").mkdir()
        with lab.loop_disk(tmp_path / "new", size="1G", gpt=True) as disk:
            assert disk.loop == loop
            sectors = int((Path("/sys/block") / name / f"{name}p2" / "size").read_text())
            assert sectors * 512 > 900 * 2**20  # the new image's partition, not the stale one
            assert lab.run("blkid", "-s", "LABEL", "-o", "value", disk.btrfs_dev).stdout.strip() \
                == disk.label
    finally:  # on failure, drop the stale partitions (partx needs the loop attached)
        if (Path("/sys/block") / name / f"{name}p2").exists():
            lab.run("losetup", loop, stale, check=False)
            lab.run("partx", "-d", loop, check=False)
            lab.run("losetup", "-d", loop, check=False)
