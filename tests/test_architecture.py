"""The layout docs/architecture.md promises, checked on the source: every import edgesplit makes is read with
`ast` (function-level imports included), so a lazy import cannot hide an edge.

- no import cycle between edgesplit's modules (a package's `__init__` counts as a module);
- no import by name (`importlib`, `__import__`): every dependency is visible to this test;
- each package imports only the packages the dependency table in docs/architecture.md allows;
- no module over 400 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgesplit"
DOC = ROOT / "docs" / "architecture.md"
MAX_LINES = 400
GROUND = "ground floor"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The edgesplit modules `name` imports (`from pkg import x` counts as pkg.x when that is a module)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
    return {m for m in found if m == "edgesplit" or m.startswith("edgesplit.")}


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _package(module: str) -> str:
    """'edgesplit.models.zoo.cnn' -> 'models'; top-level modules ('edgesplit.errors') -> the ground floor."""
    parts = module.split(".")
    if len(parts) == 1:
        return GROUND
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").exists():
        return GROUND
    return parts[1]


def _allowed() -> dict[str, set[str]]:
    """The dependency table of docs/architecture.md: `| `pkg` | job | `a`, `b` |` rows under '## Packages'."""
    text = DOC.read_text()
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        name = cells[0].strip("`").removeprefix("edgesplit.")
        name = GROUND if name in ("edgesplit", "ground floor") or "ground" in cells[0] else name
        table[name] = set(re.findall(r"`([a-z_ ]+)`", cells[-1])) | {name, GROUND}
    return table


def test_the_dependency_table_names_every_package():
    table = _allowed()
    packages = {_package(m) for m in MODULES}
    assert packages <= set(table), f"packages missing from docs/architecture.md's table: {packages - set(table)}"


def test_each_package_imports_only_what_the_table_allows():
    table = _allowed()
    wrong = sorted(f"{m} imports {dep}" for m, deps in IMPORTS.items() for dep in deps
                   if _package(dep) not in table.get(_package(m), set()))
    assert not wrong, "imports the dependency table does not allow:\n" + "\n".join(wrong)


def test_the_ground_floor_imports_nothing_above_it():
    wrong = sorted(f"{m} imports {d}" for m, deps in IMPORTS.items() if _package(m) == GROUND
                   for d in deps if _package(d) != GROUND)
    assert not wrong, "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def test_no_import_cycles():
    graph = {m: {d for d in deps if d in MODULES and d != m} for m, deps in IMPORTS.items()}
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_by_name():
    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            named = (isinstance(node, ast.Import) and any(a.name == "importlib" for a in node.names)) or (
                isinstance(node, ast.ImportFrom) and (node.module or "").startswith("importlib")) or (
                isinstance(node, ast.Name) and node.id == "__import__")
            if named:
                offenders.append(f"{name}:{node.lineno}")
    assert not offenders, f"imports by name: {offenders}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (> {MAX_LINES}): split it by job"
