"""Protects the package's layering: no import cycles between modules (imports inside
functions included), and the layers (models -> tagging -> collection -> outputs -> cli)
depend on each other one way only. Read from the source with `ast`; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "python" / "autotags"
# Modules built from cpp/ rather than read from a .py file: leaves of the graph.
EXTENSION_MODULES = frozenset({"autotags._engine"})


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(current: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def import_graph(root: Path, extensions: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """Module -> the package's own modules it imports, anywhere in its body."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    modules = files.keys() | extensions
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                # `from pkg import mod` imports the module mod; `from pkg import name`, pkg.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == 1:
                return [*path[path.index(following):], following]
            if following not in state and (cycle := visit(following)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer_graph(graph: dict[str, set[str]], package: str) -> dict[str, set[str]]:
    """The same graph between the package's first-level folders and modules; the
    package's own __init__ (the public API that gathers them all) is left out."""
    def layer(module: str) -> str:
        return module.split(".")[1]

    layers: dict[str, set[str]] = {}
    for module, imported in graph.items():
        if module == package:
            continue
        layers.setdefault(layer(module), set()).update(
            layer(target) for target in imported if target != package and layer(target)
            != layer(module))
    return layers


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph(PACKAGE_ROOT, EXTENSION_MODULES))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_layers_depend_on_each_other_one_way():
    layers = layer_graph(import_graph(PACKAGE_ROOT, EXTENSION_MODULES), "autotags")
    cycle = find_cycle(layers)
    assert cycle is None, "layers import each other in a circle: " + " -> ".join(cycle or [])
    # The data flow, file by file: models know nothing of tagging, tagging nothing of the
    # collection, and nothing but the command line knows the command line.
    assert not layers["models"] & {"tagging", "collection", "outputs", "cli", "vocabulary"}
    assert not layers["tagging"] & {"collection", "outputs", "cli"}
    assert not any("cli" in imported for name, imported in layers.items() if name != "cli")


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "throwaway"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "first.py").write_text("from .inner import second\n")
    (package / "inner" / "second.py").write_text("import os\nfrom .. import third\n")
    (package / "third.py").write_text("def late():\n    from .first import something\n")
    graph = import_graph(package)
    assert graph["throwaway.first"] == {"throwaway.inner.second"}
    assert find_cycle(graph) == ["throwaway.first", "throwaway.inner.second",
                                 "throwaway.third", "throwaway.first"]
    (package / "third.py").write_text("def late():\n    import os\n")
    assert find_cycle(import_graph(package)) is None


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def importers(graph: dict[str, set[str]], under: str, target: str) -> list[str]:
    """The modules below `under` that import `target` or a module below it (both a
    module or package name)."""
    return sorted(module for module, imported in graph.items()
                  if _within(module, under) and any(_within(t, target) for t in imported))


# Which room may not lean on which: the orchestrator and the store are the centre, and
# what sits around them takes only the small rooms it needs.
SCAN_ORCHESTRATOR = ("scanning", "planning", "runners", "batches", "inventory", "cluster")
FORBIDDEN = [
    *(("autotags.outputs", f"autotags.collection.{room}") for room in SCAN_ORCHESTRATOR),
    ("autotags.collection.store", "autotags.collection.scanning"),
    ("autotags.collection.store", "autotags.tagging"),  # the store knows tags, not taggers
    ("autotags.collection.discovery", "autotags.collection.store"),  # file identity suffices
    ("autotags.vocabulary", "autotags.models.catalogue"),  # a data path is a location
    ("autotags.collection.files", "autotags.collection.store"),
    ("autotags.collection.policy", "autotags.collection.scanning"),
    ("autotags.vocabulary", "autotags.models"),  # model management is not its business
    # The review page is a face like the command line: nothing below it leans on it.
    *((f"autotags.{layer}", "autotags.review")
      for layer in ("models", "tagging", "collection", "vocabulary", "outputs")),
]
MAX_MODULE_LINES = 450


def test_the_rooms_around_the_centre_do_not_lean_on_it():
    graph = import_graph(PACKAGE_ROOT, EXTENSION_MODULES)
    for under, target in FORBIDDEN:
        assert not importers(graph, under, target), f"{under} imports {target}"
    assert graph["autotags.errors"] == set()  # every layer may raise them

def test_every_module_is_small_enough_to_hold_one_job():
    lengths = {path.relative_to(PACKAGE_ROOT): len(path.read_text(encoding="utf-8").splitlines())
               for path in PACKAGE_ROOT.rglob("*.py")}
    assert lengths  # the package was found
    too_long = {str(path): lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def throwaway_package(root: Path, modules: dict[str, str]) -> Path:
    """A package `throwaway` below `root` with these modules (path -> source); every
    folder on the way is a package."""
    package = root / "throwaway"
    for relative, source in modules.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in (path.parent, *path.parent.parents):
            if folder == root:
                break
            (folder / "__init__.py").touch()
        path.write_text(source)
    return package


@pytest.mark.parametrize(("modules", "importer", "target", "fixed"), [
    ({"collection/scanning.py": "",  # an import inside a function counts too
      "outputs/xmp.py": "def late():\n    from ..collection import scanning\n"},
     "outputs/xmp.py", "collection.scanning", "from ..collection import files\n"),
    ({"collection/store/search.py": "",  # a rule on a package covers the modules inside it
      "collection/discovery.py": "from .store.search import something\n"},
     "collection/discovery.py", "collection.store", "from . import files\n"),
])
def test_the_room_rules_see_a_forbidden_import(tmp_path, modules, importer, target, fixed):
    package = throwaway_package(tmp_path, modules)
    under = "throwaway." + importer.removesuffix(".py").replace("/", ".")
    assert importers(import_graph(package), under, f"throwaway.{target}") == [under]
    (package / importer).write_text(fixed)
    assert importers(import_graph(package), under, f"throwaway.{target}") == []


TESTS_ROOT = Path(__file__).resolve().parents[1]


def test_the_tests_mirror_the_package():
    """One folder of tests per layer (and the engine's, the project's own rules), with
    what they share in `helpers`; no test module lies loose beside them."""
    layers = {p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in TESTS_ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders - layers == {"engine", "project", "helpers"}
    assert layers <= folders
    assert not list(TESTS_ROOT.glob("test_*.py"))
    assert (TESTS_ROOT / "helpers" / "__init__.py").is_file()
