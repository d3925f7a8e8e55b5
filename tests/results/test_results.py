"""Result store, leaderboards and the compare gate."""

from __future__ import annotations

import csv
import json

import pytest

from clipbench.foundations.errors import ClipbenchError
from clipbench.results.comparison import compare, load_primary
from clipbench.results.records import (
    LEADERBOARD_COLUMNS,
    RESULT_SCHEMA,
    append_record,
    read_records,
    record_variant,
    write_leaderboards,
)


def record(model="m", dataset="d", task="zeroshot", top1=50.0, primary="top1", **extra):
    return {"schema_version": RESULT_SCHEMA, "model": model, "dataset": dataset, "task": task,
            "primary_metric": primary, "metrics": {"top1": top1, "mean_per_class_recall": top1 - 1},
            "ci95": {"low": top1 - 2, "high": top1 + 2}, "n_samples": 10, "suite": "s", "suite_version": 1,
            "timestamp": "2024-01-01T00:00:00+00:00", **extra}


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_append_read_and_leaderboards(tmp_path):
    append_record(tmp_path, record("b", "d1", top1=40.0))
    append_record(tmp_path, record("a", "d1", top1=10.0))
    append_record(tmp_path, record("a", "d1", top1=20.0))  # newer record for the same row wins
    append_record(tmp_path, record("a", "d2", top1=30.0, primary="mean_per_class_recall"))
    with open(tmp_path / "results.jsonl", "a") as fh:
        fh.write('{"model": "half-writ')  # a crash mid-line: skipped with a warning
    assert len(read_records(tmp_path)) == 4
    long_path, pivot_path = write_leaderboards(tmp_path)
    rows = _rows(long_path)
    assert tuple(rows[0]) == LEADERBOARD_COLUMNS
    a_d1 = [r for r in rows if (r["model"], r["dataset"]) == ("a", "d1")]
    assert [(r["metric"], r["value"], r["ci_low"]) for r in a_d1] == [("top1", "20.0000", "18.0000"),
                                                                      ("mean_per_class_recall", "19.0000", "")]
    pivot = _rows(pivot_path)
    assert list(pivot[0]) == ["model", "task", "variant", "d1", "d2", "mean", "n_datasets"]
    assert pivot[0] == {"model": "a", "task": "zeroshot", "variant": "", "d1": "20.0000", "d2": "29.0000", "mean": "24.5000",
                        "n_datasets": "2"}
    assert pivot[1]["d2"] == "" and pivot[1]["mean"] == "40.0000"


def test_quick_or_low_precision_runs_never_replace_the_full_run_row(tmp_path):
    append_record(tmp_path, record("a", "d1", top1=70.0, limit=None, precision="fp32"))
    append_record(tmp_path, record("a", "d1", top1=10.0, limit=50, precision="fp32"))
    append_record(tmp_path, record("a", "d1", task="linear_probe", top1=69.0, limit=None, precision="bf16",
                                   linear_probe={"features": "pre_projection", "solver": "sklearn"}))
    assert record_variant(record(limit=None, precision="fp32")) == ""
    long_path, pivot_path = write_leaderboards(tmp_path)
    top1 = {(r["variant"], r["value"]) for r in _rows(long_path) if r["metric"] == "top1"}
    assert top1 == {("", "70.0000"), ("limit=50", "10.0000"),
                    ("bf16,pre_projection,solver=sklearn", "69.0000")}
    assert [(r["variant"], r["d1"]) for r in _rows(pivot_path)] == [
        ("bf16,pre_projection,solver=sklearn", "69.0000"), ("", "70.0000"), ("limit=50", "10.0000")]
    # the gate compares like with like: a full-run baseline is not satisfied by a --limit run
    quick = _results(tmp_path, "quick", record("a", "d1", top1=90.0, limit=50))
    full = _results(tmp_path, "full", record("a", "d1", top1=70.0))
    result = compare(quick, full)
    assert result.failed and {r.status for r in result.rows} == {"MISSING", "new"}


def test_newer_schema_is_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps(record(schema_version=RESULT_SCHEMA + 1)) + "\n")
    with pytest.raises(ClipbenchError, match="newer than this clipbench"):
        read_records(tmp_path)


def _results(tmp_path, name, *records):
    folder = tmp_path / name
    for r in records:
        append_record(folder, r)
    write_leaderboards(folder)
    return folder


def test_compare_gate(tmp_path):
    base = _results(tmp_path, "base", record("m", "d1", top1=50.0), record("m", "d2", top1=60.0))
    same = _results(tmp_path, "same", record("m", "d1", top1=49.7), record("m", "d2", top1=61.0),
                    record("m", "d3", top1=5.0))
    drop = _results(tmp_path, "drop", record("m", "d1", top1=49.0), record("m", "d2", top1=60.0))
    missing = _results(tmp_path, "missing", record("m", "d1", top1=50.0))

    ok = compare(same, base, max_drop=0.5)
    assert not ok.failed and [r.status for r in ok.rows] == ["ok", "improved", "new"]
    assert compare(same, base, max_drop=0.2).failed
    bad = compare(drop / "leaderboard.csv", base / "leaderboard.csv", max_drop=0.5)
    assert bad.failed and bad.rows[0].status == "DROP" and bad.rows[0].delta == pytest.approx(-1.0)
    assert "| m | d1 | zeroshot | - | top1 | 50.00 | 49.00 | -1.00 | DROP |" in bad.to_markdown()
    gone = compare(missing, base, max_drop=5)
    assert gone.failed and gone.rows[1].status == "MISSING"
    # the long CSV and the JSONL give the same primary values
    assert load_primary(base / "leaderboard.csv") == load_primary(base / "results.jsonl")


def test_compare_bad_inputs(tmp_path):
    with pytest.raises(ClipbenchError, match="results not found"):
        compare(tmp_path / "nope", tmp_path / "nope")
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ClipbenchError, match="not a long leaderboard CSV"):
        load_primary(bad)
    with pytest.raises(ClipbenchError, match="--max-drop"):
        compare(bad, bad, max_drop=-1)


def test_core_record_fields_are_declared_in_code_enforced_on_write_and_documented():
    from pathlib import Path

    from clipbench.results.schema import CORE_FIELDS, core_record

    values = {f.name: None for f in CORE_FIELDS}
    values.update(model="m", dataset="d", task="zeroshot", metrics={}, schema_version=1)
    record = core_record(**values)
    assert list(record) == [f.name for f in CORE_FIELDS]
    with pytest.raises(TypeError, match="missing \\['cost'\\]"):
        core_record(**{k: v for k, v in values.items() if k != "cost"})
    with pytest.raises(TypeError, match="unknown \\['colour'\\]"):
        core_record(**values, colour="red")
    with pytest.raises(TypeError, match="'n_samples' is str, expected int"):
        core_record(**{**values, "n_samples": "797"})
    with pytest.raises(TypeError, match="'limit' is bool"):
        core_record(**{**values, "limit": True})
    with pytest.raises(TypeError, match="model is required"):
        core_record(**{**values, "model": None})
    example = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md").read_text()
    undocumented = [f.name for f in CORE_FIELDS if f'"{f.name}"' not in example and f"`{f.name}`" not in example]
    assert undocumented == [], f"docs/ARCHITECTURE.md does not show core record field(s) {undocumented}"
