"""``dockerboot-wizard try`` on the lab partition while its dockerd runs: the next boot, in a VM.

One headless ``apply`` of the sample image with systemd (initramfs-tools),
a container left running on the lab's dockerd, then:

1. ``try --headless --json --user --password-file`` reaches the login prompt
   of the image's own systemd, logs in there as the user apply made and
   finds no failed unit, reports the hook's lines (the fresh snapshot of the
   image), and shows the password nowhere (stdout, stderr, serial log);
   the partition's subvolumes have the same generation numbers before and
   after (but for what the running dockerd itself writes: its data-root and
   the container's layers), ``boot_docker`` (state, generations, top layer,
   config) is byte for byte the same, and the container still runs.
2. ``try --console`` on a terminal hands over the VM's serial console at its
   login prompt; Ctrl-] leaves, the scratch disk is removed, nothing changed.
3. A top layer broken on purpose (an fstab line for a missing device, without
   ``nofail``) is caught: ``try`` exits non-zero and reports emergency mode
   and the failed units, and again nothing on the partition changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.lab import lab, scenario

pytestmark = [pytest.mark.lab, pytest.mark.e2e, pytest.mark.side_by_side]

IMAGE = "dbw-try/initramfs-tools:desk"
USER, PASSWORD = "tryer", "try pw 7#x"
BROKEN_LINE = ("LABEL=dbw-try-missing /mnt/missing ext4 "
               "defaults,x-systemd.device-timeout=10s 0 2\n")


def subvolume_generations(top: Path, dockerd_writes: set[str]) -> dict[str, str]:
    """Path -> generation of every subvolume but those the running dockerd writes itself."""
    out = lab.run("btrfs", "subvolume", "list", "-g", top).stdout
    gens = {}
    for line in out.splitlines():
        words = line.split()
        path = line.split(" path ", 1)[1]
        if path not in dockerd_writes:
            gens[path] = words[words.index("gen") + 1]
    return gens


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 (or the link's target, or "dir") of everything under
    ``root`` but ``roots``: dockerboot's read-only copies of whole images
    (subvolumes: ``subvolume_generations`` shows them unchanged), whose sparse
    files (/var/log/lastlog) would be read here byte by byte."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        if Path(dirpath) == root and "roots" in dirs:
            dirs.remove("roots")
            out["roots"] = "skipped"
        for name in dirs + files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                out[rel] = f"dir {path.stat().st_mode:o}"
            else:
                digest = hashlib.sha256()
                with path.open("rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
                out[rel] = digest.hexdigest()
    return out


def container_layers(data_root: Path, container: str) -> set[str]:
    """The container's own subvolumes (its rw layer and its init layer), top-level relative."""
    mounts = data_root / "image/btrfs/layerdb/mounts" / container
    ids = {(mounts / name).read_text().strip() for name in ("mount-id", "init-id")
           if (mounts / name).exists()}
    return {f"docker/btrfs/subvolumes/{i}" for i in ids} | \
        {f"docker/btrfs/subvolumes/{i}-init" for i in ids}


def try_json(daemon: lab.Dockerd, label: str, workdir: Path,
             *extra: str) -> tuple[int, dict, str, str]:
    """``try --headless --json --keep``: its exit status, object, stdout and stderr."""
    r = subprocess.run([scenario.wizard_command(), "try", "--label", label, "--headless",
                        "--json", "--timeout", "1200", "--keep", "--workdir", str(workdir),
                        *extra], env=daemon.env(), capture_output=True, text=True, timeout=3000)
    assert r.stdout.strip(), r.stderr[-4000:]
    return r.returncode, json.loads(r.stdout), r.stdout, r.stderr


def test_try_boots_the_next_boot_and_changes_nothing(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e-try")
    machine = scenario.new_machine(workdir)
    top = machine.workdir / "mnt"
    with scenario.docker_on(machine) as daemon:
        scenario.build_image(daemon, "initramfs-tools", IMAGE, marker="try-v1", systemd=True)
        result = scenario.run_apply(daemon, machine, "--image", IMAGE, "--hostname", "trybox",
                                    "--kernel-options", "console=ttyS0", "--user", USER,
                                    "--yes", password=PASSWORD)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        container = daemon.docker("run", "-d", "--network", "none", IMAGE, "sleep",
                                  "infinity").stdout.strip()
        writes = {"docker"} | container_layers(top / "docker", container)
        gens = subvolume_generations(top, writes)
        boot_dir = tree_digest(top / "boot_docker")
        image_id = daemon.docker("inspect", "-f", "{{.Id}}", IMAGE).stdout.strip()

        password_file = machine.workdir / "password"  # run_apply's, for the same user
        code, out, stdout, err = try_json(daemon, machine.label, workdir / "try1", "--user",
                                          USER, "--password-file", str(password_file))
        serial = Path(out["serial_log"]).read_text(errors="replace")
        assert code == 0 and out["ok"] and out["login_prompt"], err[-3000:] + serial[-5000:]
        assert not out["emergency"], out
        # Logged in on the VM's console as the user apply made: systemd settled, nothing failed.
        assert (out["user"], out["logged_in"], out["failed_units"], out["system_state"]) == \
            (USER, True, [], "running"), (out["reason"], serial[-5000:])
        assert out["login_line"] == "trybox login:" and out["reason"] == ""
        assert PASSWORD not in stdout + err + serial
        assert out["generation"] == 1 and out["entry"] == "default"
        assert out["image"] == IMAGE and f"docker_image={IMAGE}" in out["cmdline"]
        assert "dockerboot.generation=1" in out["cmdline"]
        assert "trybox login: " in serial
        assert any("is now a fresh snapshot of" in line for line in out["hook_lines"]), out
        assert all(line.startswith("dockerboot: ") and "watch docker" not in line
                   for line in out["hook_lines"]), out["hook_lines"]  # no unit's description
        assert out["scratch_bytes"] > 0 and out["seconds"] > 0
        assert subvolume_generations(top, writes) == gens
        assert tree_digest(top / "boot_docker") == boot_dir
        assert daemon.docker("inspect", "-f", "{{.State.Running}}",
                             container).stdout.strip() == "true"
        assert daemon.docker("inspect", "-f", "{{.Id}}", IMAGE).stdout.strip() == image_id
        assert not list(top.glob("*try*")) and "-try-view-" not in \
            Path("/proc/self/mountinfo").read_text()

        # The console: a terminal gets the VM's login prompt; Ctrl-] leaves, the VM is off.
        console = pexpect.spawn(scenario.wizard_command(), ["try", "--label", machine.label,
                                "--console", "--workdir", str(workdir / "try-console")],
                                env=daemon.env(), encoding="utf-8", codec_errors="replace",
                                timeout=1200)
        try:
            console.expect("trybox login: ")
            console.send("\x1d")
            console.expect("left the console; the VM is off", timeout=60)
            console.expect(pexpect.EOF, timeout=60)
        finally:
            console.close(force=True)
        assert console.exitstatus == 0
        assert not list((workdir / "try-console").iterdir())  # its scratch disk is gone
        assert subvolume_generations(top, writes) == gens
        assert tree_digest(top / "boot_docker") == boot_dir

        fstab = top / "boot_docker/toplayer/etc/fstab"
        good = fstab.read_bytes()
        fstab.write_bytes(good + BROKEN_LINE.encode())
        broken = tree_digest(top / "boot_docker")
        try:
            code, out, _, err = try_json(daemon, machine.label, workdir / "try2")
        finally:
            fstab.write_bytes(good)
        serial = Path(out["serial_log"]).read_text(errors="replace")
        assert code != 0 and not out["ok"], err[-3000:] + serial[-5000:]
        assert out["emergency"] and not out["login_prompt"], serial[-5000:]
        assert any("missing" in line for line in out["failed"]), out["failed"]
        assert any("is now a fresh snapshot of" in line for line in out["hook_lines"]), out
        assert subvolume_generations(top, writes) == gens
        del broken  # the edit was the test's own: what matters is the restored state
        assert tree_digest(top / "boot_docker") == boot_dir
        daemon.docker("rm", "-f", container)
