"""The report's per-task tables, from what each task declares, so the report names no task.

``task_detail_blocks`` asks every registered task for its ``detail_table`` over its records, then
adds the one table that spans tasks: each model's primary metric under every classification view
(the tasks that set ``Task.classification_view``: zero-shot, k-NN, the linear probe), side by side.
"""

from __future__ import annotations

from collections.abc import Sequence

from clipbench.tasks.base import DetailTable, Figure, cell
from clipbench.tasks.registry import TASKS


def task_detail_blocks(records: Sequence[dict], names: dict[str, str] | None = None) -> list[DetailTable]:
    """Detail tables for ``records`` (the latest default-variant record per row), in registration order;
    ``names`` maps a model to its display name."""
    names = names or {}
    tables = []
    for _, task in TASKS.items():
        table = task.detail_table([r for r in records if task.owns_record(str(r.get("task", "")))], names)
        if table is not None:
            tables.append(table)
    views = _classification_views(records, names)
    return tables + ([views] if views is not None else [])


def _classification_views(records: Sequence[dict], names: dict[str, str]) -> DetailTable | None:
    views = {task.name: task.classification_view for _, task in TASKS.items() if task.classification_view}
    by_model: dict[str, dict[str, list[float]]] = {}
    for r in records:
        if r.get("task") in views:
            value = r["metrics"].get(r["primary_metric"])  # read_records fills it in for every schema
            if isinstance(value, (int, float)):
                by_model.setdefault(r["model"], {}).setdefault(views[r["task"]], []).append(float(value))
    shown = {m: v for m, v in by_model.items() if len(v) >= 2}
    if not shown:
        return None
    cells = {names.get(m, m): {view: (sum(vs[view]) / len(vs[view]), None, None) for view in views.values()
                               if view in vs} for m, vs in shown.items()}
    rows = [[model, *[cell(c.get(view, (None,))[0]) for view in views.values()]] for model, c in cells.items()]
    listed = ", ".join(views.values())
    return DetailTable("Classification views per model", ["model", *views.values()], rows,
                       f"Primary metric in %, mean over each task's datasets, of each way of classifying with the "
                       f"same features: {listed}.",
                       (Figure(f"The classification views of each model ({listed}; mean over each task's datasets)",
                               "classification_views.png", f"{listed} per model".capitalize(),
                               "primary metric, mean over datasets (%)", cells),))
