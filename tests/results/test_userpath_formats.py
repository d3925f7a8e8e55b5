"""`history` and `samples` speak `--format json|csv` like `run` and `compare`, through the one table formatter."""

from __future__ import annotations

import csv
import io
import json

import pytest

import clipbench
from clipbench.cli import main
from clipbench.results.samples import read_samples
from clipbench.suites import parse_suite


def _history(tmp_path):
    lines = []
    for i, (value, tag) in enumerate(((70.0, "v1"), (68.5, None))):
        lines.append(json.dumps({"model": "m", "dataset": "d", "task": "zeroshot", "metrics": {"top1": value},
                                 "primary_metric": "top1", "timestamp": f"2026-01-0{i + 1}T00:00:00+00:00",
                                 "ci95": {"low": value - 2, "high": value + 2}, "tag": tag, "record_id": f"r{i}",
                                 "git": {"commit": f"{i}" * 40, "dirty": bool(i)}}))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_history_as_json_and_csv(tmp_path, capsys):
    res = _history(tmp_path)
    assert main(["history", str(res), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["value"], r["change"], r["tag"], r["dirty"], r["record_id"]) for r in rows] == \
        [(70.0, None, "v1", False, "r0"), (68.5, -1.5, None, True, "r1")]
    assert rows[1]["commit"] == "1" * 40 and rows[0]["ci_low"] == 68.0 and rows[0]["metric"] == "top1"
    assert main(["history", str(res), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["value"] for r in table] == ["70.0", "68.5"] and table[1]["change"] == "-1.5"
    assert main(["history", str(res), "--model", "nobody", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("model,dataset,task,variant,timestamp,metric,value")  # header kept
    with pytest.raises(SystemExit) as exit_info:
        main(["history", str(res), "--format", "yaml"])
    assert exit_info.value.code == 2


def test_samples_as_json_and_csv_give_every_row_of_the_per_sample_file(tmp_path, capsys):
    suite = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                         "options": {"bootstrap": 0, "offline": True, "threads": 1}}, "t", "fmt", check_dataset=None)
    (record,) = clipbench.run("clipbench-tiny", suite=suite, cache_dir=tmp_path / "cache",
                              results_dir=tmp_path / "res", device="cpu", progress=False)
    stored = read_samples(tmp_path / "res", record)
    assert main(["samples", record["record_id"][:8], "--results", str(tmp_path / "res"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == record["n_samples"] == len(stored)
    assert [r["index"] for r in rows] == stored.index.tolist() and [r["label"] for r in rows] == stored.label.tolist()
    assert [r["correct"] for r in rows] == stored.correct.tolist()
    assert main(["samples", record["record_id"][:8], "--results", str(tmp_path / "res"), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == len(rows) and table[0]["label"] == str(rows[0]["label"])
