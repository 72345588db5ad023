"""docs/architecture.md is the project's map: its tables must match the tree and the contracts."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
ROW = re.compile(r"^\| `(?P<path>(?:wizard|screens)/(?:\w+/)?)`(?: \(top\))? \|"
                 r".*\| (?P<mods>[^|]*) \|$")


def documented() -> dict[str, set[str]]:
    """Package directory -> the modules its row lists, for every row of the two tables."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match["path"].rstrip("/")] = set(re.findall(r"`(\w+)`", match["mods"]))
    return rows


def in_tree() -> dict[str, set[str]]:
    """Package directory -> its modules (``__init__`` aside), as the tree holds them."""
    tree = {}
    for top in ("wizard", "screens"):
        for init in (REPO / top).rglob("__init__.py"):
            pkg = init.parent
            if pkg.name == "__pycache__":
                continue
            tree[str(pkg.relative_to(REPO))] = {p.stem for p in pkg.glob("*.py")} - {"__init__"}
    tree.pop("wizard")  # the core's own __init__ holds no module of its own
    return tree


def test_the_map_lists_every_package_and_module_of_the_tree():
    assert documented() == in_tree()


def test_no_package_holds_more_than_a_dozen_modules():
    crowded = {pkg: len(mods) for pkg, mods in in_tree().items() if len(mods) > 12}
    assert crowded == {}


def test_the_core_table_is_in_the_order_of_the_layers_contract():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts
                  if c["type"] == "layers" and c["layers"][0].startswith("wizard."))
    flat = [name.strip().replace(".", "/") for layer in layers for name in layer.split("|")]
    doc = [pkg for pkg in documented() if pkg.startswith("wizard/")]
    assert doc == flat


def test_the_map_lists_every_part_of_the_hook():
    rows = re.findall(r"^\| `(dockerboot-[\w-]+\.sh)` \|", DOC.read_text(), re.M)
    assert sorted(rows) == sorted(p.name for p in (REPO / "assets/hook").glob("dockerboot-*.sh"))


def test_the_hook_core_sources_every_part_it_ships():
    core = (REPO / "assets/hook/dockerboot-core.sh").read_text()
    parts = re.search(r"^_db_parts='([^']*)'", core, re.M)
    assert parts, "the core's one list of its parts (_db_parts) is gone"
    shipped = {p.name for p in (REPO / "assets/hook").glob("dockerboot-*.sh")}
    sourced = {f"dockerboot-{name}.sh" for name in parts[1].split()}
    # dockerboot-assess.sh is loaded by the main flow itself (it may be missing: a warning).
    assert shipped - sourced == {"dockerboot-core.sh", "dockerboot-assess.sh"}
    assert sourced <= shipped
