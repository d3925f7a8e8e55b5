"""Two `clipbench run` processes started together on one cache and one results directory."""

from __future__ import annotations

import csv

import pytest
from _datasets_fixtures import class_tree
from _engine_fixtures import write_tiny_clip
from _fault_fixtures import expect_ok, start_cli

from clipbench.results.records import read_records

pytestmark = pytest.mark.subprocess

SUITE = "version: 1\ndatasets: [digits]\ntasks: [zeroshot]\noptions: {batch_size: 4, bootstrap: 50, workers: 0}\n"


def test_two_concurrent_runs_extract_each_shard_once_and_write_every_row(tmp_path):
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    (tmp_path / "suite.yaml").write_text(SUITE)
    class_tree(tmp_path / "pets", {"cat": 3, "dog": 3})
    argv = ["run", "--model", str(ckpt), "--suite", str(tmp_path / "suite.yaml"), "--dataset",
            f"digits,folder:{tmp_path / 'pets'}", "--limit", "40", "--device", "cpu", "--no-progress",
            "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "res")]
    log = tmp_path / "forwards.log"
    procs = [start_cli(argv, CLIPBENCH_TEST_FORWARD_LOG=str(log)) for _ in range(2)]
    for proc in procs:
        expect_ok(proc)

    # one run's worth of image forwards: 40 digits in 10 batches of 4, 6 pets in batches of 4 and 2
    forwards = [int(n) for n in log.read_text().split()]
    assert sorted(forwards) == sorted([4] * 10 + [4, 2])

    records = read_records(tmp_path / "res")
    assert len(records) == 4 and len((tmp_path / "res" / "results.jsonl").read_text().splitlines()) == 4
    by_dataset: dict[str, list[dict]] = {}
    for r in records:
        by_dataset.setdefault(r["dataset"], []).append(r)
    assert sorted(len(v) for v in by_dataset.values()) == [2, 2]
    for pair in by_dataset.values():  # both processes scored the same features
        assert pair[0]["metrics"] == pair[1]["metrics"] and pair[0]["ci95"] == pair[1]["ci95"]

    with open(tmp_path / "res" / "leaderboard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = [(r["model"], r["dataset"], r["task"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)) and {k[1] for k in keys} == set(by_dataset)
    for r in rows:
        assert abs(float(r["value"]) - by_dataset[r["dataset"]][0]["metrics"][r["metric"]]) < 1e-4
    pivot = (tmp_path / "res" / "leaderboard_pivot.csv").read_text().splitlines()
    # one model x task row per variant: --limit 40 cuts digits (a limit=40 row) but not the smaller
    # folder set, whose run is the full one (no variant)
    assert len(pivot) == 3 and sorted(line.split(",")[2] for line in pivot[1:]) == ["", "limit=40"]
    entries = [p for p in (tmp_path / "cache" / "features").iterdir() if p.is_dir()]
    assert len(entries) == 2 and all((e / "manifest.json").is_file() for e in entries)
    assert not list((tmp_path / "cache").rglob("*.tmp"))
