import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ruff_clean():
    ruff = shutil.which("ruff")
    assert ruff, "ruff is part of the test extra"
    r = subprocess.run([ruff, "check", str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
