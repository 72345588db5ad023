"""End to end: apply with the installed CLI, then boot the disk in QEMU through rEFInd.

For initramfs-tools and for dracut with systemd in the initramfs: the first
boot proves root, hostname, user and image content; then a new image is
built under the same tag WITHOUT running apply again, and the second boot
must show the new image on a fresh rw layer, boot 1's root kept read-only
as ``docker_rwlayer.previous`` (the file boot 1 wrote in it), and the
generation of the entry recorded in the hook's state.
"""

import re
import subprocess

import pytest

from tests.lab import qemu, scenario
from wizard.sandbox.parts import attach_disk, mounted
from wizard.settings.cmdline import parse_cmdline

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

KERNEL_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10"


@pytest.mark.parametrize("generator", ["initramfs-tools", "dracut"])
def test_apply_then_boot_twice(generator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"e2e-{generator}")
    machine = scenario.new_machine(workdir)
    image = f"dbw-e2e/{generator}:desk"
    user_conf_before = machine.refind_conf.read_text()

    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, generator, image, marker=f"{generator}-v1")
        result = scenario.run_apply(
            daemon, machine, "--image", image, "--hostname", "dbw-e2e-host",
            "--user", "alice", "--kernel-options", KERNEL_OPTIONS, "--yes",
            password="correct horse battery")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        assert "correct horse battery" not in result.stdout + result.stderr

    conf = machine.refind_conf.read_text()
    # The user's own entry and comments survive byte for byte, before our block.
    assert conf.startswith(user_conf_before)
    assert 'menuentry "My own OS"' in conf
    assert f"volume {machine.label}" in conf
    assert list(machine.refind_conf.parent.glob("refind.conf.dockerboot-*.bak"))

    serial, facts = scenario.boot(machine, "boot1")
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["root_subvol"] == "/docker_rwlayer"
    assert facts["root_fstype"] == "btrfs" and facts["root_rw"] == "rw"
    assert facts["root_mode"] == "755"  # the top layer's 0700 stays on the top layer
    assert facts["hostname"] == "dbw-e2e-host"
    assert facts["user"].startswith("alice:")
    assert re.match(r"^\$(y|6|gy|7)\$", facts["user_hash"]), facts["user_hash"]
    assert facts["image_marker"] == f"{generator}-v1"
    assert facts["previous_boot_file"] == "absent"
    assert f"docker_image={image}" in facts["cmdline"]
    if generator == "dracut":
        # systemd ran in the initramfs (dracut's systemd module, from the image's config).
        assert re.search(r"systemd\[1\]|Welcome to .*dracut", serial), serial[-5000:]

    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, generator, image, marker=f"{generator}-v2")
        # The saved config is the input of a later apply: no --image needed.
        saved = machine.workdir / "mnt" / "boot_docker" / "dockerboot-wizard.toml"
        assert saved.stat().st_mode & 0o777 == 0o600
        assert "correct horse" not in saved.read_text() and "alice" in saved.read_text()
        again = scenario.run_apply(daemon, machine, "--dry-run")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr
        assert f"docker_image={image}" in again.stdout and KERNEL_OPTIONS in again.stdout
        assert "dry run: nothing was changed" in again.stdout

    serial, facts = scenario.boot(machine, "boot2")
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["image_marker"] == f"{generator}-v2"
    assert facts["previous_boot_file"] == "absent"  # fresh rw layer: boot 1's file is gone
    assert facts["hostname"] == "dbw-e2e-host"
    assert machine.refind_conf.read_text() == conf
    assert qemu.facts(serial)["root_subvol"] == "/docker_rwlayer"

    # On the host, the VM stopped: boot 2's hook kept boot 1's root, read-only.
    with attach_disk(machine.image, label=machine.label, gpt=True) as disk, \
            mounted(disk.btrfs_dev, machine.workdir / "mnt") as top:
        prev = top / "docker_rwlayer.previous"
        assert (prev / "dbw-written-at-boot").read_text() == "written during boot\n"
        assert (prev / "etc/dbw-image-marker").read_text().strip() == f"{generator}-v1"
        ro = subprocess.run(["btrfs", "property", "get", "-ts", str(prev), "ro"],
                            capture_output=True, text=True, check=True)
        assert ro.stdout.strip() == "ro=true"
        # The generation the entry passed, as the hook recorded it for status.
        number = parse_cmdline(facts["cmdline"])["dockerboot.generation"]
        record = (top / "boot_docker/state/boot").read_text().splitlines()
        assert f"generation={number}" in record and number.isdigit()
