"""A real terminal for the TUI tests: tmux runs the installed wizard, we read the screen.

Keys go in with ``send-keys``, the screen comes back with ``capture-pane``;
a private tmux server (``-L``) keeps other tmux users untouched.  The
``pane`` fixture's teardown kills the server: SIGHUP reaches the wizard,
whose handler unwinds what it made (the sandbox's disk, an install's daemon).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")


@dataclass
class Pane:
    """One tmux pane on a private server; ``log`` receives everything printed in it."""

    server: str
    log: Path

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.server, *args], check=True,
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "wiz", *keys)

    def type(self, text: str) -> None:
        """Type ``text`` literally (no key names), e.g. a password with spaces."""
        self.tmux("send-keys", "-t", "wiz", "-l", text)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "wiz")

    def printed(self) -> str:
        return ANSI.sub("", self.log.read_text(errors="replace")) if self.log.exists() else ""

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 60) -> str:
        """Poll the visible screen until ``what`` is on it; fail with the screen otherwise."""
        test = what if callable(what) else (lambda text: what in text)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if test(text):
                return text
            time.sleep(0.3)  # a real terminal has no "pause until idle": poll it
        pytest.fail(f"waited {timeout:.0f}s for {what!r}; the screen shows:\n{text}\n"
                    f"--- printed so far ---\n{self.printed()[-3000:]}")


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    assert shutil.which("tmux"), "tmux is not installed (sudo make setup)"
    assert shutil.which("dockerboot-wizard"), "dockerboot-wizard is not installed"
    p = Pane(server=f"dbw-{uuid.uuid4().hex[:8]}", log=tmp_path / "pane.log")
    p.tmux("new-session", "-d", "-s", "wiz", "-x", "100", "-y", "32", "sh")
    p.tmux("pipe-pane", "-t", "wiz", "-o", f"cat >> {p.log}")
    try:
        yield p
    finally:
        workdir = sandbox_dir(p.printed())
        # SIGHUP reaches the wizard: its handler unwinds the sandbox (dockerd, loop, files).
        subprocess.run(["tmux", "-L", p.server, "kill-server"], check=False)
        deadline = time.monotonic() + 120
        while workdir and workdir.exists() and time.monotonic() < deadline:
            time.sleep(0.5)


def sandbox_dir(printed: str) -> Path | None:
    match = re.search(r"creating the sandbox disk in (\S+)", printed)
    return Path(match.group(1)) if match else None
