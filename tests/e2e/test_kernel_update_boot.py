"""End to end: a real kernel update under the same tag, fallback, update and rollback.

Real UEFI boots through rEFInd in QEMU, for initramfs-tools and dracut:

1. v1 (bookworm, kernel 6.1) applied and booted; its boot is marked good
   (as dockerboot-mark-good does: the test init has no systemd).
2. v2 under the same tag has only the bookworm-backports kernel (6.12; the
   6.1 package purged).  Booted without an update, the hook never boots a
   root without its modules: it falls back to v1 and says why in one line.
3. An update builds generation 2 in a container of v2 — for dracut
   ``dockerboot-wizard update``, for initramfs-tools the booted system's own
   ``dockerboot-update`` from the top layer (run here, on the lab's docker):
   the next boot runs 6.12, ``uname -r`` matches the booted root's
   ``/lib/modules`` and a module loads (br_netfilter, what docker needs).
4. ``rollback``: the previous generation (v1's kernel, v1 pinned by ID)
   is the default again and boots 6.1 with v1's root.

This replaces the older single fallback boot (the tag moved to an image
without modules): step 2 is that case with a real kernel update.
"""

import json
import subprocess

import pytest

from tests.lab import scenario

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

KERNEL_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10"


def _kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def _cli(daemon, machine, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([scenario.wizard_command(), *args, "--label", machine.label],
                       env=daemon.env(), capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    return r


def _booted(serial: str, facts: dict[str, str], marker: str, kernel_prefix: str) -> str:
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["image_marker"] == marker, serial[-3000:]
    assert facts["kernel"].startswith(kernel_prefix), facts["kernel"]
    assert facts["modules_dir"] == "present" and facts["modprobe"] == "ok", facts
    return facts["kernel"]


def _pick_previous_once_then_the_default_boots(machine, v1: str, old_kernel: str,
                                               new_kernel: str) -> None:
    """Step 3b: rEFInd's stock default is the entry booted last (its NVRAM).

    The lab's refind.conf is stock in this (no default_selection); the block
    dockerboot-update wrote names the default entry.  A user picks "Previous
    generation 1" by hand once (arrow key + Enter on the serial console), then
    boots with no key: generation 2 (the default entry) boots, not the one picked.
    """
    assert "default_selection" not in scenario.qemu.USER_REFIND_CONF
    serial, facts = scenario.boot_picking(machine, "boot3b-pick-previous",
                                          "Previous generation 1",
                                          scenario.DOWN + scenario.ENTER)
    assert _booted(serial, facts, "ku-v1", "6.1.") == old_kernel
    assert "dockerboot.generation=1" in facts["cmdline"], facts["cmdline"]
    assert f"docker_image={v1}" in facts["cmdline"]
    serial, facts = scenario.boot(machine, "boot3c-no-key")
    assert _booted(serial, facts, "ku-v2", "6.12.") == new_kernel
    assert "dockerboot.generation=2" in facts["cmdline"], facts["cmdline"]
    assert "docker_image=dbw-e2e/ku-initramfs-tools:desk" in facts["cmdline"]


@pytest.mark.parametrize("generator", ["initramfs-tools", "dracut"])
def test_kernel_update_fallback_update_and_rollback(tmp_path_factory, generator):
    machine = scenario.new_machine(tmp_path_factory.mktemp(f"e2e-ku-{generator}"))
    image = f"dbw-e2e/ku-{generator}:desk"
    top = machine.workdir / "mnt"
    state = top / "boot_docker/state"
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, generator, image, marker="ku-v1")
        result = scenario.run_apply(daemon, machine, "--image", image, "--kernel-options",
                                    KERNEL_OPTIONS, "--yes")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr

    serial, facts = scenario.boot(machine, "boot1-v1")
    old_kernel = _booted(serial, facts, "ku-v1", "6.1.")

    with scenario.docker_on(machine) as daemon:
        v1 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        assert _kv((state / "boot").read_text())["id"] == v1
        # What dockerboot-mark-good writes once the system is up.
        (state / "good").write_text(f"{v1}\n")
        (state / "attempt").write_text(f"{v1} 0\n")
        scenario.build_image(daemon, generator, image, marker="ku-v2", backports=True)
        v2 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        assert v2 != v1
        pending = json.loads(_cli(daemon, machine, "status", "--json").stdout)["pending"]
        assert pending["update"] is True and pending["build_needed"] is True
        assert pending["kernel_version"].startswith("6.12.")

    # No update yet: the default entry still has 6.1; v2 has only 6.12's modules.
    serial, facts = scenario.boot(machine, "boot2-no-update")
    assert _booted(serial, facts, "ku-v1", "6.1.") == old_kernel
    line = (f"dockerboot: {image}: has no /lib/modules/{old_kernel} for the running kernel "
            f"— booting the last good image {v1.removeprefix('sha256:')[:12]} instead")
    assert serial.count(line) == 1, serial[-5000:]

    with scenario.docker_on(machine) as daemon:
        boot2 = _kv((state / "boot").read_text())
        assert (boot2["id"], boot2["configured_id"]) == (v1, v2) and boot2["fallback"]
        out = json.loads(_cli(daemon, machine, "status", "--json").stdout)
        assert out["booted"]["fallback"] is True and "lib/modules" in out["booted"][
            "fallback_reason"]
        if generator == "initramfs-tools":
            # What the booted system runs: the top layer's own command, a POSIX sh.
            up = scenario.self_update(daemon, top, machine.esp / "EFI/BOOT/refind.conf")
            assert up.returncode == 0, up.stdout[-4000:] + up.stderr
            assert "kernel " in up.stdout and "mkinitramfs" in up.stdout, up.stdout[-3000:]
        else:
            up = _cli(daemon, machine, "update", "--esp", str(machine.esp), "--yes")
            assert "kernel " in up.stdout and "Building" in up.stdout, up.stdout[-3000:]

    serial, facts = scenario.boot(machine, "boot3-updated")
    new_kernel = _booted(serial, facts, "ku-v2", "6.12.")
    assert "last good image" not in serial
    assert "dockerboot.generation=2" in facts["cmdline"]
    if generator == "initramfs-tools":
        _pick_previous_once_then_the_default_boots(machine, v1, old_kernel, new_kernel)

    with scenario.docker_on(machine) as daemon:
        assert _kv((state / "boot").read_text())["id"] == v2
        out = json.loads(_cli(daemon, machine, "status", "--json").stdout)
        assert out["generation"]["kernel_version"] == new_kernel
        assert out["previous"]["kernel_version"] == old_kernel
        assert out["previous"]["image_id"] == v1
        assert out["pending"]["update"] is False
        _cli(daemon, machine, "rollback", "--esp", str(machine.esp), "--yes")

    serial, facts = scenario.boot(machine, "boot4-rollback")
    assert _booted(serial, facts, "ku-v1", "6.1.") == old_kernel
    assert f"docker_image={v1}" in facts["cmdline"]
    assert "last good image" not in serial
