"""The package's shape, checked (issue 34): no import cycle, no oversized module.

The import graph counts every ``import`` of a ``clipbench`` module, function-local ones included
(a lazy import still ties the two modules' contracts together), and leaves out what stands under
``if TYPE_CHECKING:`` (never executed). Importing ``a.b.c`` also runs the package ``a.b``'s
``__init__``, so that edge is counted too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "clipbench"
#: issue 34: at most 3 files over 400 lines, none over 500
SOFT_LIMIT, HARD_LIMIT, OVER_SOFT_ALLOWED = 400, 500, 3


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def import_graph() -> dict[str, set[str]]:
    mods = _modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        package = name if is_pkg else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("clipbench"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                if base.startswith("clipbench"):
                    targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names)
        deps = set()
        for target in targets:
            module = known(target)
            if module is None:
                continue
            deps.add(module)
            parts = module.split(".")
            deps.update(p for p in (".".join(parts[:i]) for i in range(2, len(parts)))
                        if p in mods and not name.startswith(p + "."))
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_is_oversized():
    sizes = {path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
             for path, _ in _modules().values()}
    over_hard = {p: n for p, n in sizes.items() if n > HARD_LIMIT}
    over_soft = {p: n for p, n in sizes.items() if n > SOFT_LIMIT}
    assert not over_hard, f"modules over {HARD_LIMIT} lines: {over_hard}"
    assert len(over_soft) <= OVER_SOFT_ALLOWED, f"more than {OVER_SOFT_ALLOWED} modules over {SOFT_LIMIT} lines: {over_soft}"


#: (layer, what it must not import): data flows one way (docs/ARCHITECTURE.md); function-local imports count
LAYERS = [
    (("clipbench.foundations",), ("clipbench.models", "clipbench.datasets", "clipbench.features", "clipbench.scoring",
                                  "clipbench.tasks", "clipbench.engine", "clipbench.results", "clipbench.api")),
    (("clipbench.models", "clipbench.datasets"), ("clipbench.tasks", "clipbench.engine", "clipbench.results",
                                                  "clipbench.api")),
    (("clipbench.scoring",), ("clipbench.results", "clipbench.tasks", "clipbench.engine", "clipbench.features",
                              "clipbench.api")),
    (("clipbench.features", "clipbench.tasks"), ("clipbench.engine", "clipbench.results", "clipbench.api")),
]


@pytest.mark.parametrize("layer, forbidden", LAYERS, ids=[",".join(x.rsplit(".", 1)[-1] for x in layer)
                                                          for layer, _ in LAYERS])
def test_no_layer_imports_upward(layer, forbidden):
    graph = import_graph()
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() if m.startswith(layer)
                    for d in deps if d.startswith(forbidden))
    assert not upward, upward


def test_the_architecture_page_names_only_modules_that_exist_and_every_folder():
    """docs/ARCHITECTURE.md matches the code: each ``clipbench/...`` or ``<layer>/...`` path it names exists,
    and each package folder has its row in the layers table."""
    import re

    text = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`clipbench/([A-Za-z0-9_/.]+?)/?`", text))
    layers = "foundations|models|datasets|features|scoring|tasks|engine|results"
    named |= set(re.findall(rf"`((?:{layers})/[A-Za-z0-9_/.]+?)/?(?:::\w+)?`", text))
    missing = sorted(p for p in named if not (PACKAGE / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__"))
    unlisted = [f for f in folders if f"`clipbench/{f}/`" not in text]
    assert not unlisted, f"docs/ARCHITECTURE.md's layers table lacks {unlisted}"
