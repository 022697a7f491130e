"""The shape of the source tree: no import cycle anywhere, no oversized module.

import-linter's contracts (``make check``) say which way packages may point;
these tests say what holds for every module: the import graph of
``carewire`` (type-checking imports included, since a cycle there is still a
knot a reader must untie) has no cycle, and no module passes 600 lines.
"""

from __future__ import annotations

from pathlib import Path

import grimp

import carewire

MAX_MODULE_LINES = 600
SOURCES = Path(carewire.__file__).parent


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_source_tree() -> None:
    graph = grimp.build_graph("carewire", exclude_type_checking_imports=False)
    edges = {
        module: {m for m in graph.find_modules_directly_imported_by(module) if m in graph.modules}
        for module in graph.modules
    }
    assert len(edges) > 150  # the whole package was read
    assert _cycles(edges) == []


def test_no_module_over_600_lines() -> None:
    sizes = {
        str(path.relative_to(SOURCES)): len(path.read_text(encoding="utf-8").splitlines())
        for path in SOURCES.rglob("*.py")
    }
    assert len(sizes) > 150
    oversized = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert oversized == {}
