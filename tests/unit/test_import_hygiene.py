"""The core never imports Textual: each wizard module is imported in a fresh interpreter."""

import pkgutil
import subprocess
import sys

import pytest

import wizard

# Subpackages too (wizard.sandbox.*): walk_packages imports packages to list them.
MODULES = sorted(m.name for m in pkgutil.walk_packages(wizard.__path__, "wizard."))


def test_there_are_core_modules():
    assert "wizard.apply" in MODULES and "wizard.cli" in MODULES
    assert "wizard.sandbox" in MODULES and "wizard.sandbox.console" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_core_module_does_not_import_textual(module):
    code = (f"import sys, {module}; "
            "bad = [m for m in sys.modules "
            "if m == 'textual' or m.startswith(('textual.', 'screens'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
