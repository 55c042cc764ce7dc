"""The rooms stay walkable: no import cycle, thin listeners, no SQL in commands/, no reaching into private names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "commands", "notifiers")
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.I)


def import_cycles() -> list[list[str]]:
    """Every cycle among the project's modules, counting imports inside functions (annotation-only ones excepted)."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & graph.modules) for m in modules}
    cycles, state, stack = [], dict.fromkeys(modules, 0), []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in edges[module]:
            if state[target] == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif state[target] == 0:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in modules:
        if state[module] == 0:
            visit(module)
    return cycles


def test_no_import_cycle() -> None:
    assert import_cycles() == []


def listeners(path: Path) -> list[ast.AsyncFunctionDef]:
    """The Slack listeners of a command module: sub-command handlers and module-level `on_*` handlers."""
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and (node.name.startswith("on_") or node.decorator_list):
            found.append(node)
    return found


def length(node: ast.AST) -> int:
    return int(node.end_lineno or 0) - int(node.lineno) + 1  # type: ignore[attr-defined]


COMMAND_MODULES = sorted(p for p in (ROOT / "commands").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", COMMAND_MODULES, ids=lambda p: p.name)
def test_listeners_are_thin(path: Path) -> None:
    long = {f.name: length(f) for f in listeners(path) if length(f) > 30}
    assert long == {}, "a listener parses, acks, calls one domain function and renders: ≤ 30 lines"
    tree = ast.parse(path.read_text())
    register = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "register"]
    assert all(length(r) <= 60 for r in register)


@pytest.mark.parametrize("path", COMMAND_MODULES, ids=lambda p: p.name)
def test_no_sql_in_commands(path: Path) -> None:
    text = path.read_text()
    assert not SQL.search(text) and ".execute(" not in text, "SQL belongs to its domain room"


def python_files() -> list[Path]:
    return sorted(p for package in (*PACKAGES, "tests", "bench") for p in (ROOT / package).rglob("*.py"))


def test_no_caller_reaches_into_another_modules_private_names() -> None:
    offenders = []
    for path in python_files():
        tree = ast.parse(path.read_text())
        modules = {
            alias.asname or alias.name.split(".")[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom | ast.Import)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                names = [a.name for a in node.names if _private(a.name)]
                offenders += [f"{path.name}: from {node.module} import {name}" for name in names]
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and _private(node.attr)
            ):
                offenders.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert offenders == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")
