"""No import cycle between the top-level parts of ``src/blockproof`` (docs/architecture.md).

A static check over every import statement, the ones inside functions included (a lazy
import is still a dependency): the graph of top-level parts (``probe``, ``collector``,
``errors``, ...) must have no cycle. ``lint-imports`` (``make lint``) checks the finer
rules written in pyproject.toml; this test needs nothing but the standard library.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import blockproof

ROOT = Path(blockproof.__file__).parent


def _module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ["blockproof", *parts]


def _imported(path: Path) -> set[str]:
    """Every ``blockproof.*`` module named by an import statement in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in out if m.startswith("blockproof.")}


def part_graph() -> dict[str, set[str]]:
    """Top-level part -> the other top-level parts it imports."""
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}  # fmt: skip
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        source = _module_name(path)
        if len(source) < 2:
            continue
        for module in _imported(path):
            target = module.split(".")[1]
            if target in parts and target != source[1]:
                graph[source[1]].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_top_level_parts() -> None:
    graph = part_graph()
    assert {"probe", "collector", "pipeline", "explorer", "cli"} <= set(graph)
    assert cycles(graph) == []


def test_only_the_command_line_imports_click_and_rich() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path.relative_to(ROOT).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n.split(".")[0] in ("click", "rich") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
