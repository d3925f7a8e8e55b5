"""benchmarks/scale.py: the DataComp-shaped job's summary has every part (no timing checks)."""

from __future__ import annotations

import sys

import pytest
from _benchmark_fixtures import exit_code_in_process, run_quick


@pytest.mark.subprocess
@pytest.mark.slow
def test_scale_quick_runs_one_and_two_processes_and_writes_summary(tmp_path):
    stdout, summary = run_quick("scale.py", tmp_path / "s.json")
    assert "DataComp-shaped job" in stdout and "speed-up 1 -> 2 processes" in stdout
    assert "extrapolation, not a measurement" in stdout
    assert summary["benchmark"] == "scale" and summary["tasks"] == 3 and summary["images"] == 6
    assert summary["records_equal"] is True  # the two-rank job array scored the single process's numbers
    assert {"1 process (plain run)", "job array of 1: ranks at once", "job array of 2: ranks at once",
            "job array of 2: scoring step"} <= set(summary["end_to_end_s"])
    assert summary["speedup_1_to_2"] > 0 and summary["extraction_speedup_1_to_2"] > 0
    assert summary["plan_speedup_1_to_2"] > 0 and "job array of 2, --shard-jobs (no scoring step)" in summary["cpu_s"]
    assert summary["bound"] in ("decode-bound", "encode-bound")
    assert summary["workers_per_gpu"] >= 1 and summary["full_size_images"] == 752_016


def test_scale_counts_follow_the_tasklist_and_bad_arguments_fail_early(monkeypatch, capsys):
    import runpy

    from _benchmark_fixtures import BENCHMARKS

    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    try:
        script = runpy.run_path(str(BENCHMARKS / "scale.py"))
        counts = script["task_counts"](1 / 2000)
    finally:
        for name in set(sys.modules) - before:
            if str(getattr(sys.modules[name], "__file__", "")).startswith(str(BENCHMARKS)):
                del sys.modules[name]
    from clipbench.suites import load_suite

    assert [n for n, _, _ in counts] == list(load_suite("datacomp").datasets)  # the suite's datasets, in order
    by_name = {n: c for n, c, _ in counts}
    assert by_name["imagenet1k"] == 25 and by_name["voc2007"] == 2  # the suite's VOC2007: 4,952 images
    assert min(c for _, c, _ in counts) == 2  # KITTI's 711 images keep 2
    assert exit_code_in_process("scale.py", "--scale", "0", monkeypatch=monkeypatch) == 2
    assert "--scale must be in (0, 1]" in capsys.readouterr().err
