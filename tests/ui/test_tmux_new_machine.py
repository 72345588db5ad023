"""The TUI's New machine route in a real terminal, by keys, onto a blank disk.

tmux runs the installed ``dockerboot-wizard`` (no Pilot, no fakes): this
machine's docker stands as a private dockerd of the lab holding the image
(``DOCKER_HOST``, as a user's client would point at it), and a blank sparse
disk image is attached as a loop device.  Welcome highlights "New machine"
(nothing saved); on the Disk step the loop disk is picked from the table of
this machine's disks, the whole disk kept as where, a label typed and "for
another UEFI machine" ticked (this host did not boot by UEFI); the plan says
a new GPT; the Image step's filter finds the image; the Review wants the
disk's name typed before Apply; install runs in the work log; Done says
where the disk boots.  Afterwards the disk holds a GPT, the ESP with the
removable path and the wizard's own shim, the labelled btrfs with the image
copied from this machine's docker and the saved config.  The real boot of
such a disk is ``tests/e2e/test_install_boot.py`` (the headless command).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab import lab, scenario
from tests.lab.tmux import Pane
from wizard.disk import partitions
from wizard.settings import config

pytestmark = [pytest.mark.lab, pytest.mark.machine_wide]  # the TUI lists every disk here
IMAGE = "dbw-tui/newbox:one"


def settle_keys() -> None:
    time.sleep(0.7)  # the app reads the keys sent so far before the next ones


def row_of(screen: str, device: str) -> int:
    """The disk table's row (0 = first) that shows ``device``, read from the screen."""
    rows = [line for line in screen.splitlines() if re.search(r"/dev/\S+", line)
            and "Device" not in line and "Refused" not in line]
    cells = [re.search(r"/dev/\S+", line).group(0) for line in rows]
    return cells.index(device)


def test_new_machine_by_keys_installs_on_a_blank_disk(pane: Pane, tmp_path: Path) -> None:
    label = lab.unique_label()
    disk = tmp_path / "blank.img"
    lab.run("truncate", "-s", "8G", disk)
    (tmp_path / "host").mkdir()
    with lab.docker_disk(tmp_path / "host") as host:
        scenario.build_image(host.daemon, "dracut", IMAGE, marker="tui", systemd=True,
                             secure_boot=True)
        loop = lab.run("losetup", "--show", "-f", disk).stdout.strip()
        try:
            pane.keys(f"DOCKER_HOST={host.daemon.host} dockerboot-wizard; echo DBW-EXIT=$?",
                      "Enter")
            screen = pane.wait_for("New machine", timeout=120)
            assert "No saved configuration found" in screen, screen
            pane.keys("Enter")  # highlighted first: nothing is saved

            screen = pane.wait_for(lambda s: "Pick the disk" in s and loop in s)
            settle_keys()
            pane.keys(*["Down"] * row_of(screen, loop))
            settle_keys()
            pane.keys("Tab", "Tab")  # where (the whole disk is pressed), then the label
            settle_keys()
            pane.type(label)
            settle_keys()
            pane.keys("Tab")  # for another UEFI machine: space ticks it
            settle_keys()
            pane.keys("Space")
            screen = pane.wait_for("new GPT partition table")
            assert f"{loop}: " in screen and "no partition table" in screen, screen
            pane.keys("Escape")
            settle_keys()
            pane.keys("n")

            pane.wait_for(lambda s: "filter images" in s or IMAGE.split(":")[0] in s)
            settle_keys()
            pane.keys("/")
            settle_keys()
            pane.type("newbox")
            settle_keys()
            pane.keys("Enter")  # back to the table, the one image left under the cursor
            pane.wait_for("install copies it from this machine's docker")
            settle_keys()
            pane.keys("n")

            pane.wait_for("Top layer")
            settle_keys()
            pane.keys("Escape")
            settle_keys()
            pane.keys("n")

            pane.wait_for(f"Everything on {loop} is lost")
            settle_keys()
            pane.type(loop)  # the confirmation has the cursor
            settle_keys()
            pane.keys("Enter")
            screen = pane.wait_for(lambda s: "Put the disk in the UEFI machine" in s
                                   or "Error" in s or "failed" in s, timeout=1200)
            assert "Put the disk in the UEFI machine" in screen, pane.printed()[-4000:]
            pane.keys("Enter")  # Finish
            screen = pane.wait_for(lambda s: re.search(r"DBW-EXIT=\d", s) is not None,
                                   timeout=120)
            assert "DBW-EXIT=0" in screen, pane.printed()[-4000:]

            # What install wrote: GPT, the ESP's removable path and the wizard's own shim,
            # the labelled btrfs with the image from this machine's docker and the config.
            table = lab.run("sgdisk", "-p", loop).stdout
            assert "EF00" in table and label in table, table
            lab.run("partx", "-u", loop, check=False)
            lab.udev_settle()
            listing = lab.run("mdir", "-/", "-b", "-i", f"{loop}p1", "::/").stdout.split()
            assert {"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/dockerboot/shimx64.efi"} <= set(listing)
            btrfs = partitions.find_by_label(label)
            with lab.mounted(btrfs.device, tmp_path / "new", "ro,subvolid=5") as top:
                saved = config.load(top)
                assert saved is not None and saved.image == IMAGE and saved.own_grub
                repos = json.loads((top / "docker/image/btrfs/repositories.json").read_text())
                assert IMAGE in repos["Repositories"].get(IMAGE.split(":")[0], {}), repos
        finally:
            subprocess.run(["tmux", "-L", pane.server, "kill-server"], check=False)
            lab.run("sync")
            lab.run("partx", "-d", loop, check=False)
            lab.run("losetup", "-d", loop, check=False)
            lab.udev_settle()
