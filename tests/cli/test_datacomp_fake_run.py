"""`clipbench run --suite datacomp` end to end on fake copies of all its 40 datasets, each written in its real
on-disk layout (tests/_fake_layouts*.py): every suite entry gives a record and DataComp's averages are printed
over all 38 scored tasks."""

from __future__ import annotations

import functools
import json

import pytest
from _fake_layouts_groups import WRITERS as GROUP_WRITERS
from _fake_layouts_groups import relaxed_counts

from clipbench.cli import main
from clipbench.results.suite_averages import AVERAGES, DATACOMP_38, main_value
from clipbench.suites import load_suite
from tests._fake_layouts import WRITERS as NEWER_WRITERS
from tests._fake_layouts_classic import WRITERS as CLASSIC_WRITERS
from tests._fake_layouts_classic import write_caltech101

#: Caltech-101 with test images in 10 of its 102 class folders (each such class also needs 30 train images)
WRITERS = {**NEWER_WRITERS, **GROUP_WRITERS, **CLASSIC_WRITERS,
           "caltech101": functools.partial(write_caltech101, test_classes=10)}
#: evaluation samples per class; 1 where a class costs many files (ImageNet's 1000 folders, SUN397's 397)
PER_CLASS = {"imagenet1k": 1, "imagenet_sketch": 1, "imagenet_v2": 1, "sun397": 1}


@pytest.mark.slow
def test_datacomp_suite_runs_every_task_on_fakes_and_prints_its_averages(tmp_path, capsys):
    suite = load_suite("datacomp")
    entries = [(name, task) for name in suite.datasets for task in suite.tasks_for(name)]
    names = sorted(suite.datasets)
    assert len(names) == 40 and set(DATACOMP_38) <= set(names)
    data = tmp_path / "data"
    for name in names:
        WRITERS[name](data, PER_CLASS.get(name, 2))
    results = tmp_path / "results"
    argv = ["run", "--suite", "datacomp", "--model", "clipbench-tiny", "--offline", "--data-root", str(data),
            "--limit", "20", "--allow-count-mismatch", "--bootstrap", "0", "--no-progress", "--workers", "0",
            "--threads", "1", "--results-dir", str(results), "--cache-dir", str(tmp_path / "cache")]
    with relaxed_counts([n for n in names if n in GROUP_WRITERS]):
        code = main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    records = [json.loads(line) for line in (results / "results.jsonl").read_text().splitlines()]
    assert sorted((r["dataset"], r["task"]) for r in records) == sorted(entries)
    # WinoGAViL's --limit keeps the whole items of 20 drawn images, so it holds more (clipbench/datasets/winogavil.py)
    assert [(r["dataset"], r["n_samples"]) for r in records if not 0 < r["n_samples"] <= 20 and r["dataset"] != "winogavil"] == []
    title = AVERAGES["datacomp_average"].title
    line = [row for row in out.splitlines() if title in row]
    assert len(line) == 1 and "over 38/38" in line[0] and "missing" not in line[0], out
    values = [main_value(r) for r in records if r["dataset"] in DATACOMP_38]
    assert len(values) == 38 and f"{sum(values) / 38:.2f} over 38/38" in line[0]
    for name in ("imagenet", "imagenet_dist_shifts", "datacomp_vtab", "retrieval"):
        assert AVERAGES[name].title in out
