"""The CLI package stays free of import cycles, and only its runtime opens storage.

The command groups are listed in the package's command table; were a group to
import ``carewire.cli`` (the package) or another group, the import cycle the
package replaced would come back. Groups share only ``runtime``,
``audit_trail``, ``invitations`` (the steps of ``user invite``), ``tables`` and
``record_view`` (record tables that fit a terminal), and reach the database
only through ``runtime``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import carewire.cli
from carewire.cli import COMMANDS

PACKAGE = "carewire.cli"
RUNTIME = f"{PACKAGE}.runtime"
SHARED = {
    RUNTIME,
    f"{PACKAGE}.audit_trail",
    f"{PACKAGE}.invitations",
    f"{PACKAGE}.tables",
    f"{PACKAGE}.record_view",
}
SOURCES = Path(carewire.cli.__file__).parent


def _groups() -> set[str]:
    modules = [g for g in COMMANDS if isinstance(g, ModuleType)]
    assert len(modules) == len(COMMANDS), "the command table holds modules only"
    return {m.__name__ for m in modules}


def _modules() -> dict[str, Path]:
    """Every module of the package except its ``__init__``, by dotted name."""
    return {f"{PACKAGE}.{p.stem}": p for p in SOURCES.glob("*.py") if p.stem != "__init__"}


def _imports(path: Path) -> set[str]:
    """What ``path`` imports anywhere in it: ``from M import N`` counts as both M and M.N."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = PACKAGE.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_package_holds_the_table_the_runtime_and_the_audit_helpers() -> None:
    assert set(_modules()) == _groups() | SHARED


def test_no_module_imports_the_package_or_a_command_group() -> None:
    groups = _groups()
    for name, path in _modules().items():
        imported = _imports(path)
        assert PACKAGE not in imported, f"{name} imports {PACKAGE}"
        others = (groups - {name}) & imported
        assert not others, f"{name} imports the command group(s) {sorted(others)}"


def test_only_the_runtime_opens_storage() -> None:
    for name, path in _modules().items():
        if name == RUNTIME:
            continue
        opening = {
            m
            for m in _imports(path)
            if m.startswith("carewire.storage") or m.endswith((".assemble", ".open_core"))
        }
        assert not opening, f"{name} opens storage itself ({sorted(opening)}): use {RUNTIME}"


def test_the_guard_sees_every_form_of_import(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import carewire.cli\n"
        "from carewire import cli\n"
        "from . import users\n"
        "def f() -> None:\n"
        "    from .data import cmd_dataset_list\n"
    )
    found = _imports(source)
    assert {PACKAGE, f"{PACKAGE}.users", f"{PACKAGE}.data"} <= found
