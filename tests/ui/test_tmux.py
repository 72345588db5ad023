"""A real terminal: tmux runs the installed ``dockerboot-wizard sandbox`` and we read the screen.

No Pilot here: the installed entry point runs in a 100x32 tmux pane against
the product's sandbox (``wizard.sandbox``: loop GPT disk, real udevd, a
private dockerd with the btrfs driver, the debootstrapped sample image).
Keys go in with ``send-keys``, the screen comes back with ``capture-pane``.
The partition's label must show up in the partition table (read from udev)
and the sample image in the images table; quitting must remove the sandbox.
The demo test goes on through Apply to a real login on the booted disk's
serial console, in the same terminal.
A private tmux server (``-L``) keeps other tmux users untouched.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from tests.lab.tmux import Pane, sandbox_dir
from wizard.disk import partitions
from wizard.sandbox import SAMPLE_IMAGE

# The sandbox's wizard lists every btrfs partition of the machine.
pytestmark = [pytest.mark.lab, pytest.mark.machine_wide]
KERNEL_LINE = re.compile(r"\[ *\d+\.\d+\] [^\n]*\n+")
"""A kernel message on the serial console, with the blank lines the pane adds; also in the
middle of a line (``tmux-box[   30.25] Initializing XFRM netlink socket`` then `` login:``)."""

SANDBOX_READY = 900  # first run on a fresh machine debootstraps the sample rootfs


def test_installed_wizard_in_tmux_shows_udev_label_and_sample_image(pane: Pane) -> None:
    pane.keys("dockerboot-wizard sandbox; echo DBW-EXIT=$?", "Enter")

    # Welcome: the sandbox disk has no saved config, so pick "Full setup" (the last option).
    pane.wait_for("Full setup", timeout=SANDBOX_READY)
    label = re.search(r"LABEL=(dbw-[0-9a-f]{8})", pane.printed())
    assert label, pane.printed()
    label = label.group(1)
    workdir = sandbox_dir(pane.printed())
    assert workdir is not None and (workdir / "disk.img").exists()
    pane.keys("End", "Enter")

    # Partition: the label comes from udev, in the table, on the sandbox's loop device.
    screen = pane.wait_for(lambda s: "Pick the btrfs partition" in s and label in s)
    row = next(line for line in screen.splitlines() if label in line)
    assert "/dev/loop" in row and "p2" in row, row
    assert "yes" in row, f"the docker data-root on the sandbox partition is not shown: {row}"
    pane.keys("n")

    # Docker: the private dockerd (btrfs driver, data-root on the partition) passes.
    pane.wait_for("All checks passed")
    pane.keys("n")

    # Images: the sample image built in the sandbox is listed with its tag.
    name, tag = SAMPLE_IMAGE.rsplit(":", 1)
    screen = pane.wait_for(lambda s: name in s)
    row = next(line for line in screen.splitlines() if name in line)
    assert tag in row, row

    # Quit (asks, since nothing was applied); the sandbox removes itself.
    pane.keys("q")
    pane.wait_for("Quit without applying")
    pane.keys("y")
    screen = pane.wait_for(lambda s: re.search(r"DBW-EXIT=\d", s) is not None, timeout=180)
    assert "DBW-EXIT=0" in screen, screen
    assert not workdir.exists(), f"the sandbox left {workdir} behind"
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
    assert all(p.label != label for p in partitions.list_btrfs()), \
        f"LABEL={label} is still attached after the sandbox exited"


def open_in_tree(pane: Pane, name: str) -> None:
    """Open ``name`` in the Top layer's file tree by keys: Down from the root, then Enter.

    The tree has the focus and its cursor on the root ("top layer"); the
    rows are read from the screen (the tree is the left column).
    """
    rows = [line[:40] for line in pane.screen().splitlines()]
    root = next(i for i, row in enumerate(rows) if "top layer" in row and "▼" in row)
    row = next(i for i, row in enumerate(rows)
               if i > root and re.search(rf"─\s+{re.escape(name)}\b", row))
    pane.keys(*["Down"] * (row - root))
    time.sleep(0.5)
    pane.keys("Enter")


def settle_keys() -> None:
    """Let the app read the keys sent so far (an Escape followed at once by a letter
    reads as Alt+letter; a tab switch must land before the text typed into it)."""
    time.sleep(0.7)


def test_demo_in_tmux_applies_then_logs_in_on_the_booted_console(pane: Pane) -> None:
    """What `sudo make demo` runs, keys only: the top layer edited, Apply, boot, log in.

    On the Top layer step, by keys: etc/fstab opened from the tree, the
    /var/lib/docker line added from the fstab helper (f4, enter), the
    hostname and a user typed into the users form (f2; the password twice).
    On the Done step, Try in a VM (t) boots the configuration in QEMU over a
    copy of the partition and shows its login prompt; then Finish (Enter).
    The sample image's own systemd boots to a login prompt in this terminal;
    the user logs in with the password typed there and the console shows the
    hostname, her groups and the fstab line; Ctrl-] leaves the console and
    powers the VM off.
    """
    hostname, user, password = "tmux-box", "carol", "typed in tmux"
    pane.keys("dockerboot-wizard sandbox; echo DBW-EXIT=$?", "Enter")
    pane.wait_for("Full setup", timeout=SANDBOX_READY)
    workdir = sandbox_dir(pane.printed())
    assert workdir is not None
    found = re.search(r"LABEL=(dbw-[0-9a-f]{8})", pane.printed())
    assert found, pane.printed()
    docker_line = f"LABEL={found.group(1)} /var/lib/docker btrfs"
    pane.keys("End", "Enter")
    pane.wait_for("Pick the btrfs partition")
    pane.keys("n")
    pane.wait_for("All checks passed")
    pane.keys("n")
    pane.wait_for("boots from subvolume")
    pane.keys("n")

    # Files (f1, shown first): the tree has the focus; open etc/fstab from it.
    pane.wait_for(lambda s: "Hostname & users (f2)" in s and re.search(r"─\s+fstab\b", s))
    settle_keys()
    open_in_tree(pane, "fstab")
    pane.wait_for("etc/fstab   (ctrl+s keeps it")
    # fstab helper (f4): its first line (docker's data-root) is highlighted; enter adds it.
    pane.keys("F4")
    pane.wait_for(lambda s: "Lines for the discovered partitions" in s and docker_line in s)
    settle_keys()
    pane.keys("Enter")
    pane.wait_for(lambda s: f"+{docker_line}" in s  # the diff of etc/fstab
                  or "etc/fstab already has this line" in s)
    # Hostname & users (f2): f2 puts the cursor in the hostname field.
    pane.keys("F2")
    pane.wait_for("New user (created")
    settle_keys()
    pane.type(hostname)
    pane.wait_for(hostname)
    pane.keys("Tab")
    settle_keys()
    pane.type(user)
    pane.wait_for(f"{user} ")
    for _ in range(2):  # the password, twice (masked)
        pane.keys("Tab")
        settle_keys()
        pane.type(password)
    settle_keys()
    pane.keys("Tab")  # the "admin" box: space ticks it
    settle_keys()
    pane.keys("Space")
    settle_keys()
    pane.keys("Tab")
    settle_keys()
    pane.keys("Enter")  # the "Add user" button
    pane.wait_for(f"{user} (new password, administrator)")
    pane.keys("Escape")  # out of the field the cursor went back to: n is Next again
    settle_keys()
    pane.keys("n")
    pane.wait_for("Built (installed at Review)", timeout=900)
    pane.keys("n")
    # Found: the path after "refind.conf:" (maybe on the next line); not the override's label.
    pane.wait_for(lambda s: re.search(r"refind\.conf:\s+/", s) is not None)
    pane.keys("n")
    pane.wait_for("Nothing has been written yet")
    pane.keys("a")
    pane.wait_for("At the next boot", timeout=600)
    # Done: Try in a VM (t) boots what the next boot boots, over a copy, and says what the
    # VM's console showed: the login prompt with the hostname typed above. Then leave.
    pane.keys("t")
    pane.wait_for("Trying in a VM", timeout=60)
    pane.wait_for(lambda s: f"reached the login prompt ({hostname} login:)" in s
                  or "fix it before you reboot" in s, timeout=1500)
    screen = pane.wait_for(f"{hostname} login:")  # the console's last lines, in the work log
    assert "fix it before you reboot" not in screen, pane.printed()[-4000:]
    pane.keys("Enter")

    pane.wait_for("[Y/n]", timeout=120)
    assert "applied: LABEL=" in pane.printed()
    pane.keys("y", "Enter")
    pane.wait_for(lambda s: f"{hostname} login:" in KERNEL_LINE.sub("", s), timeout=900)
    assert f"log in as {user} with the password you chose" in pane.printed()
    pane.type(user)
    pane.keys("Enter")
    pane.wait_for("Password:", timeout=120)
    pane.type(password)
    pane.keys("Enter")
    pane.wait_for(f"{user}@{hostname}", timeout=120)  # the shell's prompt
    pane.type("id -un; hostname; echo $HOME; id -nG; grep -c ' /var/lib/docker ' /etc/fstab")
    pane.keys("Enter")
    # Her home on the persistent /home, the image's sudo group (an administrator), and
    # the fstab line added in the helper, once.
    answer = re.compile(rf"^{user} *\n{hostname} *\n/home/{user} *\n.*\bsudo\b.*\n1 *$",
                        re.MULTILINE)
    # The guest's kernel may print on this console meanwhile (docker starting:
    # "[   48.385300] Initializing XFRM netlink socket" between two answers).
    pane.wait_for(lambda s: answer.search(KERNEL_LINE.sub("", s)) is not None, timeout=120)
    pane.type("grep ' /var/lib/docker ' /etc/fstab")
    pane.keys("Enter")
    pane.wait_for(docker_line, timeout=60)

    pane.keys("C-]")
    screen = pane.wait_for(lambda s: re.search(r"DBW-EXIT=\d", s) is not None, timeout=300)
    printed = pane.printed()
    assert "DBW-EXIT=0" in screen, printed[-4000:]
    assert "left the console; the VM is off" in printed, printed[-4000:]
    assert password not in printed  # getty does not echo it
    assert not workdir.exists(), f"the sandbox left {workdir} behind"
