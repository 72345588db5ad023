"""The core never imports Textual: the import-linter contract, and each module imported alone.

The contract (``[tool.importlinter]`` in pyproject.toml) reads every import
statement, also those inside functions; the fresh interpreters prove what
really gets loaded.
"""

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wizard

# Subpackages too (wizard.sandbox.*): walk_packages imports packages to list them.
MODULES = sorted(m.name for m in pkgutil.walk_packages(wizard.__path__, "wizard."))


REPO = Path(__file__).resolve().parents[2]


def test_import_contract_holds():
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is a test dependency: pip install -e '.[test]'"
    result = subprocess.run([lint, "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_there_are_core_modules():
    assert "wizard.flows.apply" in MODULES and "wizard.cli.main" in MODULES
    assert "wizard.sandbox" in MODULES and "wizard.sandbox.console" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_core_module_does_not_import_textual(module):
    code = (f"import sys, {module}; "
            "bad = [m for m in sys.modules "
            "if m == 'textual' or m.startswith(('textual.', 'screens'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_first_screen_loads_no_docker_udev_or_http_library():
    # Start-up (benchmarks/tui_startup.py): the SDKs load in workers, after the first paint.
    code = ("import sys, screens.app, screens.wizard_app, screens.flows.welcome, "
            "wizard.flows.services; "
            "heavy = [m for m in ('docker', 'pyudev', 'requests') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
