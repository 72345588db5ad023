"""End to end: the configured image is gone, or never marked good — the last good one boots.

Real UEFI boots through rEFInd in QEMU (initramfs-tools, the test init):

1. v1 applied (``dockerboot.tries=1``) and booted; marked good as
   dockerboot-mark-good does (the test init has no systemd).
2. The tag moves to v2 (no update run) and is then deleted with its image
   (``docker rmi -f``): v1, pinned by its generation, is untouched; the hook
   boots v1, says why in one line, and the booted root carries the login
   message.
3. The tag is back on a sound image v3 that never gets marked good: its
   first boot runs v3 (try 1 of 1); the next one falls back to v1 with its
   one line, and ``status --json`` reports the fallback and its reason.

(A kernel update that leaves the tag without modules for the running
kernel is ``test_kernel_update_boot.py``.)
"""

import json
import subprocess

import pytest

from tests.lab import scenario

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

KERNEL_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10 dockerboot.tries=1"


def _kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def _line(image: str, reason: str, good: str) -> str:
    return (f"dockerboot: {image}: {reason} — booting the last good image "
            f"{good.removeprefix('sha256:')[:12]} instead")


def test_deleted_and_never_good_images_boot_the_last_good_one(tmp_path_factory):
    machine = scenario.new_machine(tmp_path_factory.mktemp("e2e-fallback"))
    image = "dbw-e2e/fallback:desk"
    top = machine.workdir / "mnt"
    state = top / "boot_docker/state"
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", image, marker="fb-v1")
        result = scenario.run_apply(daemon, machine, "--image", image, "--kernel-options",
                                    KERNEL_OPTIONS, "--yes")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr

    serial, facts = scenario.boot(machine, "boot1")
    assert facts.get("done") == "yes" and facts["image_marker"] == "fb-v1", serial[-5000:]

    with scenario.docker_on(machine) as daemon:
        v1 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        (state / "good").write_text(f"{v1}\n")
        (state / "attempt").write_text(f"{v1} 0\n")
        scenario.build_image(daemon, "initramfs-tools", image, marker="fb-v2")
        daemon.docker("rmi", "-f", image)  # v2 and the tag are gone; v1 stays, pinned
        assert daemon.docker("image", "inspect", v1, check=False).returncode == 0

    serial, facts = scenario.boot(machine, "boot2-deleted")
    assert facts.get("done") == "yes" and facts["image_marker"] == "fb-v1", serial[-5000:]
    fell_back = [ln for ln in serial.splitlines() if "booting the last good image" in ln]
    assert len(fell_back) == 1 and fell_back[0].startswith(f"dockerboot: {image}: "), fell_back

    with scenario.docker_on(machine) as daemon:
        boot2 = _kv((state / "boot").read_text())
        assert boot2["id"] == v1 and boot2["fallback"].startswith(image)
        assert "fell back to the last good image" in \
            (top / "docker_rwlayer/etc/profile.d/dockerboot-fallback.sh").read_text()
        scenario.build_image(daemon, "initramfs-tools", image, marker="fb-v3")
        v3 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        assert v3 != v1

    serial, facts = scenario.boot(machine, "boot3-v3-try")
    assert facts.get("done") == "yes" and facts["image_marker"] == "fb-v3", serial[-5000:]
    assert "last good image" not in serial

    serial, facts = scenario.boot(machine, "boot4-never-good")
    assert facts.get("done") == "yes" and facts["image_marker"] == "fb-v1", serial[-5000:]
    reason = "was tried 1 times and never marked good"
    assert serial.count(_line(image, reason, v1)) == 1, serial[-5000:]

    with scenario.docker_on(machine) as daemon:
        assert (state / "failed").read_text() == f"{v3} 1\n"
        r = subprocess.run([scenario.wizard_command(), "status", "--label", machine.label,
                            "--json"], env=daemon.env(), capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["booted"]["fallback"] is True and out["booted"]["id"] == v1
        assert out["booted"]["fallback_reason"] == reason
        assert out["failed"] == {"id": v3, "tries": 1, "reason": None}
        assert out["last_good"] == {"id": v1}
