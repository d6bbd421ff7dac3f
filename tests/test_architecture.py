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
    "__main__": {"cli"},  # `python -m hwlink`
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


def hwlink_imports(path: Path, top_level_only: bool) -> set[str]:
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


def test_no_import_cycles_between_modules() -> None:
    graph = {name: {i for i in hwlink_imports(path, top_level_only=True) if i in MODULES and i != name}
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
