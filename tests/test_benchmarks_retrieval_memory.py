"""benchmarks/retrieval_memory.py measures blockwise retrieval's peak RSS against the whole matrix in one run."""

from __future__ import annotations

from _benchmark_fixtures import run_quick


def test_retrieval_memory_quick_writes_summary(tmp_path):
    stdout, summary = run_quick("retrieval_memory.py", tmp_path / "m.json")
    assert "peak RSS beyond the features" in stdout
    blocked, whole = summary["runs"]
    assert blocked["budget_mb"] == 8 and whole["blocks"] == [1000, 5000] and blocked["blocks"][1] < 5000
    assert blocked["ranks_equal_whole"] is True and whole["peak_vs_whole"] == 1.0
    assert 0 < blocked["peak_extra_mb"] < whole["peak_extra_mb"]  # the budget is what bounds it
