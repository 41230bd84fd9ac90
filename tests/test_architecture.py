"""The package's house rules, read statically with ``ast`` (no module is imported, no torch):
an import graph without circles and no module over ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "voxelprompt"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE
MAX_LINES = 400

#: Circles accepted, each written from its alphabetically first module, with the reason beside it;
#: none today (the version lives in voxelprompt/_version.py so no module imports the package's API).
ALLOWED_CYCLES: frozenset[tuple[str, ...]] = frozenset()

#: Modules allowed over MAX_LINES, with the reason beside each; none today.
ALLOWED_OVERSIZE: frozenset[str] = frozenset()


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package (``__init__`` is the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every import node, at module level or inside functions and classes, outside ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module ``name`` is, or the nearest enclosing package that exists."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports.

    ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``
    (its ``__init__``); relative imports are resolved against the importing module's package.
    """
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        package = module if is_package else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.split(".")[0] != PACKAGE:
                    continue
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != module:
                    edges.add(resolved)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Every elementary circle of ``graph``, each written from its smallest module: Tarjan's
    strongly connected groups, then a depth-first walk of each group from each of its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # recursion depth is bounded by the package's size
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)

    found: set[tuple[str, ...]] = set()
    for group in groups:
        order = sorted(group)
        for i, start in enumerate(order):
            allowed = set(order[i:])  # circles through a smaller module were found from it
            path, blocked = [start], {start}
            todo = [iter(sorted(graph[start] & allowed))]
            while todo:
                w = next(todo[-1], None)
                if w is None:
                    todo.pop()
                    blocked.discard(path.pop())
                elif w == start:
                    found.add(tuple(path))
                elif w not in blocked:
                    path.append(w)
                    blocked.add(w)
                    todo.append(iter(sorted(graph[w] & allowed)))
    return sorted(found)


def _show(circle: tuple[str, ...]) -> str:
    return " -> ".join((*circle, circle[0]))


def test_the_graph_reader_sees_function_level_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from voxelprompt.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from voxelprompt import c\nfrom .. import a\n")
    (pkg / "c.py").write_text("from voxelprompt.sub import thing\n")
    graph = import_graph(module_files(pkg))
    assert graph[f"{PACKAGE}.a"] == {f"{PACKAGE}.sub.b"}
    assert graph[f"{PACKAGE}.sub.b"] == {f"{PACKAGE}.a"}
    assert graph[f"{PACKAGE}.c"] == {f"{PACKAGE}.sub"}
    assert cycles(graph) == [(f"{PACKAGE}.a", f"{PACKAGE}.sub.b")]


def test_the_import_graph_has_no_circles():
    found = cycles(import_graph(module_files()))
    remaining = [c for c in found if c not in ALLOWED_CYCLES]
    assert not remaining, "import circles:\n" + "\n".join(_show(c) for c in remaining)
    stale = sorted(ALLOWED_CYCLES - set(found))
    assert not stale, "allowed circles that no longer exist (remove them):\n" + "\n".join(_show(c) for c in stale)


@pytest.mark.parametrize("module,path", sorted(module_files().items()))
def test_no_module_is_over_the_size_limit(module, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if module in ALLOWED_OVERSIZE:
        assert lines > MAX_LINES, f"{module} has {lines} lines now: remove it from ALLOWED_OVERSIZE"
        return
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}: split it by concept)"
