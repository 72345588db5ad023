"""The wheel ships the hook assets with their run bits (built for real with python -m build)."""

import stat
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_assets_executable(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        entry_points = zf.read(next(n for n in infos if n.endswith("entry_points.txt"))).decode()
    assert "dockerboot-wizard = screens.app:main" in entry_points
    repo_assets = [p for p in (REPO / "assets").rglob("*") if p.is_file()]
    assert repo_assets, "assets/ is empty"
    for path in repo_assets:
        name = "wizard/_assets/" + path.relative_to(REPO / "assets").as_posix()
        assert name in infos, f"{name} missing from the wheel"
        if path.stat().st_mode & stat.S_IXUSR:
            mode = infos[name].external_attr >> 16
            assert mode & stat.S_IXUSR, f"{name} lost its exec bit in the wheel"
    hook_core = "wizard/_assets/hook/dockerboot-core.sh"
    assert hook_core in infos
    # Subpackages (wizard/sandbox/) ship too: every module of the repository is in the wheel.
    for package in ("wizard", "screens"):
        for path in (REPO / package).rglob("*.py"):
            name = path.relative_to(REPO).as_posix()
            assert name in infos, f"{name} missing from the wheel"
