"""The scoring layer sits below the tasks and the results: no module of scoring/ or tasks/ imports
``clipbench.results`` (function-local imports included), and scoring/ imports no task, engine or feature code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clipbench"
ABOVE_SCORING = ("clipbench.results", "clipbench.tasks", "clipbench.engine", "clipbench.features", "clipbench.api")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def modules_of(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("folder, forbidden", [("scoring", ABOVE_SCORING), ("tasks", ("clipbench.results",))])
def test_nothing_below_results_imports_upward(folder, forbidden):
    files = modules_of(folder)
    assert files
    upward = {f"{path.relative_to(PACKAGE)}: {name}" for path in files for name in imported_modules(path)
              if name.startswith(forbidden)}
    assert not upward
