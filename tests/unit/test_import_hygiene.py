"""The core never imports Textual, its packages stay in layers, and no import makes a circle.

The contracts (``[tool.importlinter]`` in pyproject.toml) read every import
statement, also those inside functions; the fresh interpreters prove what
really gets loaded; the circle finder walks the same graph module by module.
"""

import pkgutil
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
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
    assert "3 kept, 0 broken" in result.stdout


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every import circle of ``graph``: its strongly connected parts of two or more modules.

    Tarjan's algorithm without recursion; imports inside functions count too
    (grimp reads every import statement), since a lazy import is still a circle
    in the design.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def imported_by(module: str) -> Iterator[str]:
        return iter(sorted(graph.find_modules_directly_imported_by(module)))

    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, imported_by(root))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, imported_by(child)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.append(member)
                    if member == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def test_no_import_circle_anywhere():
    graph = grimp.build_graph("wizard", "screens", cache_dir=None)
    assert circles(graph) == []


def test_a_planted_circle_is_found(tmp_path, monkeypatch):
    pkg = tmp_path / "planted"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from planted import top  # a lazy import\n")
    (pkg / "mid.py").write_text("from planted import low\n")
    (pkg / "top.py").write_text("from planted import mid\n")
    (pkg / "alone.py").write_text("from planted import top\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("planted", cache_dir=None)
    assert circles(graph) == [["planted.low", "planted.mid", "planted.top"]]


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
