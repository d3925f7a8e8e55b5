"""benchmarks/pipeline.py: decode paths agree pixel for pixel; the summary has every table (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import run_quick

pytestmark = pytest.mark.subprocess


def test_pipeline_quick_writes_summary(tmp_path):
    stdout, summary = run_quick("pipeline.py", tmp_path / "p.json", in_process=True)
    assert "One worker" in stdout and "Workers to feed an encoder" in stdout
    assert summary["benchmark"] == "pipeline" and summary["images"] == 12
    assert summary["pixels_identical"] is True and len(summary["identical_per_image"]) == 12
    assert set(summary["loader_img_s_by_workers"]) == {"0", "1"}
    assert all(v > 0 for v in summary["single_worker_img_s"].values())
    needs = {n["encoder_img_s"]: n["workers"] for n in summary["workers_needed"]}
    assert needs[100.0] <= needs[1000.0] <= needs[3000.0] <= needs[10000.0]
    assert summary["auto_workers"]["cpu_small_split"] == 0
