"""The shape of book/lib, read from its source with `ast` (nothing is imported):

- no import cycle between its modules,
- matplotlib imported only under lib/visualize,
- no function longer than 60 lines, no module longer than 500 lines.

The checkers are tested on small made-up packages first, so that a checker that sees nothing cannot
pass the real checks by accident.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "book" / "lib"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


# ---------------------------------------------------------------------------------------- the checkers
def module_names(root: Path) -> dict[str, Path]:
    """{"lib.visualize.fields": path} for every .py file under `root` (a package named root.name)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth (an import inside a function still ties the modules), except
    those under `if TYPE_CHECKING:`, which never run."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imported_names(name: str, path: Path) -> set[str]:
    """The absolute names of the modules (and of the names in them) that module `name` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in _imports(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        targets.add(module)
        targets.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import data`
    return targets


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package `root` that it imports.

    Importing lib.a.b runs lib/a/__init__.py first, so lib.a counts too, unless it is a package that
    contains the importing module (a submodule does not depend on its own package's __init__).
    """
    modules = module_names(root)
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in imported_names(name, path):
            parts = target.split(".")
            for end in range(2, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate in modules and not (name + ".").startswith(candidate + ".") and candidate != name:
                    edges.add(candidate)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def matplotlib_importers(root: Path) -> set[str]:
    """The modules under `root` that import matplotlib (or anything inside it), at any depth."""
    found = set()
    for name, path in module_names(root).items():
        if any(target.split(".")[0] == "matplotlib" for target in imported_names(name, path)):
            found.add(name)
    return found


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """"path:line name (n lines)" for every function or method over `limit` lines, nested ones included."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


def long_modules(root: Path, limit: int = MAX_MODULE_LINES) -> list[str]:
    """"path (n lines)" for every module over `limit` lines."""
    lengths = {path: len(path.read_text().splitlines()) for path in sorted(root.rglob("*.py"))}
    return [f"{path.relative_to(root.parent)} ({n} lines)" for path, n in lengths.items() if n > limit]


# ------------------------------------------------------------------------- the checkers on made-up code
def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_import_graph_resolves_relative_absolute_and_nested_imports(tmp_path):
    root = make_package(tmp_path, {
        "a.py": "from .sub.c import f\nimport os\n",
        "b.py": "def g():\n    from . import a\n",  # inside a function: still an edge
        "sub/__init__.py": "from .c import f\n",  # its own submodule: no edge back to sub
        "sub/c.py": "from ..b import g\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n",
        "d.py": "import pkg.a\n",
    })
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.c"}  # lib.sub's __init__ runs first
    assert graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.sub"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.b"}  # the TYPE_CHECKING import is not an edge
    assert graph["pkg.d"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub", "pkg.sub.c", "pkg.b", "pkg.a"]
    assert find_cycle({"x": {"y"}, "y": {"z"}, "z": set()}) is None


def test_matplotlib_and_length_checkers_see_what_they_should(tmp_path):
    long_body = "".join(f"    x{i} = {i}\n" for i in range(59))
    root = make_package(tmp_path, {
        "plots.py": "import matplotlib.pyplot as plt\n",
        "lazy.py": "def f():\n    from matplotlib import colors\n",
        "clean.py": "import math\n",
        "sizes.py": f"def fits():\n{long_body}\nclass C:\n    def too_long(self):\n"
                    + long_body.replace("    ", "        ") + "        pass\n",
    })
    assert matplotlib_importers(root) == {"pkg.plots", "pkg.lazy"}
    assert long_functions(root) == ["pkg/sizes.py:63 too_long (61 lines)"]  # fits() is exactly 60
    assert long_modules(root, limit=len((root / "sizes.py").read_text().splitlines()) - 1) == [
        f"pkg/sizes.py ({len((root / 'sizes.py').read_text().splitlines())} lines)"]


# ------------------------------------------------------------------------------------- book/lib itself
def test_lib_has_no_import_cycle():
    graph = import_graph(LIB)
    assert {"lib.visualize", "lib.receptive_field.graph"} <= set(graph)  # the walk found the packages
    assert "lib.receptive_field.geometry" in graph["lib.visualize.fields"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_only_lib_visualize_imports_matplotlib():
    importers = matplotlib_importers(LIB)
    assert "lib.visualize.fields" in importers  # the checker sees the drawings
    outside = sorted(name for name in importers if not (name + ".").startswith("lib.visualize."))
    assert outside == [], f"matplotlib imported outside lib.visualize by {outside}"


def test_no_function_over_60_lines():
    found = long_functions(LIB)
    assert found == [], "functions over 60 lines:\n" + "\n".join(found)


def test_no_module_over_500_lines():
    found = long_modules(LIB)
    assert found == [], "modules over 500 lines:\n" + "\n".join(found)


@pytest.mark.parametrize("package", ["receptive_field", "visualize"])
def test_packages_are_split(package):
    """Both packages are split by concern: no module in them holds most of the package."""
    paths = sorted((LIB / package).glob("*.py"))
    lengths = [len(path.read_text().splitlines()) for path in paths]
    assert len(paths) >= 4 and max(lengths) < 0.6 * sum(lengths)
