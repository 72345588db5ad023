"""Benchmark: time from process start to the wizard's first interactive screen.

Side by side, in the same run and with the same interpreter, each as a fresh
process (so imports are never cached in-process):

- ``python -c "pass"``: the interpreter alone;
- ``python -c "import textual"``: the import alone;
- a minimal Textual app (Header, DataTable, Button, Footer) to its first
  screen through the same auto-pilot: the reference the wizard is held to;
- ``dockerboot-wizard --help``: the headless CLI (must not import Textual);
- the wizard up to its first interactive screen: the same ``make_app`` the
  installed entry point runs (``screens.app.run_tui``), headless, stopped by
  an auto-pilot as soon as the Welcome screen has its mode list (the user
  can act on it).  The child prints the wall-clock time at that moment, so
  the app's teardown is not counted.

By default the wizard runs over the UI tests' ``FakeServices`` (UI start-up
only, deterministic); ``--real`` uses ``RealServices`` (udev and the daemon at
``DOCKER_HOST``; needs root and a btrfs partition) to include the core's
first queries.

    python3 -m benchmarks.tui_startup [--runs 9] [--real]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY = "DBW-READY "

# Runs in the child: build the app exactly as run_tui does, stop at the first screen.
WIZARD_TO_FIRST_SCREEN = """
import sys, time
from screens.wizard_app import make_app
from screens.flows.welcome import WelcomeScreen
if {real!r}:
    from wizard.flows.services import RealServices as S
    services = S()
else:
    from tests.ui.fakes import FakeServices as S
    services = S()

async def first_screen(pilot):
    app = pilot.app
    while not (isinstance(app.screen, WelcomeScreen) and app.screen.found is not None):
        await pilot.pause(0.005)
    print("{ready}%.6f" % time.time(), flush=True)
    app.exit()

make_app(services).run(headless=True, size=(100, 32), auto_pilot=first_screen)
"""


# The reference: a minimal Textual app of the same widgets, first screen by the same pilot.
MINIMAL_APP = """
import time
from textual.app import App
from textual.widgets import Button, DataTable, Footer, Header

class Minimal(App):
    def compose(self):
        yield Header()
        yield DataTable()
        yield Button("Next")
        yield Footer()

    def on_mount(self):
        self.query_one(DataTable).add_columns("label", "size")

async def first_screen(pilot):
    await pilot.pause()
    print("{ready}%.6f" % time.time(), flush=True)
    pilot.app.exit()

Minimal().run(headless=True, size=(100, 32), auto_pilot=first_screen)
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to the child's READY line, or to its exit without one."""
    start = time.time()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    end = time.time()
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        if line.startswith(READY):
            return float(line[len(READY):]) - start
    return end - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per command (median shown)")
    parser.add_argument("--real", action="store_true",
                        help="RealServices (udev + DOCKER_HOST) instead of the UI fakes")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    cli = shutil.which("dockerboot-wizard")
    commands: list[tuple[str, list[str]]] = [
        ('python -c "pass"', [py, "-c", "pass"]),
        ('python -c "import textual"', [py, "-c", "import textual"]),
    ]
    if cli:
        commands.append(("dockerboot-wizard --help", [cli, "--help"]))
    minimal = "minimal Textual app → first screen"
    commands.append((minimal, [py, "-c", MINIMAL_APP.format(ready=READY)]))
    wizard_code = WIZARD_TO_FIRST_SCREEN.format(real=args.real, ready=READY)
    label = f"wizard → first screen ({'real' if args.real else 'fake'} services)"
    commands.append((label, [py, "-c", wizard_code]))

    times: dict[str, list[float]] = {name: [] for name, _ in commands}
    timed(commands[-1][1], env)  # warm the OS page cache and .pyc files once
    for _ in range(args.runs):
        for name, cmd in commands:  # interleaved: machine noise hits every row alike
            times[name].append(timed(cmd, env))

    reference = statistics.median(times['python -c "import textual"'])
    app_reference = statistics.median(times[minimal])
    width = max(len(name) for name in times)
    print(f"{'command':{width}}  {'median ms':>9}  {'min ms':>7}  {'× import textual':>16}"
          f"  {'× minimal app':>13}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:{width}}  {median * 1000:9.0f}  {min(values) * 1000:7.0f}  "
              f"{median / reference:16.2f}  {median / app_reference:13.2f}")
    print(f"({args.runs} runs each, interleaved; Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
