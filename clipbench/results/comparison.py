"""The CI regression gate: compare a new result set with a baseline, primary metric per row.

(Module named ``comparison`` so importing it cannot shadow the function ``clipbench.compare``.)

Inputs are a results directory, a ``results.jsonl`` or a long ``leaderboard.csv``. A row is
(model, dataset, task, variant); see ``clipbench.results.records.record_variant``. The gate fails when a
baseline row's primary metric dropped by more than ``max_drop`` points, when a baseline row is
missing from the new results (a silently skipped dataset must not pass CI), or when a row is *not
comparable*: its ``model_identity``, ``dataset_fingerprint`` or primary metric differs between the
two sides (other weights, other data), unless ``allow_mismatch``. Rows only in the new results are
shown but never fail the gate.

What the gate cannot judge is an error (``ClipbenchError``, exit 2), never a pass or a "regression":
a NaN, infinite or missing primary metric, an unreadable line of a ``results.jsonl``, an input without
rows. Values are compared at the stored precision of the coarser side (``leaderboard.csv`` holds 4
decimals, ``results.jsonl`` full floats), so an identical run never shows as ``-0.00 DROP``.
"""

from __future__ import annotations

import decimal
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import markdown_text
from clipbench.results.source import IDENTITY_FIELDS, ResultSet, Row, latest_rows, load_result_set, row_name

__all__ = ["IDENTITY_FIELDS", "Comparison", "ComparisonRow", "PrimaryValue", "Row", "compare", "load_primary"]


@dataclass(frozen=True)
class PrimaryValue:
    metric: str
    value: float
    decimals: int | None = field(default=None, compare=False)  # stored digits after the point (None: full float)
    identity: dict[str, str | None] = field(default_factory=dict)


def _row_name(key: Row) -> str:
    return row_name(key)


def _checked(path: Path, key: Row, metric: str, value: float) -> float:
    if not math.isfinite(value):
        raise ClipbenchError(f"{path}: row {_row_name(key)} has {metric} = {value}; the gate cannot judge a "
                             "non-finite value")
    return value


def _decimals(text: str) -> int | None:
    try:
        exponent = decimal.Decimal(text.strip()).as_tuple().exponent
    except decimal.InvalidOperation:
        return None
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def load_primary(source: str | os.PathLike | ResultSet) -> dict[Row, PrimaryValue]:
    """(model, dataset, task, variant) -> primary metric value from a results dir, results.jsonl or leaderboard.csv
    (read by ``clipbench.results.source``, the one reader; the newest record per row wins)."""
    result_set = load_result_set(source, strict=True)  # the gate judges only files it can read whole
    rows, path = result_set.rows, result_set.path
    out = {}
    for key, row in latest_rows(rows).items():
        if row.value is None:  # the leaderboard writes NaN as an empty cell
            raise ClipbenchError(f"{path}: row {_row_name(key)} has no {row.metric} value (NaN or missing); "
                                 "the gate cannot judge it")
        decimals = _decimals(row.text) if row.text is not None else None
        out[key] = PrimaryValue(row.metric, _checked(path, key, row.metric, row.value), decimals, dict(row.identity))
    if not out:
        raise ClipbenchError(f"{path} holds no results: nothing to compare")
    return out


def identity_mismatch(baseline: PrimaryValue, new: PrimaryValue) -> tuple[str, ...]:
    """What differs between two sides of a row: the primary metric, or an identity field.

    A field counts when either side records it: both equal, fine; one side lacks it, or they
    differ, and the row is not comparable. Inputs that record neither (hand-made files) match.
    """
    out = []
    if baseline.metric != new.metric:
        out.append("metric")
    for name in IDENTITY_FIELDS:
        b, n = baseline.identity.get(name), new.identity.get(name)
        if (b or n) and b != n:
            out.append(name)
    return tuple(out)


def _at_common_precision(baseline: PrimaryValue, new: PrimaryValue) -> tuple[float, float]:
    """Both values rounded to the coarser side's stored decimals (a 4-decimal CSV vs a full float)."""
    stored = [d for d in (baseline.decimals, new.decimals) if d is not None]
    if not stored:
        return baseline.value, new.value
    digits = min(stored)
    return round(baseline.value, digits), round(new.value, digits)
@dataclass(frozen=True)
class ComparisonRow:
    model: str
    dataset: str
    task: str
    variant: str
    metric: str
    baseline: float | None
    new: float | None
    status: str  # "ok", "improved", "DROP", "MISSING", "new", "NOT COMPARABLE"
    mismatch: tuple[str, ...] = ()  # what differs between the sides (see identity_mismatch)
    delta_value: float | None = None  # new - baseline at the common stored precision
    note: str = ""  # the judge's verdict in words (clipbench.results.significance), "" without one

    @property
    def delta(self) -> float | None:
        if self.delta_value is not None:
            return self.delta_value
        return None if self.baseline is None or self.new is None else self.new - self.baseline

    @property
    def status_text(self) -> str:
        return self.status + (f" ({', '.join(self.mismatch)} differ)" if self.mismatch else "")


def _count(n: int, noun: str, rest: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}{rest}"


#: Row statuses that fail the gate.
FAILING = ("DROP", "MISSING", "NOT COMPARABLE")


@dataclass(frozen=True)
class Comparison:
    rows: list[ComparisonRow]
    max_drop: float

    @property
    def failed(self) -> bool:
        return any(r.status in FAILING for r in self.rows)

    def row_dicts(self) -> list[dict]:
        """One plain dict per row (for ``--format json|csv``): keys, values, delta, status and the verdict."""
        return [{"model": r.model, "dataset": r.dataset, "task": r.task, "variant": r.variant, "metric": r.metric,
                 "baseline": r.baseline, "new": r.new, "delta": r.delta, "status": r.status,
                 "mismatch": list(r.mismatch), "note": r.note, "failed": r.status in FAILING}
                for r in self.rows]

    def passed_drops(self) -> list[ComparisonRow]:
        """Rows that dropped by more than ``max_drop`` and still pass (a judge found the drop not significant,
        or the row's own tolerance is wider): the summary counts them apart so no drop goes unmentioned."""
        return [r for r in self.rows if r.status not in FAILING and r.delta is not None
                and r.delta < -self.max_drop - 1e-9]

    def to_markdown(self, failed_as: Callable[[ComparisonRow], str] | None = None,
                    why_passed: Callable[[ComparisonRow], str] | None = None) -> str:
        """The table and a one-line verdict that says what it counted: ``failed_as`` names what kind of drop
        each DROP row is (e.g. "significant drop", the gated compare), ``why_passed`` why a large drop passed."""
        def num(v: float | None, sign: bool = False) -> str:
            return "-" if v is None else (f"{v:+.2f}" if sign else f"{v:.2f}")

        lines = ["| model | dataset | task | variant | metric | baseline | new | delta | status |",
                 "|---|---|---|---|---|---:|---:|---:|---|"]
        for r in self.rows:
            names = " | ".join(markdown_text(v) for v in (r.model, r.dataset, r.task, r.variant or "-", r.metric))
            lines.append(f"| {names} | {num(r.baseline)} | {num(r.new)} | {num(r.delta, sign=True)} | "
                         f"{markdown_text(r.status_text)} |")
        missing = sum(r.status == "MISSING" for r in self.rows)
        foreign = sum(r.status == "NOT COMPARABLE" for r in self.rows)
        verdict = "FAIL" if self.failed else "PASS"
        lines.append("")
        beyond = f" of more than {self.max_drop:g} points"
        failing = Counter(failed_as(r) if failed_as else "drop" for r in self.rows if r.status == "DROP")
        if not failing:
            failing[failed_as(None) if failed_as else "drop"] = 0
        parts = [_count(n, noun, beyond) for noun, n in sorted(failing.items())]
        passed = Counter(why_passed(r) if why_passed else "passed" for r in self.passed_drops())
        parts += [_count(n, "drop", f"{beyond} {why}") for why, n in sorted(passed.items())]
        lines.append(f"{verdict}: {'; '.join(parts)}; {missing} missing, {foreign} not comparable, "
                     f"{len(self.rows)} rows compared.")
        if foreign:
            lines.append("Not comparable: other weights or other data than the baseline's; regenerate the baseline, "
                         "or pass --allow-mismatch to compare the numbers anyway.")
        return "\n".join(lines)


#: A row judge: (row, baseline value, new value, status by the fixed rule) -> (status, note).
Judge = Callable[[Row, PrimaryValue, PrimaryValue, str], tuple[str, str]]


def compare(new: str | os.PathLike | ResultSet, baseline: str | os.PathLike | ResultSet, max_drop: float = 0.0,
            allow_mismatch: bool = False, judge: Judge | None = None) -> Comparison:
    """Row-by-row primary-metric comparison; ``Comparison.failed`` is the gate's verdict.

    ``judge`` may overrule the fixed rule's status of each comparable row present on both sides
    (the significance-tested gate of ``clipbench.results.significance`` does).
    """
    if (not isinstance(max_drop, (int, float)) or isinstance(max_drop, bool) or not math.isfinite(max_drop)
            or max_drop < 0):
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
            mismatch = identity_mismatch(b, n)
            b_value, n_value = _at_common_precision(b, n)
            delta = n_value - b_value
            status = "DROP" if delta < -max_drop - 1e-9 else "improved" if delta > 1e-9 else "ok"
            note = ""
            if mismatch and not allow_mismatch:
                status = "NOT COMPARABLE"
            elif judge is not None:
                status, note = judge(key, b, n, status)
            rows.append(ComparisonRow(*key, b.metric, b.value, n.value, status, mismatch, delta, note))
    return Comparison(rows, float(max_drop))
