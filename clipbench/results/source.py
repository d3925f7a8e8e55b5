"""The one reader of result sets: a results directory, ``results.jsonl`` or a long ``leaderboard.csv``
becomes primary-metric rows, for the gate (``comparison``), the report and anything else that ranks rows.

Which metric is primary is decided here and nowhere else: the record's ``primary_metric`` (or the
leaderboard's ``primary_metric`` column); for an old CSV without that column, the metric that
carries the CI, else ``top1`` / ``mean_per_class_recall``, else the row's first metric. A row without
its primary metric is an error naming it (for the gate; other readers skip it with a warning).
Values keep the text they were stored as (``text``), so a reader can compare at the stored precision.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.tables import csv_records
from clipbench.results.records import LEADERBOARD_FILE, RESULTS_FILE, read_records, record_key
from clipbench.results.schema import primary_metric

#: Fields that say what a number was computed from (two rows that differ in them are other numbers).
IDENTITY_FIELDS = ("model_identity", "dataset_fingerprint")

log = logging.getLogger(__name__)

Row = tuple[str, str, str, str]  # model, dataset, task, variant


@dataclass(frozen=True)
class PrimaryRow:
    """One record's (or one leaderboard row group's) primary metric, with what identifies it."""

    model: str
    dataset: str
    task: str
    variant: str
    metric: str
    value: float | None  # None: stored as empty (NaN) or missing
    text: str | None = None  # the value as stored in a CSV (None: a full-precision float from JSON)
    ci_low: float | None = None
    ci_high: float | None = None
    n_samples: int | None = None
    model_family: str | None = None
    timestamp: str = ""
    identity: dict[str, str | None] = field(default_factory=dict)

    @property
    def key(self) -> Row:
        return self.model, self.dataset, self.task, self.variant


def row_name(key: Row) -> str:
    return "/".join(k for k in key[:3]) + (f" [{key[3]}]" if key[3] else "")


def resolve(source: str | os.PathLike) -> Path:
    """The file behind ``source``: a directory's results.jsonl (else its leaderboard.csv), or the file itself."""
    path = Path(source).expanduser()
    if path.is_dir():
        for name in (RESULTS_FILE, LEADERBOARD_FILE):
            if (path / name).is_file():
                return path / name
        raise ClipbenchError(f"results not found: no {RESULTS_FILE} or {LEADERBOARD_FILE} in {path}; run "
                             "`clipbench run` first")
    if not path.is_file():
        raise ClipbenchError(f"results not found: {path} (expected a results directory, results.jsonl or "
                             "leaderboard.csv)")
    return path


def _number(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _from_records(path: Path, records: list[dict], strict: bool) -> list[PrimaryRow]:
    rows = []
    for r in records:
        key = record_key(r)
        metric = primary_metric(r)
        if metric not in r["metrics"]:
            if strict:
                raise ClipbenchError(f"{path}: row {row_name(key)} lacks its primary metric {metric!r}")
            log.warning("%s: row %s lacks its primary metric %r; skipped", path, row_name(key), metric)
            continue
        value = r["metrics"][metric]
        ci = r.get("ci95") or {}
        rows.append(PrimaryRow(*key, metric, None if value is None else float(value), None, _number(ci.get("low")),
                               _number(ci.get("high")), r.get("n_samples"), r.get("model_family"),
                               r.get("timestamp") or "", {f: (r.get(f) or None) for f in IDENTITY_FIELDS}))
    return rows


def _primary_of(group: list[dict]) -> dict:
    primary = group[0].get("primary_metric")
    if primary:
        chosen = next((r for r in group if r["metric"] == primary), None)
        if chosen is None:
            raise ClipbenchError(f"row {row_name(_csv_key(group[0]))} lacks its primary metric {primary!r}")
        return chosen
    chosen = next((r for r in group if r.get("ci_low")), None)
    return chosen or next((r for r in group if r["metric"] in ("top1", "mean_per_class_recall")), group[0])


def _csv_key(row: dict) -> Row:
    return row["model"], row["dataset"], row["task"], row.get("variant") or ""


def _from_leaderboard(path: Path) -> list[PrimaryRow]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            table = csv_records(fh)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ClipbenchError(f"cannot read {path} as a leaderboard CSV: {exc}") from exc
    needed = {"model", "dataset", "task", "metric", "value"}
    if not table or not needed <= set(table[0]):
        raise ClipbenchError(f"{path} is not a long leaderboard CSV (needs columns {', '.join(sorted(needed))})")
    grouped: dict[Row, list[dict]] = {}
    for row in table:
        if any(row.get(k) is None for k in needed):
            raise ClipbenchError(f"{path}: a row has fewer columns than the header (a torn file?)")
        grouped.setdefault(_csv_key(row), []).append(row)
    rows = []
    for key, group in grouped.items():
        try:
            chosen = _primary_of(group)
        except ClipbenchError as exc:
            raise ClipbenchError(f"{path}: {exc}") from exc
        text = chosen["value"]
        n = _number(chosen.get("n_samples"))
        rows.append(PrimaryRow(*key, chosen["metric"], _number(text), text, _number(chosen.get("ci_low")),
                               _number(chosen.get("ci_high")), int(n) if n is not None and math.isfinite(n) else None,
                               chosen.get("model_family") or None, chosen.get("timestamp") or "",
                               {f: (chosen.get(f) or None) for f in IDENTITY_FIELDS if f in chosen}))
    return rows


@dataclass(frozen=True)
class ResultSet:
    """One compare/report input read once: its file, its primary rows and, for results.jsonl, its records."""

    path: Path
    rows: list[PrimaryRow]
    records: list[dict] | None  # None: a leaderboard CSV (no records, no per-sample references)

    @property
    def results_dir(self) -> Path | None:
        return None if self.records is None else self.path.parent


def load_result_set(source: str | os.PathLike | ResultSet, strict: bool = False) -> ResultSet:
    """``source`` (a results dir, results.jsonl or leaderboard.csv) parsed once, for every reader of one command.

    ``strict``: an unreadable results.jsonl line is an error rather than a skipped line (the gate
    judges only files it can read whole).
    """
    if isinstance(source, ResultSet):
        return source
    path = resolve(source)
    if path.suffix == ".csv":
        return ResultSet(path, _from_leaderboard(path), None)
    records = read_records(path, strict=strict)
    return ResultSet(path, _from_records(path, records, strict), records)


def primary_rows(source: str | os.PathLike | ResultSet, strict: bool = False) -> tuple[list[PrimaryRow], Path]:
    """Every primary-metric row of ``source`` in stored order (records: append order; newest last), and its file."""
    result_set = load_result_set(source, strict)
    return result_set.rows, result_set.path


def latest_rows(rows: list[PrimaryRow]) -> dict[Row, PrimaryRow]:
    """The newest row per (model, dataset, task, variant), in first-appearance order."""
    latest: dict[Row, PrimaryRow] = {}
    for row in rows:
        latest[row.key] = row
    return latest
