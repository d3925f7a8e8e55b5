"""Result records: one JSON line per (model, dataset, task) in ``<results-dir>/results.jsonl``.

Appends are atomic and locked (``append_line_locked``) and never follow a symlink out of the results
dir; a line left half-written by a crash is skipped with a warning. After each run the leaderboards
are regenerated from the whole store, newest record per (model, dataset, task, variant) winning.
The *variant* names the options that change the numbers beyond model, dataset and task (``--limit``,
``--precision``, probe features, probe solver); it is empty for a full-data fp32 run with the
defaults, so a quick ``--limit`` check never replaces a full run's row:

* ``leaderboard.csv``: long format, one row per model x dataset x task x metric;
* ``leaderboard_pivot.csv``: one row per model x task, one column per dataset (primary metric), plus
  ``mean`` over the row's datasets and ``n_datasets``, then the suites' one-number averages of the row's model
  (``avg:<name>`` and ``avg:<name>:n``, e.g. ``38/38``; ``clipbench.results.suite_averages``).

Both are rewritten atomically with a fixed column order; a text cell that a spreadsheet would run as a
formula is quoted (``clipbench.foundations.tables.csv_text``; clipbench's readers undo it). The
record's core fields are declared in ``clipbench.results.schema``; readers check every one of them
(types, a readable timestamp, no NaN or unpaired surrogate) and skip a damaged line with a warning;
a record from a newer ``schema_version`` is refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import (
    append_line_locked,
    atomic_write_text,
    file_lock,
    inside,
    remove_stale_temps,
)
from clipbench.foundations.tables import csv_text
from clipbench.results.schema import (
    CORE_FIELDS,
    READ_CHECKED_EXTRAS,
    RESULT_SCHEMA,
    primary_metric,
    type_problem,
    upgrade_record,
)
from clipbench.results.suite_averages import pivot_columns

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
LEADERBOARD_FILE = "leaderboard.csv"
PIVOT_FILE = "leaderboard_pivot.csv"

LEADERBOARD_COLUMNS = (
    "model", "dataset", "task", "variant", "metric", "value", "ci_low", "ci_high", "primary_metric", "n_samples",
    "model_identity", "dataset_fingerprint", "suite", "suite_version", "timestamp",
)


def append_record(results_dir: str | os.PathLike, record: dict) -> Path:
    """Append one record (a single JSON line) to ``results.jsonl`` under a lock; returns the file."""
    path = Path(results_dir) / RESULTS_FILE
    append_line_locked(path, json.dumps(record, sort_keys=True, allow_nan=False, default=str), within=results_dir)
    return path


_REQUIRED = tuple(f.name for f in CORE_FIELDS if f.required)
#: fields the readers use, and the types they must have when present (None is always allowed)
#: (every core field: history, report and samples read most of them, and a record's fields are untrusted)
_READ_TYPES: dict[str, tuple[type, ...]] = {
    **{f.name: f.types for f in CORE_FIELDS if f.name != "metrics"}, **READ_CHECKED_EXTRAS}
#: fields inside the core objects that readers use, with their types (None allowed)
_NESTED_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "git": {"commit": (str,), "dirty": (bool,)},
    "cost": {"images_per_s_end_to_end": (int, float), "images_per_s_encoder": (int, float), "device_name": (str,)},
    "versions": {"clipbench": (str,)},
}
_WARNED: set[tuple[str, int, str]] = set()  # (file, line, text hash): each bad line is reported once
_HINTED: set[str] = set()  # files whose repair hint was given
_SURROGATE = re.compile("[\ud800-\udfff]")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type(value) -> str:
    return "null" if value is None else type(value).__name__


def record_problem(record) -> str | None:
    """Why a decoded JSON line is not a usable result record, or None if it is."""
    if not isinstance(record, dict):
        return f"a JSON {_type(record)}, not an object"
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        return f"lacks {', '.join(missing)}"
    for key in ("model", "dataset", "task"):
        if not isinstance(record[key], str) or not record[key]:
            return f"{key!r} is {_type(record[key])}, expected a non-empty string"
    metrics = record["metrics"]
    if not isinstance(metrics, dict):
        return f"'metrics' is {_type(metrics)}, expected an object of metric names to numbers"
    for name, value in metrics.items():
        if value is not None and not _number(value):
            return f"metric {name!r} is {_type(value)}, expected a number"
    for key, types in _READ_TYPES.items():
        problem = type_problem(key, record.get(key), types)
        if problem:
            return problem
    for key, fields in _NESTED_TYPES.items():
        for name, types in fields.items():
            problem = type_problem(f"{key}.{name}", (record.get(key) or {}).get(name), types)
            if problem:
                return problem
    ci = record.get("ci95")
    if ci is not None and not all(_number(ci.get(k)) for k in ("low", "high")):
        return "'ci95' needs numbers low and high"
    if not isinstance(record.get("schema_version", 1), int):  # null too: readers compare it with RESULT_SCHEMA
        return f"'schema_version' is {_type(record['schema_version'])}, expected an integer"
    if record.get("timestamp") and not _is_timestamp(record["timestamp"]):
        return f"'timestamp' {record['timestamp'][:40]!r} is not an ISO-8601 time"
    return _text_problem(record)


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return False
    return True


def _walk(record: dict):
    """Every key and value inside ``record``, depth first (iterative: JSON nests as deep as it likes)."""
    stack = [record]
    while stack:
        value = stack.pop()
        yield value
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _text_problem(record: dict) -> str | None:
    """A string no output can hold: half of a UTF-16 surrogate pair (``"\\ud800"`` in the JSON)."""
    if any(isinstance(v, str) and _SURROGATE.search(v) for v in _walk(record)):
        return "a string holds an unpaired UTF-16 surrogate"
    return None


def _non_finite(record: dict) -> str | None:
    """What the gate reports row by row (it cannot judge such a row) and every other reader skips: a NaN or
    an Infinity (clipbench writes neither: ``allow_nan=False``)."""
    if any(isinstance(v, float) and not math.isfinite(v) for v in _walk(record)):
        return "a number is NaN or infinite"
    return None


def _repair_hint(path: Path, bad_lines: list[int]) -> str:
    lines = ";".join(f"{n}d" for n in bad_lines[:20])
    return (f"to repair {path}, delete the unreadable line(s) (e.g. `sed -i.bak '{lines}' {path}`); "
            "every other record is kept")


def read_records(path: str | os.PathLike, strict: bool = False) -> list[dict]:
    """Records of a ``results.jsonl`` (or a results directory), in append order.

    A line that is not a record (torn by a crash, garbage, valid JSON of the wrong shape or types)
    is skipped with one warning naming it, plus once per file a hint how to repair it; with
    ``strict`` (the CI gate, which must not judge a file it cannot fully read) it is an error.
    A record from a newer clipbench is always an error, and so is a file none of whose lines even
    starts like a record (a README: deleting lines would not repair it; a lone torn line still would).
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ClipbenchError(f"results file not found: {path}")
    records, problems, resolved = [], [], str(path.resolve())
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError as exc:
        raise ClipbenchError(f"cannot read {path}: {exc.strerror or exc}") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            problem = "is not UTF-8 text"
        except (json.JSONDecodeError, RecursionError):
            problem = "is not a complete JSON record (an interrupted write?)"
        else:
            reason = record_problem(record) or (None if strict else _non_finite(record))
            problem = None if reason is None else f"is not a clipbench result record ({reason})"
        if problem is not None:  # judged once the whole file is read: is it a results file at all?
            problems.append((lineno, problem, hashlib.sha256(line).hexdigest()))
            continue
        version = record.get("schema_version", 1)
        if version > RESULT_SCHEMA:
            raise ClipbenchError(f"{path}:{lineno} has result schema_version {version}, newer than this clipbench "
                                 f"understands ({RESULT_SCHEMA}); upgrade clipbench")
        records.append(upgrade_record(record))  # readers see one shape, whatever the schema it was written in
    if problems and not records and not any(line.lstrip().startswith(b"{") for line in lines):
        raise ClipbenchError(f"{path} is not a clipbench results file: none of its {len(problems)} non-empty lines "
                             "is a JSON record; give a results directory, results.jsonl or leaderboard.csv")
    if problems and strict:
        lineno, problem, _ = problems[0]
        raise ClipbenchError(f"{path}:{lineno} {problem}; {_repair_hint(path, [lineno])}")
    new_warnings = False
    for lineno, problem, digest in problems:
        if (resolved, lineno, digest) not in _WARNED:
            _WARNED.add((resolved, lineno, digest))
            new_warnings = True
            log.warning("%s:%d %s; skipped", path, lineno, problem)
    if new_warnings and resolved not in _HINTED:
        _HINTED.add(resolved)
        log.warning("%s", _repair_hint(path, [lineno for lineno, _, _ in problems]))
    return records


def records_of(source: str | os.PathLike | list[dict]) -> list[dict]:
    """``source``'s records: a list already read (one command reads its results file once) or a file to read."""
    return source if isinstance(source, list) else read_records(source)


def record_variant(record: dict) -> str:
    """Options that change a record's numbers beyond (model, dataset, task); "" for the defaults.

    The engine's own (``limit``, a non-fp32 precision) come first, then whatever the record's task
    declares (``Task.variant_parts``), so a new task's options join the key without an edit here.
    """
    from clipbench.tasks.registry import task_for_record

    parts = []
    if record.get("limit") is not None:
        parts.append(f"limit={record['limit']}")
    if record.get("lite"):
        parts.append(f"lite={record['lite']}")
    if record.get("precision", "fp32") != "fp32":
        parts.append(str(record["precision"]))
    if record.get("language") not in (None, "en"):  # English (and records from before languages) add nothing
        parts.append(f"lang={language_label(record)}")
    if isinstance(record.get("prompts"), dict):  # a user's prompt file (engine.prompt_files), never the packaged
        parts.append(f"prompts={str(record['prompts'].get('sha256'))[:12]}")
    task = task_for_record(str(record.get("task", "")))
    if task is not None:
        parts.extend(task.variant_parts(record))
    return ",".join(parts)


def language_label(record: dict) -> str:
    """A record's language; a mean over languages names which (``mean(en+zh)``, or the count and a digest of
    the list past four), so that compare matches means over the same languages only."""
    language = str(record.get("language"))
    block = record.get(str(record.get("task"))) or {}
    languages = block.get("languages") if isinstance(block, dict) else None
    if language != "mean" or not isinstance(languages, list):
        return language
    joined = "+".join(map(str, languages))
    return f"mean({joined})" if len(languages) <= 4 else f"mean({len(languages)}:{hashlib.sha256(joined.encode()).hexdigest()[:6]})"


def record_key(record: dict) -> tuple[str, str, str, str]:
    """(model, dataset, task, variant): one leaderboard row, one row of the CI gate."""
    return record["model"], record["dataset"], record["task"], record_variant(record)


def latest_records(records: Iterable[dict]) -> list[dict]:
    """The newest record per (model, dataset, task, variant), in first-appearance order."""
    latest: dict[tuple, dict] = {}
    for record in records:
        latest[record_key(record)] = record
    return list(latest.values())


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def leaderboard_rows(records: Iterable[dict]) -> list[dict]:
    rows = []
    for r in sorted(latest_records(records), key=record_key):
        primary = r.get("primary_metric")
        ci = r.get("ci95") or {}
        for metric in sorted(r["metrics"], key=lambda m: (m != primary, m)):
            rows.append({
                "model": r["model"], "dataset": r["dataset"], "task": r["task"], "variant": record_variant(r),
                "metric": metric,
                "value": r["metrics"][metric],
                "ci_low": ci.get("low") if metric == primary else None,
                "ci_high": ci.get("high") if metric == primary else None,
                "primary_metric": primary, "n_samples": r.get("n_samples"),
                "model_identity": r.get("model_identity"), "dataset_fingerprint": r.get("dataset_fingerprint"),
                "suite": r.get("suite"), "suite_version": r.get("suite_version"), "timestamp": r.get("timestamp"),
            })
    return rows


def _csv_text(columns: list[str] | tuple[str, ...], rows: list[dict]) -> str:
    return csv_text(columns, [[_fmt(row.get(c)) for c in columns] for row in rows])


def pivot_rows(records: Iterable[dict]) -> tuple[list[str], list[dict]]:
    """Columns and rows of the pivot: model x task x variant, primary metric per dataset, mean over datasets."""
    latest = latest_records(records)
    datasets = sorted({r["dataset"] for r in latest})
    table: dict[tuple[str, str, str], dict] = {}
    for r in latest:
        model, _, task, variant = record_key(r)
        row = table.setdefault((model, task, variant), {"model": model, "task": task, "variant": variant})
        row[r["dataset"]] = r["metrics"].get(primary_metric(r))
    rows = []
    for key in sorted(table):
        row = table[key]
        values = [row[d] for d in datasets if row.get(d) is not None]
        row["mean"] = sum(values) / len(values) if values else None
        row["n_datasets"] = len(values)
        rows.append(row)
    averages = pivot_columns(latest, record_variant, rows)
    return ["model", "task", "variant", *datasets, "mean", "n_datasets", *averages], rows


def write_leaderboards(results_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Regenerate both leaderboard CSVs from ``results.jsonl`` (atomically, under the results lock)."""
    results_dir = Path(results_dir)
    long_path, pivot_path = results_dir / LEADERBOARD_FILE, results_dir / PIVOT_FILE
    with file_lock(results_dir / LEADERBOARD_FILE):
        for path in (long_path, pivot_path):  # temporary files of a regeneration that was killed
            remove_stale_temps(path)
        records = read_records(results_dir / RESULTS_FILE)
        inside(results_dir, long_path)  # both files sit in the results dir itself
        atomic_write_text(long_path, _csv_text(LEADERBOARD_COLUMNS, leaderboard_rows(records)))
        columns, rows = pivot_rows(records)
        atomic_write_text(pivot_path, _csv_text(columns, rows))
    return long_path, pivot_path
