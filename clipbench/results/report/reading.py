"""The report's input: primary-metric rows (newest per row) and, beside them, the provenance of each model label.

A non-default run (--limit, bf16, ...) is its own row, labelled ``model [variant]``. Every field read
here comes from a results file and is untrusted: a field of the wrong type costs a cell, never the report.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.tables import csv_records
from clipbench.results.labels import labelled
from clipbench.results.records import record_variant
from clipbench.results.source import ResultSet, load_result_set, primary_rows

_COLUMNS = ["model", "dataset", "task", "metric", "value", "ci_low", "ci_high", "n_samples", "model_family", "timestamp"]


# ---------------------------------------------------------------- reading results


def load_results(source: str | os.PathLike | ResultSet = "results") -> tuple[pd.DataFrame, Path]:
    """Primary-metric rows (newest per model x dataset x task x variant) and the file they came from, read by
    ``clipbench.results.source`` (the reader the gate uses, so both agree on which metric is primary)."""
    rows, path = primary_rows(source)
    if not rows:
        raise ClipbenchError(f"{path} holds no readable result records" if path.suffix == ".jsonl"
                             else f"{path} holds no results")
    frame = pd.DataFrame(
        [{"model": labelled(r.model, r.variant), "dataset": r.dataset, "task": r.task, "metric": r.metric,
          "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "n_samples": r.n_samples,
          "model_family": r.model_family, "timestamp": r.timestamp, "_order": i} for i, r in enumerate(rows)],
        columns=[*_COLUMNS, "_order"])
    frame = frame.sort_values(["timestamp", "_order"], kind="stable").drop(columns="_order")
    frame = frame.drop_duplicates(["model", "dataset", "task"], keep="last")
    for col in ("value", "ci_low", "ci_high"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.reset_index(drop=True), path


# ---------------------------------------------------------------- provenance


@dataclass
class Provenance:
    """What the report's rows for one model label were measured with (from the newest records)."""

    weights_sha256: str | None = None
    params: int | None = None  # a parameter count the records carry, if any
    facts: dict = field(default_factory=dict)  # the checked fields of record["model_facts"] (schema 2)
    fingerprints: dict[str, str] = field(default_factory=dict)  # dataset -> fingerprint
    versions: set[str] = field(default_factory=set)  # clipbench versions
    timestamps: list[str] = field(default_factory=list)
    measured: dict[str, str] = field(default_factory=dict)  # dataset -> timestamp of its newest record


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _text(value) -> str | None:
    return value if isinstance(value, str) and value and value.lower() != "nan" else None


def _sha_of(record: dict) -> str | None:
    """The weights' SHA-256: the record's own field, else the hash inside ``model_identity``."""
    for value in (record.get("weights_sha256"), record.get("model_identity")):
        text = _text(value)
        if text and (m := _SHA256.search(text.lower())):
            return m[0]
    return None


def _newest_by_key(result_set: ResultSet) -> dict[tuple[str, str, str], dict]:
    """(model label, dataset, task) -> the newest record or leaderboard row, as load_results picks it.

    Records come from ``read_records`` (the lines it skipped were already warned about once); a
    leaderboard's cells are text, so a cell of an odd shape costs a provenance cell, never the report.
    """
    rows: list[dict] = []
    path = result_set.path
    if result_set.records is not None:
        rows = [{**rec, "_label": labelled(rec["model"], record_variant(rec))} for rec in result_set.records]
    else:
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                table = csv_records(fh)
        except (OSError, UnicodeDecodeError, csv.Error):  # load_results has read it; this costs provenance only
            return {}
        rows = [{**rec, "_label": labelled(str(rec.get("model") or ""), rec.get("variant") or "")} for rec in table]
    rows = [r for r in rows if isinstance(r.get("dataset"), str) and isinstance(r.get("task"), str)]
    rows.sort(key=lambda r: str(r.get("timestamp") or ""))  # stable: append order breaks ties
    return {(r["_label"], r["dataset"], r["task"]): r for r in rows}


def _count(value) -> int | float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return value if ok else None


def recorded_facts(value) -> dict:
    """The fields of a record's ``model_facts`` (written at run time from the loaded model) that have the right
    type: architecture, family (text), params, resolution (positive integers), image_gflops (a positive number)."""
    if not isinstance(value, dict):
        return {}
    facts = {k: _text(value.get(k)) for k in ("architecture", "family")}
    facts |= {k: v if isinstance(v := _count(value.get(k)), int) else None for k in ("params", "resolution")}
    facts["image_gflops"] = _count(value.get("image_gflops"))
    return {k: v for k, v in facts.items() if v is not None}


def load_provenance(source: str | os.PathLike | ResultSet, frame: pd.DataFrame) -> dict[str, Provenance]:
    """Per model label in ``frame``: weights hash, dataset fingerprints, clipbench versions, dates."""
    newest = _newest_by_key(load_result_set(source))
    out: dict[str, Provenance] = {}
    for row in frame.itertuples():
        prov = out.setdefault(row.model, Provenance())
        rec = newest.get((row.model, row.dataset, row.task))
        if rec is None:
            continue
        prov.weights_sha256 = prov.weights_sha256 or _sha_of(rec)
        params = rec.get("params")
        if isinstance(params, int) and not isinstance(params, bool) and params > 0:
            prov.params = params
        prov.facts = recorded_facts(rec.get("model_facts")) or prov.facts
        if fp := _text(rec.get("dataset_fingerprint")):
            prov.fingerprints[row.dataset] = fp
        versions = rec.get("versions")
        if isinstance(versions, dict) and (v := _text(versions.get("clipbench"))):
            prov.versions.add(v)
        if ts := _text(rec.get("timestamp")):
            prov.timestamps.append(ts)
            prov.measured[row.dataset] = max(ts, prov.measured.get(row.dataset, ts))
    return out
