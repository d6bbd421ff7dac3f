"""Dependency arrows point one way: lines <- drivers; sync and edl stand alone; runtime and cli on top."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwlink"
BASE = {"hwlink", "hwlink.errors", "hwlink.units", "hwlink.clock"}
# layer -> the layers its modules may import (besides itself and BASE)
ALLOWED = {
    "base": set(),
    "lines": set(),
    "sync": set(),
    "edl": set(),
    "drivers": {"lines", "sync"},
    "testing": {"lines", "sync", "drivers", "cli"},  # the simulators' demo entry points run the CLI
    "glue": {"sync", "edl"},
    "runtime": {"lines", "sync", "edl", "drivers", "testing", "glue"},
    "cli": {"lines", "sync", "edl", "drivers", "testing", "glue", "runtime"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if module in BASE:
        return "base"
    if parts[1] == "edl_correction":
        return "glue"
    return parts[1]


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def hwlink_imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every hwlink module ``path`` imports, including imports inside functions (they hide cycles)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hwlink"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hwlink"))
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def test_every_module_is_in_a_known_layer() -> None:
    assert {layer_of(name) for name in MODULES} <= set(ALLOWED)


def test_imports_follow_the_layers() -> None:
    violations = []
    for name, path in MODULES.items():
        layer = layer_of(name)
        for imported in hwlink_imports(path, top_level_only=False):
            target = layer_of(imported)
            if target not in {"base", layer} | ALLOWED[layer]:
                violations.append(f"{name} imports {imported}")
    assert violations == []


def all_imports(path: Path) -> set[str]:
    """Every import anywhere in the file (module level, inside functions, for type checking), with the modules
    ``from hwlink.x import y`` names when y is a module: a cycle through any of them is a cycle of the design."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hwlink"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("hwlink"))
    return found


def test_no_import_cycles_between_modules() -> None:
    graph = {name: {i for i in all_imports(path) if i in MODULES and i != name}
             for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for neighbour in graph[node]:
            if state.get(neighbour) == 1 and not node.startswith(neighbour + "."):
                return trail + [node, neighbour]  # a package importing its own submodule is no cycle
            if neighbour not in state and (cycle := visit(neighbour, trail + [node])):
                return cycle
        state[node] = 2
        return None

    cycles = [cycle for name in graph if name not in state and (cycle := visit(name, []))]
    assert cycles == []


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hwlink.runtime import engine\n"
                      "def f():\n    from hwlink.runtime import mlink\n    import hwlink.lines\n")
    assert all_imports(source) == {"hwlink.runtime", "hwlink.runtime.engine", "hwlink.runtime.mlink", "hwlink.lines"}


def test_worker_side_layers() -> None:
    """ports <- host <- mlink / oe / clocksync / storage <- worker: the host loop knows no scripting API."""
    below = {"hwlink.runtime.host": {"hwlink.runtime.mlink", "hwlink.runtime.oe", "hwlink.runtime.clocksync",
                                     "hwlink.runtime.storage", "hwlink.runtime.worker"},
             "hwlink.runtime.ports": {"hwlink.runtime.host", "hwlink.runtime.mlink", "hwlink.runtime.oe"}}
    for name, forbidden in below.items():
        assert not (hwlink_imports(MODULES[name]) & forbidden), name
