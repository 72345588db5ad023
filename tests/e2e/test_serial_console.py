"""A real login: the image's own systemd boots to getty, and the wizard's user logs in.

The sample image with systemd (``build_image(..., systemd=True)``) is applied
with the installed CLI and no ``init=``; ``wizard.serial_console`` boots it
through OVMF and rEFInd, waits for the login prompt on the serial console,
logs in with the password given to ``apply`` and runs commands in the shell.
"""

import time

import pytest

from tests.lab import scenario
from wizard.serial_console import booted

pytestmark = [pytest.mark.lab, pytest.mark.e2e]

PASSWORD = "s3cret pw"


def test_login_on_the_serial_console_of_a_systemd_boot(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("console")
    machine = scenario.new_machine(workdir)
    image = "dbw-e2e/systemd:console"
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", image, marker="console", systemd=True)
        result = scenario.run_apply(
            daemon, machine, "--image", image, "--hostname", "dbw-console", "--user", "alice",
            "--kernel-options", "console=ttyS0", "--yes", password=PASSWORD)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr

    scenario.qemu.sync_esp(machine.esp, machine.image)
    log = workdir / "console.serial.log"
    with booted(machine.image, log) as console:
        console.expect(r"dbw-console login: ", timeout=600)
        print(f"\nlogin prompt after {time.monotonic() - console.started:.0f}s "
              "(QEMU start to getty, TCG)")
        console.login("alice", PASSWORD)
        assert console.run("id -un") == (0, "alice")
        status, cmdline = console.run("cat /proc/cmdline")
        assert status == 0 and f"docker_image={image}" in cmdline, cmdline
        assert "init=" not in cmdline  # the image's own systemd, not the test init
        status, state = console.run("systemctl is-system-running --wait", timeout=300)
        failed = console.run("systemctl --failed --no-legend")[1]
        assert state in ("running", "degraded"), f"{state}: {failed}"
        assert console.run("false")[0] == 1
        # Output with several lines and a status from a pipeline, in one call.
        assert console.run("printf 'a\\nb\\n'; exit_code() { return 3; }; exit_code") == (3, "a\nb")
        print(f"systemd: {state}; failed units: {failed or 'none'}")
    assert not console.child.isalive()  # leaving the block killed QEMU
    assert "dbw-console login:" in log.read_text(errors="replace")
    assert PASSWORD not in log.read_text(errors="replace")
