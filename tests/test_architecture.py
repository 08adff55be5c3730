"""The layering of docs/architecture.md, checked against every import in harness/ with ast, and the
size rule (no function over 50 lines)."""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "harness"
MAX_FUNCTION_LINES = 50


def layers() -> dict[str, int]:
    """``{room: layer}`` from the fenced ``layers`` block of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S).group(1)
    out = {}
    for line in block.strip().splitlines():
        level, _, rooms = line.partition(":")
        for room in rooms.split():
            out[room] = int(level.split()[0])
    return out


def room_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = ast.parse(path.read_text())
    return out


def imports(tree: ast.Module) -> set[str]:
    """Every harness module imported anywhere in the file, inside functions too."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m == "harness" or m.startswith("harness.")}


def room_edges() -> dict[str, set[str]]:
    """``{room: rooms it imports}``; a name imported from the package root (``__version__``) is the root's."""
    found = modules()
    rooms = {room_of(m) for m in found}
    edges = defaultdict(set)
    for name, tree in found.items():
        for target in imports(tree):
            a, b = room_of(name), room_of(target)
            if a != b and b in rooms and b != "harness":
                edges[a].add(b)
    return edges


def test_every_room_has_a_layer():
    known = layers()
    assert sorted({room_of(m) for m in modules()} - set(known)) == []


def test_no_import_reaches_a_higher_layer():
    level = layers()
    upward = sorted(f"{a} (layer {level[a]}) imports {b} (layer {level[b]})"
                    for a, targets in room_edges().items() for b in targets if level[b] > level[a])
    assert upward == []


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_rooms_import_one_another_without_cycles():
    assert _cycle(room_edges()) is None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_a_b_worker_imports_nothing_else_of_harness():
    """It runs against the base revision's package, whose other modules may differ."""
    tree = modules()["harness.timing.worker"]
    assert imports(tree) <= {"harness", "harness.cams"}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_is_over_50_lines(path):
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
