"""The import graph of the project's packages, read from the source (every `import`, at module level or inside
a function, under `TYPE_CHECKING` or not): imports only point left along
`states <- workflow <- notifications <- deadlines <- api`, no module takes part in an import circle, and the
engine's fast path (`workflow.db._engine_unit`, `_engine_units`) is imported by the engine alone."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ("states", "workflow", "notifications", "deadlines", "api")  # DESIGN.md: imports only point left
FAST_PATH = {"_engine_unit", "_engine_units"}
FAST_PATH_USERS = {"workflow.engine", "workflow.bulk"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in ORDER:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, names taken from it) for every import statement of the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = tuple(alias.name for alias in node.names)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
            for sub in submodules:
                yield node.lineno, sub, ()
            if len(submodules) < len(names):
                yield node.lineno, module, names


def _edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for _, target, _ in _imports(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
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
                    out.append(sorted(component))
    return out


def test_the_graph_is_read() -> None:
    """The reader sees what is there: every package, and edges known to exist (so the checks below can fail)."""
    assert {name.split(".")[0] for name in MODULES} == set(ORDER)
    graph = _edges()
    assert "workflow.db" in graph["workflow.engine"]
    assert "states" in graph["workflow.engine"]
    assert "api.commands.base" in graph["api.cli"]


def test_imports_point_left() -> None:
    bad = []
    for name, path in MODULES.items():
        rank = ORDER.index(name.split(".")[0])
        for line, target, _ in _imports(name, path):
            root = target.split(".")[0]
            if root in ORDER and ORDER.index(root) > rank:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert bad == [], "imports against the order " + " <- ".join(ORDER) + ":\n" + "\n".join(bad)


def test_no_import_circle() -> None:
    cycles = _cycles(_edges())
    assert cycles == [], "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_engine_alone_uses_its_fast_path() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {sorted(FAST_PATH & set(names))}"
        for name, path in MODULES.items()
        if name not in FAST_PATH_USERS
        for line, target, names in _imports(name, path)
        if target == "workflow.db" and FAST_PATH & set(names)
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_the_circle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(_cycles(graph)) == expected
