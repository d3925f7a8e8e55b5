"""The CI regression gate: compare a new result set with a baseline, primary metric per row.

(Module named ``comparison`` so importing it cannot shadow the function ``clipbench.compare``.)

Inputs are a results directory, a ``results.jsonl`` or a long ``leaderboard.csv``. A row is
(model, dataset, task, variant); see ``clipbench.results.record_variant``. The gate fails when a baseline row's primary metric dropped by more than
``max_drop`` points, or when a baseline row is missing from the new results (a silently skipped
dataset must not pass CI). Rows only in the new results are shown but never fail the gate.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clipbench.errors import ClipbenchError
from clipbench.results import RESULTS_FILE, latest_records, read_records, record_key

Row = tuple[str, str, str, str]  # model, dataset, task, variant


@dataclass(frozen=True)
class PrimaryValue:
    metric: str
    value: float


def _from_leaderboard(path: Path) -> dict[Row, PrimaryValue]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ClipbenchError(f"cannot read {path} as a leaderboard CSV: {exc}") from exc
    needed = {"model", "dataset", "task", "metric", "value"}
    if not rows or not needed <= set(rows[0]):
        raise ClipbenchError(f"{path} is not a long leaderboard CSV (needs columns {', '.join(sorted(needed))})")
    grouped: dict[Row, list[dict]] = {}
    for row in rows:
        key = (row["model"], row["dataset"], row["task"], row.get("variant") or "")
        grouped.setdefault(key, []).append(row)
    out = {}
    for key, group in grouped.items():
        chosen = None
        if group[0].get("primary_metric"):
            chosen = next((r for r in group if r["metric"] == r["primary_metric"]), None)
        chosen = chosen or next((r for r in group if r.get("ci_low")), None)
        chosen = chosen or next((r for r in group if r["metric"] in ("top1", "mean_per_class_recall")), group[0])
        try:
            out[key] = PrimaryValue(chosen["metric"], float(chosen["value"]))
        except ValueError as exc:
            raise ClipbenchError(f"{path}: value {chosen['value']!r} for {key} is not a number") from exc
    return out


def load_primary(source: str | os.PathLike) -> dict[Row, PrimaryValue]:
    """(model, dataset, task, variant) -> primary metric value from a results dir, results.jsonl or leaderboard.csv."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ClipbenchError(f"results not found: {path} (expected a results directory, results.jsonl or "
                             "leaderboard.csv)")
    if path.suffix == ".csv":
        return _from_leaderboard(path)
    out = {}
    for r in latest_records(read_records(path)):
        metric = r.get("primary_metric") or "top1"
        if metric not in r["metrics"]:
            raise ClipbenchError(f"{path}: record for {r['model']}/{r['dataset']}/{r['task']} lacks metric {metric!r}")
        out[record_key(r)] = PrimaryValue(metric, float(r["metrics"][metric]))
    return out


@dataclass(frozen=True)
class ComparisonRow:
    model: str
    dataset: str
    task: str
    variant: str
    metric: str
    baseline: float | None
    new: float | None
    status: str  # "ok", "improved", "DROP", "MISSING", "new"
    note: str = ""  # the judge's verdict in words (clipbench.significance), "" without one

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None or self.new is None else self.new - self.baseline


@dataclass(frozen=True)
class Comparison:
    rows: list[ComparisonRow]
    max_drop: float

    @property
    def failed(self) -> bool:
        return any(r.status in ("DROP", "MISSING") for r in self.rows)

    def to_markdown(self) -> str:
        def num(v: float | None, sign: bool = False) -> str:
            return "-" if v is None else (f"{v:+.2f}" if sign else f"{v:.2f}")

        lines = ["| model | dataset | task | variant | metric | baseline | new | delta | status |",
                 "|---|---|---|---|---|---:|---:|---:|---|"]
        for r in self.rows:
            lines.append(f"| {r.model} | {r.dataset} | {r.task} | {r.variant or '-'} | {r.metric} | {num(r.baseline)} | {num(r.new)} | "
                         f"{num(r.delta, sign=True)} | {r.status} |")
        drops = sum(r.status == "DROP" for r in self.rows)
        missing = sum(r.status == "MISSING" for r in self.rows)
        verdict = "FAIL" if self.failed else "PASS"
        lines.append("")
        lines.append(f"{verdict}: {drops} dropped by more than {self.max_drop:g} points, {missing} missing, "
                     f"{len(self.rows)} rows compared.")
        return "\n".join(lines)


#: A row judge: (row, baseline value, new value, status by the fixed rule) -> (status, note).
Judge = Callable[[Row, PrimaryValue, PrimaryValue, str], tuple[str, str]]


def compare(new: str | os.PathLike, baseline: str | os.PathLike, max_drop: float = 0.0,
            judge: Judge | None = None) -> Comparison:
    """Row-by-row primary-metric comparison; ``Comparison.failed`` is the gate's verdict.

    ``judge`` may overrule the fixed rule's status of each row present on both sides (the
    significance-tested gate of ``clipbench.significance`` does).
    """
    if not isinstance(max_drop, (int, float)) or math.isnan(max_drop) or max_drop < 0:
        raise ClipbenchError(f"--max-drop must be a non-negative number of points, got {max_drop!r}")
    base_rows, new_rows = load_primary(baseline), load_primary(new)
    rows = []
    for key in sorted(set(base_rows) | set(new_rows)):
        b, n = base_rows.get(key), new_rows.get(key)
        if b is None:
            rows.append(ComparisonRow(*key, n.metric, None, n.value, "new"))
        elif n is None:
            rows.append(ComparisonRow(*key, b.metric, b.value, None, "MISSING"))
        else:
            delta = n.value - b.value
            status = "DROP" if delta < -max_drop - 1e-9 else "improved" if delta > 1e-9 else "ok"
            note = ""
            if judge is not None:
                status, note = judge(key, b, n, status)
            rows.append(ComparisonRow(*key, b.metric, b.value, n.value, status, note))
    return Comparison(rows, float(max_drop))
