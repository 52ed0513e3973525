"""The import graph of the top-level packages has a direction (docs/architecture.md).

scorer/ is the core: it imports none of the packages beside it (models/, replay/, streams/,
deploy/), which import it; what they add to it they declare as entry points
(scorer/plugins.py). Among the top-level packages there is no cycle. Read from the source
(AST), so an import inside a function or behind ``TYPE_CHECKING`` counts as much as one at
the top, and a module name handed to ``importlib.import_module`` counts too.
"""

from __future__ import annotations

import ast
import itertools
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import ROOT

CORE = "scorer"
PACKAGES = (CORE, "models", "replay", "streams", "deploy")


def _imports(path: Path, package: str) -> Iterator[tuple[str, int]]:
    """(top-level name imported, line) for every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import stays inside its own top-level package.
            yield (package if node.level else (node.module or "").split(".")[0]), node.lineno
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value.lstrip(".").split(".")[0] or package, node.lineno


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importer package, imported package) -> where, over every module of PACKAGES."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, line in _imports(path, package):
                if name in PACKAGES and name != package:
                    edges.setdefault((package, name), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def test_the_core_imports_none_of_the_packages_beside_it() -> None:
    upward = {edge: where for edge, where in import_graph().items() if edge[0] == CORE}
    assert not upward, f"scorer/ must not import these (move it down, or add an entry point): {upward}"


def test_no_cycle_among_the_top_level_packages() -> None:
    edges = set(import_graph())
    reach = {p: {b for a, b in edges if a == p} for p in PACKAGES}
    for _ in PACKAGES:  # transitive closure: at most len(PACKAGES) rounds
        for p in PACKAGES:
            reach[p] |= set(itertools.chain.from_iterable(reach[q] for q in reach[p]))
    cycles = sorted(p for p in PACKAGES if p in reach[p])
    assert not cycles, f"import cycle through {cycles}: {sorted(edges)}"


def test_every_package_is_installed_under_a_name_of_its_own() -> None:
    """pyproject.toml lists the packages one by one (the folders beside the core install as
    scorer_<folder>): a new subpackage missing from the list would be missing from the wheel."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folder_of = {name: folder for name, folder in tool["package-dir"].items()}
    assert set(folder_of) == {f"scorer_{p}" for p in PACKAGES if p not in (CORE, "deploy")}
    installed = {name: ROOT / folder_of.get(name.split(".")[0], name.split(".")[0]) / Path(*name.split(".")[1:])
                 for name in tool["packages"]}
    folders = {init.parent for p in (CORE, *folder_of.values()) for init in (ROOT / p).rglob("__init__.py")}
    assert sorted(map(str, folders - set(installed.values()))) == [], "packages missing from pyproject.toml"
    # A folder without __init__.py is listed only to ship its data (setuptools warns otherwise).
    data_only = {n for n, d in installed.items() if not (d / "__init__.py").is_file()}
    assert sorted(n for n in data_only if n not in tool["package-data"] or any(installed[n].glob("*.py"))) == []


def test_the_checker_sees_the_imports_it_must_catch(tmp_path: Path) -> None:
    # Function-level, relative and by-name imports all count.
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import models.train\n    from . import x\n"
                      "    importlib.import_module('replay.cli')\n")
    assert sorted(_imports(module, "scorer")) == [("models", 2), ("replay", 4), ("scorer", 3)]
