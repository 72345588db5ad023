"""End to end: the tag moves to an image without the running kernel's modules.

A real UEFI boot through rEFInd in QEMU (initramfs-tools): the first boot
records its image; it is marked good (as dockerboot-mark-good does, the test
init having no systemd); then the configured tag is rebuilt without
``/lib/modules``.  The next boot must run the last good image, say why in
one line on the console, and tell the booted root.
"""

import pytest

from tests.lab import scenario

pytestmark = [pytest.mark.lab, pytest.mark.e2e]

KERNEL_OPTIONS = "console=ttyS0 init=/usr/local/sbin/dbw-test-init panic=10"


def _kv(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_tag_moved_to_an_image_without_modules_boots_the_last_good_image(tmp_path_factory):
    machine = scenario.new_machine(tmp_path_factory.mktemp("e2e-fallback"))
    image = "dbw-e2e/fallback:desk"
    top = machine.workdir / "mnt"
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", image, marker="fallback-v1")
        result = scenario.run_apply(daemon, machine, "--image", image, "--kernel-options",
                                    KERNEL_OPTIONS, "--yes")
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr

    serial, facts = scenario.boot(machine, "boot1")
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["image_marker"] == "fallback-v1"
    assert "last good" not in serial

    with scenario.docker_on(machine) as daemon:
        state = top / "boot_docker/state"
        assert state.stat().st_mode & 0o777 == 0o700
        boot1 = _kv((state / "boot").read_text())
        v1 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        assert boot1["id"] == v1 and boot1["fallback"] == "" and boot1["tries"] == "1"
        assert (state / "attempt").read_text() == f"{v1} 1\n"
        kver = boot1["kernel"]
        # What dockerboot-mark-good writes once the system is up.
        (state / "good").write_text(f"{v1}\n")
        (state / "attempt").write_text(f"{v1} 0\n")
        ctx = machine.workdir / "ctx-v2"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM {image}\nRUN rm -rf /usr/lib/modules /lib/modules"
            " && echo fallback-v2 >/etc/dbw-image-marker\n")
        daemon.docker("build", "-q", "--network", "none", "-t", image, str(ctx), timeout=600)
        v2 = daemon.docker("image", "inspect", "-f", "{{.Id}}", image).stdout.strip()
        assert v2 != v1

    serial, facts = scenario.boot(machine, "boot2")
    assert facts.get("done") == "yes", serial[-5000:]
    assert facts["image_marker"] == "fallback-v1"           # the last good image booted
    reason = f"has no /lib/modules/{kver} for the running kernel"
    line = (f"dockerboot: {image}: {reason} — booting the last good image "
            f"{v1.removeprefix('sha256:')[:12]} instead")
    assert serial.count(line) == 1, serial[-5000:]

    with scenario.docker_on(machine):
        boot2 = _kv((top / "boot_docker/state/boot").read_text())
        assert boot2 == {"ref": image, "id": v1, "configured_id": v2,
                         "fallback": f"{image} {reason}", "kernel": kver, "tries": "1"}
        rw = top / "docker_rwlayer"
        assert _kv((rw / "etc/dockerboot/boot").read_text()) == boot2
        assert "fell back to the last good image" in \
            (rw / "etc/profile.d/dockerboot-fallback.sh").read_text()
