"""The report's per-task tables, from what each task declares, so the report names no task.

``task_detail_blocks`` asks every registered task for its ``detail_table`` over its records, then
adds the one table that spans tasks: each model's primary metric under every classification view
(the tasks that set ``Task.classification_view``: zero-shot, k-NN, the linear probe), side by side.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from clipbench.tasks.base import DetailTable, Figure, cell
from clipbench.tasks.registry import TASKS

log = logging.getLogger(__name__)

#: what a task's ``detail_table`` raises on a record whose own fields are damaged (they are not type-checked
#: on read: a results file is untrusted input)
_DAMAGED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


def task_detail_blocks(records: Sequence[dict], names: dict[str, str] | None = None) -> list[DetailTable]:
    """Detail tables for ``records`` (the latest default-variant record per row), in registration order;
    ``names`` maps a model to its display name."""
    names = names or {}
    tables = []
    for _, task in TASKS.items():
        table = _table(task, [r for r in records if task.owns_record(str(r.get("task", "")))], names)
        if table is not None:
            tables.append(table)
    views = _classification_views(records, names)
    return tables + ([views] if views is not None else [])


def _table(task, records: list[dict], names: dict[str, str]) -> DetailTable | None:
    """The task's table over ``records``; only when a record breaks it are the records tried one by one."""
    try:
        return task.detail_table(records, names)
    except _DAMAGED:
        return task.detail_table(_readable(task, records, names), names)


def _readable(task, records: list[dict], names: dict[str, str]) -> list[dict]:
    """``records`` less those whose task block the task cannot tabulate (each skipped with a warning)."""
    kept = []
    for r in records:
        try:
            task.detail_table([r], names)
        except _DAMAGED as exc:
            log.warning("report: %s record %s left out of the %s table: damaged field (%s)",
                        task.name, r.get("record_id", "?"), task.title.lower(), type(exc).__name__)
            continue
        kept.append(r)
    return kept


def _classification_views(records: Sequence[dict], names: dict[str, str]) -> DetailTable | None:
    views = {task.name: task.classification_view for _, task in TASKS.items() if task.classification_view}
    by_model: dict[str, dict[str, list[float]]] = {}
    for r in records:
        if r.get("task") in views and isinstance(r.get("metrics"), dict):
            value = r["metrics"].get(r.get("primary_metric"))  # read_records fills it in for every schema
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
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
