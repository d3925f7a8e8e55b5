"""benchmarks/probe.py runs end to end on a tiny problem and writes its JSON summary (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import run_quick

pytestmark = [pytest.mark.subprocess, pytest.mark.peer]


def test_probe_benchmark_quick_writes_summary(tmp_path):
    out = tmp_path / "probe.json"
    stdout, summary = run_quick("probe.py", out, "--threads", "1", in_process=True)
    assert "sklearn / torch time" in stdout and "matrix products" in stdout
    assert summary["benchmark"] == "probe"
    assert summary["problem"]["n_train"] == 600
    for solver in ("torch", "sklearn"):
        result = summary["results"][solver]
        assert result["solver"] == solver and len(result["sweep"]) == 15
        assert result["time_s"] > 0 and 0 <= result["top1"] <= 100
    comparison = summary["comparison"]
    assert {"time_ratio_sklearn_over_torch", "same_or_neighbouring_C", "top1_difference"} <= set(comparison)
    assert isinstance(comparison["same_or_neighbouring_C"], bool)
    machine = summary["machine"]
    assert machine["cpu_count"] >= 1 and "sklearn" in machine["versions"] and machine["date"]
