"""benchmarks/startup.py times `clipbench --help` in a subprocess and records that it imports no torch."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import run_quick

pytestmark = pytest.mark.subprocess


def test_startup_quick_writes_summary(tmp_path):
    stdout, summary = run_quick("startup.py", tmp_path / "s.json")
    assert "Start-up wall time" in stdout
    (run,) = summary["runs"]
    assert run["command"] == "--help" and run["tree"] == "now" and run["exit_code"] == 0
    assert run["imports_torch"] is False and run["imports_torchvision"] is False
    assert run["warm_median_s"] > 0 and run["cold_s"] is None
