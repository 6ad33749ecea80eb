"""Arrows only down: no import cycle between noisyseg's subpackages, and the core stays below.

The graph joins every ``noisyseg.X`` a module imports (at any depth, lazy imports included) into an
edge from its subpackage (or top-level module) to X; the strategy kinds count as one node, since
kinds may build on each other (detection on weighting, say)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "noisyseg"
CORE = ("constants", "errors", "params", "runtime", "timing")


def _node(parts: list[str], names: set[str]) -> str | None:
    return parts[0] if parts and parts[0] in names else None


def _graph() -> dict[str, set[str]]:
    names = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        src = _node(list(path.relative_to(ROOT).with_suffix("").parts), names)
        if src is None or src == "__init__":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                mod = node.module.split(".")
                targets = [mod + [a.name] for a in node.names] if mod == ["noisyseg"] else [mod]
            for t in targets:
                dst = _node(t[1:], names) if t[0] == "noisyseg" else None
                if dst and dst != src:
                    graph.setdefault(src, set()).add(dst)
    return graph


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_no_cycle_between_subpackages():
    graph = _graph()
    cycles = sorted((a, b) for a in graph for b in graph[a] if _reaches(graph, b, a))
    assert not cycles, f"imports that close a cycle: {cycles}"


@pytest.mark.parametrize("low, high", [("train", "pipeline"), ("strategies", "pipeline"), ("models", "strategies"),
                                       ("io", "pipeline"), *((core, "pipeline") for core in CORE)])
def test_lower_layers_do_not_import_higher_ones(low, high):
    assert not _reaches(_graph(), low, high), f"noisyseg.{low} reaches noisyseg.{high}"


def test_core_modules_import_only_core():
    graph = _graph()
    for core in CORE:
        assert graph.get(core, set()) <= {*CORE, "ops"}, (core, graph.get(core))


def test_no_cycle_between_io_modules():
    """dataset.py and dirs.py both use the label-PNG codec (io/labels.py) and neither imports back."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "io").rglob("*.py"):
        name = ".".join(("noisyseg", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("noisyseg.io."):
                if node.module != name and not name.startswith(node.module + "."):
                    graph.setdefault(name, set()).add(node.module)
    cycles = sorted((a, b) for a in graph for b in graph[a] if _reaches(graph, b, a))
    assert not cycles, f"imports that close a cycle: {cycles}"
