"""The package's layers, read from its source: dependencies run one way
(cli -> api -> pipelines -> parts -> {config, errors, results}), with no import cycle,
counting the imports inside functions (the ones that hide cycles from Python itself).

Imports under ``if TYPE_CHECKING:`` never run, so they are left out of the cycle check;
the rule for ``cli/`` counts them too, since a type is also a dependency on a layer."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import marketpredictor_train

PACKAGE = "marketpredictor_train"
ROOT = Path(marketpredictor_train.__file__).parent
# What cli/ may import of the package: the public API and the bottom layer.
CLI_ALLOWED = {"api", "config", "errors", "results", "cli"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The package module a dotted name lives in (``a.b.func`` -> ``a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> list[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            # `from pkg import submodule` depends on the submodule, else on pkg itself
            targets = [
                f"{origin}.{a.name}" if f"{origin}.{a.name}" in MODULES else origin
                for a in node.names
            ]
        for target in targets:
            resolved = _resolve(target) if target.startswith(PACKAGE) else None
            if resolved and resolved != module:
                edges.append(Edge(module, resolved, getattr(node, "lineno", 0), type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return edges


EDGES = [edge for module, path in MODULES.items() for edge in _imports(module, path)]


def _cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in edges:
        graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_checker_sees_function_level_imports_and_skips_type_only_ones():
    """The checker itself: train's pipeline imports tuning inside a function, and
    cli/_render imports results only for type hints."""
    train = {(e.target, e.type_only) for e in EDGES if e.source == f"{PACKAGE}.pipelines.train"}
    assert (f"{PACKAGE}.tuning", False) in train
    render = {(e.target, e.type_only) for e in EDGES if e.source == f"{PACKAGE}.cli._render"}
    assert (f"{PACKAGE}.results", True) in render
    a, b = f"{PACKAGE}.api", f"{PACKAGE}.errors"
    assert _cycles([Edge(a, b, 1, False), Edge(b, a, 2, False)]) == [sorted([a, b])]


def test_no_import_cycle_inside_the_package():
    runtime = [e for e in EDGES if not e.type_only]
    cycles = _cycles(runtime)
    described = []
    for cycle in cycles:
        members = set(cycle)
        described.append(
            " ; ".join(
                f"{e.source}:{e.line} -> {e.target}"
                for e in runtime
                if e.source in members and e.target in members
            )
        )
    assert not cycles, "import cycles:\n" + "\n".join(described)


def test_cli_imports_only_the_api_and_the_bottom_layer():
    wrong = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in EDGES
        if _layer(e.source) == "cli" and e.target != PACKAGE and _layer(e.target) not in CLI_ALLOWED
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("layer", ["pipelines"])
def test_only_the_api_and_the_pipelines_import_the_pipelines(layer):
    wrong = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in EDGES
        if _layer(e.target) == layer and _layer(e.source) not in {layer, "api"}
    ]
    assert not wrong, "\n".join(wrong)


def test_the_bottom_layer_imports_nothing_above_it():
    """config, errors and results (and redact, which masks credentials in their messages)
    are what every layer may use; they use no layer."""
    bottom = {"config", "errors", "results", "redact"}
    wrong = [
        f"{e.source}:{e.line} imports {e.target}"
        for e in EDGES
        if _layer(e.source) in bottom and not e.type_only and _layer(e.target) not in bottom
    ]
    assert not wrong, "\n".join(wrong)
