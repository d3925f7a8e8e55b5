"""benchmarks/end_to_end.py on a tiny open_clip architecture: both tools run, accuracies agree (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import run_quick

pytestmark = [pytest.mark.subprocess, pytest.mark.peer]


@pytest.mark.slow
def test_end_to_end_quick_runs_both_tools_with_equal_accuracy(tmp_path):
    stdout, summary = run_quick("end_to_end.py", tmp_path / "e2e.json")
    assert "CLIP_benchmark / clipbench" in stdout and "linear probe asserts a CUDA device" in stdout
    assert summary["benchmark"] == "end_to_end" and summary["accuracy_equal"] is True
    assert len(summary["accuracies"]["clipbench"]) == 2 and len(summary["accuracies"]["CLIP_benchmark"]) == 1
    # --quick runs CLIP_benchmark (which keeps no cache) once: its cold run stands for its warm one
    assert set(summary["median_s"]) == {"clipbench cold", "clipbench warm", "CLIP_benchmark cold"}
    assert summary["warm_ratio"] == summary["median_s"]["CLIP_benchmark cold"] / summary["median_s"]["clipbench warm"]
    assert summary["cold_ratio"] > 0 and summary["warm_ratio"] > 0
