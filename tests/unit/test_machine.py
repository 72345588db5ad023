"""A real machine's top-layer files (wizard.toplayer.machine).

Image lookups never leave the image.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from wizard.common.errors import ToplayerError
from wizard.settings.config import Settings
from wizard.store import rootfs
from wizard.toplayer import machine

S = Settings(label="desk", image="desk:1", hostname="lifemachine")
IMAGE_FSTAB = "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A tiny image root: merged /usr, an init symlink, the usual files."""
    root = tmp_path / "image"
    for d in ("usr/sbin", "usr/bin", "usr/lib/systemd", "etc/docker", "etc/systemd/system"):
        (root / d).mkdir(parents=True)
    os.chmod(root, 0o755)
    (root / "sbin").symlink_to("usr/sbin")
    init = root / "usr/lib/systemd/systemd"
    init.write_text("#!/bin/sh\n")
    init.chmod(0o755)
    (root / "usr/sbin/init").symlink_to("/usr/lib/systemd/systemd")
    (root / "etc/fstab").write_text(IMAGE_FSTAB)
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n# keep me\n")
    (root / "etc/group").write_text("root:x:0:\nsudo:x:27:\n")
    return root


def test_resolve_stays_inside_the_image(image: Path, tmp_path: Path):
    (tmp_path / "outside").write_text("host secret")
    (image / "etc/evil").symlink_to("/../../outside")
    (image / "etc/up").symlink_to("../../../../outside")
    (image / "etc/loop").symlink_to("loop")
    assert rootfs.resolve(image, "/sbin/init") == image / "usr/lib/systemd/systemd"
    assert rootfs.read_file(image, "etc/evil") is None  # /outside inside the image: absent
    assert rootfs.read_file(image, "etc/up") is None
    assert rootfs.resolve(image, "etc/loop") is None
    assert rootfs.is_executable(image, "/sbin/init")
    assert not rootfs.is_executable(image, "/etc/fstab")


def test_fstab_gets_the_store_home_and_journal_lines(image: Path):
    text = machine.merge_fstab(IMAGE_FSTAB, S)
    assert text == IMAGE_FSTAB + (
        "LABEL=desk /var/lib/docker btrfs subvol=docker 0 0\n"
        "LABEL=desk /home btrfs subvol=home,nofail 0 0\n"
        "LABEL=desk /var/log/journal btrfs subvol=journal,nofail 0 0\n")
    assert machine.merge_fstab(text, S) == text  # idempotent


def test_fstab_keeps_the_users_own_line_and_crlf():
    own = "# mine\r\nUUID=x /home ext4 defaults 0 2\r\n"
    text = machine.merge_fstab(own, replace(S, journal=False, docker_store=False))
    assert text == own  # the user's /home wins; nothing else was asked for


def test_turning_a_feature_off_removes_only_the_wizards_line():
    text = machine.merge_fstab(IMAGE_FSTAB, S)
    off = machine.merge_fstab(text, replace(S, home=False))
    assert "/home" not in off and "/var/lib/docker" in off and "/var/log/journal" in off
    own = IMAGE_FSTAB + "LABEL=desk /home btrfs subvol=myhome 0 0\n"
    assert machine.merge_fstab(own, replace(S, home=False, journal=False,
                                            docker_store=False)) == own


def test_daemon_json_merges_keys():
    merged = json.loads(machine.merge_daemon_json(b'{"log-driver": "journald", '
                                                  b'"features": {"buildkit": true}}'))
    assert merged == {"log-driver": "journald", "storage-driver": "btrfs",
                      "features": {"buildkit": True, "containerd-snapshotter": False}}
    fresh = machine.merge_daemon_json(None)
    assert json.loads(fresh)["storage-driver"] == "btrfs"
    assert machine.merge_daemon_json(fresh) == fresh  # already right: same bytes
    for bad in (b"{nope", b"[1, 2]", b'{"features": 3}'):
        with pytest.raises(ToplayerError, match="daemon.json"):
            machine.merge_daemon_json(bad)


def test_hosts_names_the_hostname():
    assert machine.merge_hosts(b"127.0.0.1\tlocalhost\n", "desk") == \
        b"127.0.0.1\tlocalhost\n127.0.1.1\tdesk\n"
    old = b"127.0.0.1 localhost\r\n127.0.1.1 oldname # comment\r\n# keep\r\n"
    assert machine.merge_hosts(old, "desk.example.org") == \
        b"127.0.0.1 localhost\r\n127.0.1.1\tdesk.example.org desk\r\n# keep\r\n"
    named = b"10.0.0.5 desk\n"
    assert machine.merge_hosts(named, "desk") == named
    assert b"localhost" in machine.merge_hosts(None, "desk")


def test_machine_plan_files_and_subvolumes(image: Path, tmp_path: Path):
    top = tmp_path / "top"
    top.mkdir()
    plan = machine.plan_machine(S, top, image, {})
    files = {c.relpath: c for c in plan.changes}
    assert sorted(files) == ["etc/docker/daemon.json", "etc/fstab", "etc/hosts",
                             "etc/machine-id"]
    assert files["etc/fstab"].image_old == IMAGE_FSTAB.encode()  # diffed against the image
    assert files["etc/hosts"].new.endswith(b"127.0.1.1\tlifemachine\n")
    assert b"# keep me" in files["etc/hosts"].new
    assert machine.has_machine_id(files["etc/machine-id"].new)
    assert files["etc/machine-id"].mode == 0o444
    assert plan.subvolumes == ["home", "journal"]


def test_machine_id_is_made_once(image: Path, tmp_path: Path):
    def made() -> bytes:
        plan = machine.plan_machine(S, tmp_path, image, {})
        return next(c.new for c in plan.changes if c.relpath == "etc/machine-id")

    ids = {made() for _ in range(3)}
    assert len(ids) == 3  # every new machine gets its own
    kept = b"0123456789abcdef0123456789abcdef\n"
    plan = machine.plan_machine(S, tmp_path, image, {"etc/machine-id": kept})
    assert "etc/machine-id" not in [c.relpath for c in plan.changes]
    for bad in (b"", b"uninitialized\n", b"XYZ"):
        assert not machine.has_machine_id(bad)


def test_existing_subvolume_is_kept_and_a_plain_dir_refused(image: Path, tmp_path: Path):
    (tmp_path / "home").mkdir()  # a plain directory, not a subvolume (inode 256)
    with pytest.raises(ToplayerError, match="not a btrfs subvolume.*--no-home"):
        machine.plan_machine(S, tmp_path, image, {})
    plan = machine.plan_machine(replace(S, home=False), tmp_path, image, {})
    assert plan.subvolumes == ["journal"]


def test_image_warnings(image: Path):
    assert machine.image_warnings(S, image) == []
    os.chmod(image, 0o700)
    (image / "usr/lib/systemd/systemd").unlink()
    warnings = machine.image_warnings(replace(S, admins=("alice",)), image)
    assert len(warnings) == 3, warnings
    assert "/ is 0700" in warnings[0] and "has no init (/sbin/init)" in warnings[1]
    assert "has no sudo" in warnings[2]
    custom = replace(S, kernel_options="console=ttyS0 init=/etc/fstab")
    assert "has no init (/etc/fstab)" in machine.image_warnings(custom, image)[1]


def test_images_whose_boots_are_not_assessed_are_warned_about(image: Path):
    """Issue 17, point 4: an image without systemd is never marked good or bad (the hook
    does not count its tries); an init= that is not systemd never runs the mark-good unit."""
    assert machine.has_systemd(image)
    (image / "etc/systemd/system").rmdir()
    assert not machine.has_systemd(image)      # usr/lib/systemd/systemd, but no lib -> usr/lib
    (image / "lib").symlink_to("usr/lib")
    assert machine.has_systemd(image) and machine.image_warnings(S, image) == []
    (image / "lib").unlink()
    [line] = machine.image_warnings(S, image)
    assert line.startswith("image desk:1 has no systemd: its boots are not assessed")
    (image / "etc/systemd/system").mkdir()
    custom = replace(S, kernel_options="console=ttyS0 init=/usr/sbin/my-init")
    (image / "usr/sbin/my-init").write_text("#!/bin/sh\n")
    (image / "usr/sbin/my-init").chmod(0o755)
    [line] = machine.image_warnings(custom, image)
    assert line.startswith("init=/usr/sbin/my-init is not systemd: ") and "after 2 boots" in line
    off = replace(custom, kernel_options=custom.kernel_options + " dockerboot.tries=0")
    assert machine.image_warnings(off, image) == []
    systemd = replace(S, kernel_options="init=/lib/systemd/systemd")
    (image / "lib").symlink_to("usr/lib")
    assert machine.image_warnings(systemd, image) == []


def test_admin_group_and_members():
    group = b"root:x:0:\nwheel:x:10:bob\nsudo:x:27:alice,carol\n"
    assert machine.admin_group(group) == "sudo"
    assert machine.admin_group(b"wheel:x:10:\n") == "wheel"
    assert machine.admin_group(b"root:x:0:\n") is None
    assert machine.members(group, "sudo") == {"alice", "carol"}


def test_overlay_says_where_top_layer_files_land(image: Path, tmp_path: Path):
    (image / "usr/lib").mkdir(exist_ok=True)
    (image / "lib").symlink_to("usr/lib")
    (image / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    (image / "etc/localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    (image / "etc/evil").symlink_to("/")
    (image / "tmp").mkdir(mode=0o1777)
    top = tmp_path / "top"
    for rel in ("etc/resolv.conf", "etc/localtime", "lib/dbw/x.conf", "etc/evil/y", "etc/plain"):
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text("top layer\n")
    (top / "tmp").mkdir(mode=0o700)
    notes = {x.relpath: x.note for x in rootfs.overlay(top, image, ["etc/new-from-plan"])}
    assert notes == {
        "etc/resolv.conf": "replaces the image's symlink (-> ../run/systemd/resolve/"
                           "stub-resolv.conf)",
        "etc/localtime": "replaces the image's symlink (-> /usr/share/zoneinfo/Etc/UTC)",
        "lib/dbw/x.conf": "lands at usr/lib/dbw/x.conf (a directory on its way is a symlink "
                          "in the image)",
        "etc/evil/y": "lands at y (a directory on its way is a symlink in the image)",
    }


def test_overlay_refuses_a_directory_over_a_file(image: Path, tmp_path: Path):
    top = tmp_path / "top"
    (top / "etc/fstab").mkdir(parents=True)  # the image's etc/fstab is a file
    with pytest.raises(ToplayerError, match="etc/fstab is a directory but the image has a file"):
        rootfs.overlay(top, image)
    (top / "etc/fstab").rmdir()
    (top / "usr").mkdir()
    (top / "usr/bin").write_text("a file where the image has a directory\n")
    with pytest.raises(ToplayerError, match="usr/bin is a file but the image has a directory"):
        rootfs.overlay(top, image)
