"""`clipbench run` over issue 29's datasets from fake copies: the averages are printed, a dataset's own tasks
run, and a copy of the wrong size stops the run before any model loads."""

from __future__ import annotations

import json

from clipbench.cli import main
from tests._fake_layouts import WRITERS


def _suite(tmp_path):
    path = tmp_path / "vtab-small.yaml"  # named vtab: its records carry the vtab suite's averages
    path.write_text("name: vtab\nversion: 1\ndatasets: [kitti_distance, clevr_count, svhn, {digits: [zeroshot, knn]}]\n"
                    "tasks: [zeroshot]\noptions: {batch_size: 32, workers: 0, bootstrap: 50, threads: 1}\n")
    return path


def test_run_prints_the_suite_averages_and_runs_each_datasets_tasks(tmp_path, capsys):
    data = tmp_path / "data"
    for name in ("kitti_distance", "clevr_count", "svhn"):
        WRITERS[name](data, 3)
    results = tmp_path / "results"
    code = main(["run", "--suite", str(_suite(tmp_path)), "--model", "clipbench-tiny", "--offline", "--data-root",
                 str(data), "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache"), "--limit", "20",
                 "--allow-count-mismatch", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    records = [json.loads(line) for line in (results / "results.jsonl").read_text().splitlines()]
    assert sorted((r["dataset"], r["task"]) for r in records) == [
        ("clevr_count", "zeroshot"), ("digits", "knn"), ("digits", "zeroshot"), ("kitti_distance", "zeroshot"),
        ("svhn", "zeroshot")]
    assert "vtab averages" in out
    vtab = [line for line in out.splitlines() if "VTAB (CLIP_benchmark's 19)" in line]
    assert len(vtab) == 1 and "over 3/19" in vtab[0] and "missing: caltech101" in vtab[0]
    values = [r["metrics"]["top1"] for r in records if r["dataset"] in ("kitti_distance", "clevr_count", "svhn")]
    assert f"{sum(values) / 3:.2f} over 3/19" in vtab[0]
    pivot = (results / "leaderboard_pivot.csv").read_text().splitlines()[0]
    assert "avg:vtab_average" in pivot and "avg:datacomp_vtab" in pivot
    from clipbench.results.records import read_records
    from clipbench.results.report.averages import averages_block

    block = averages_block(read_records(results), {})  # the report's table of them
    vtab_rows = [row for row in block.rows if row[1] == "VTAB (CLIP_benchmark's 19)"]
    assert vtab_rows and all(row[3] in ("1/19", "2/19", "3/19") for row in vtab_rows)  # variants apart here


def test_wrong_count_stops_before_any_model_loads(tmp_path, capsys, monkeypatch):
    from clipbench.engine import runner

    WRITERS["kitti_distance"](tmp_path, 2)
    monkeypatch.setattr(runner, "model_of", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    code = main(["run", "--suite", str(_suite(tmp_path)), "--dataset", "kitti_distance", "--model", "clipbench-tiny",
                 "--offline", "--data-root", str(tmp_path), "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "kitti_distance test: 8 samples under" in err and "expected 711" in err and "--allow-count-mismatch" in err
