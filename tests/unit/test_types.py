"""``mypy --strict`` is clean on ``wizard/`` and ``screens/`` (``[tool.mypy]`` in pyproject.toml).

mypy keeps its cache in ``.mypy_cache`` at the repository root: a run after
the first checks only what changed.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_mypy_strict_clean():
    assert importlib.util.find_spec("mypy"), "mypy is a test dependency: pip install -e '.[test]'"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Success" in result.stdout, output
