"""No import cycles in edge/ or convert/: the data flows one way, and so do the imports.

The graph is read with `ast`, so every import counts, the ones inside functions too (a lazy
import hides a cycle from Python at start-up, not from a reader). An edge goes to the module
an import names: `from pkg import name` goes to `pkg.name` where that is a module, else to
`pkg` (its `__init__.py`).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "convert")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(module: str, path: Path, level: int, name: str | None) -> str:
    """The absolute dotted name of a (possibly relative) `from ... import` base."""
    if level == 0:
        return name or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{name}" if name else package


def _runtime_nodes(tree: ast.AST):
    """Every node that can run, so not the body of ``if TYPE_CHECKING:`` (an import there
    only names a type for the reader and the type checker; it never executes)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}

    def add(src: str, target: str) -> None:
        # `import edge.sinks.web` names edge.sinks.web; a name that is not a module of ours
        # (a class, a third-party package) falls back to its longest known prefix.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != src:
            graph[src].add(target)

    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(module, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path, node.level, node.module)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    add(module, full if full in modules else base)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _path_within(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete loop through a component, e.g. 'a -> b -> a', for the failure message."""
    members = set(component)
    start = component[0]
    trail, seen, v = [start], {start}, start
    while True:
        nxt = sorted(graph[v] & members)
        back = [w for w in nxt if w == start]
        if back and len(trail) > 1:
            return " -> ".join(trail + [start])
        fresh = [w for w in nxt if w not in seen]
        if not fresh:  # a component always closes a loop; this only guards the message
            return " <-> ".join(component)
        v = fresh[0]
        trail.append(v)
        seen.add(v)


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # edge/cli.py imports its commands lazily, inside the functions that run them
    assert "edge.pipeline" in graph["edge.cli"]
    assert "edge.config" in graph["edge.pipeline"]


def test_type_checking_imports_do_not_count():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nimport b\n")
    names = [n.names[0].name for n in _runtime_nodes(tree) if isinstance(n, ast.Import)]
    assert names == ["b"]


def test_find_cycles_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert _path_within(graph, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert find_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    graph = import_graph()
    cycles = [c for c in find_cycles(graph) if c[0].split(".")[0] == package]
    assert not cycles, "import cycles:\n" + "\n".join(
        f"{_path_within(graph, c)}   (all of: {', '.join(c)})" for c in cycles)
