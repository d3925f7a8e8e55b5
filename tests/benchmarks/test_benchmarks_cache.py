"""benchmarks/cache.py: cold run then warm rerun on a tiny model; the warm one encodes nothing (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import BENCHMARKS, exit_code_in_process, run_quick

SCRIPT = BENCHMARKS / "cache.py"


@pytest.mark.subprocess
def test_cache_quick_warm_rerun_encodes_nothing(tmp_path):
    out = tmp_path / "cache.json"
    stdout, summary = run_quick("cache.py", out, in_process=True)
    assert "Cold run vs warm rerun" in stdout
    assert summary["benchmark"] == "cache" and summary["machine"]["cpu_count"]
    assert summary["images"] == 5 * (8 + 4)
    (pair,) = summary["pairs"]
    cold, warm = pair["cold"], pair["warm"]
    assert cold["records"] == warm["records"] == 2  # zeroshot + linear_probe on one dataset
    # cold: every image encoded exactly once (test features shared by both tasks), by both counts
    assert cold["encode_image_samples"] == cold["image_forward_samples"] == summary["images"]
    assert cold["encode_text_calls"] > 0
    # warm: nothing encoded, same numbers
    assert warm["encode_image_calls"] == warm["image_forward_batches"] == warm["encode_text_calls"] == 0
    assert summary["warm_image_forwards"] == 0 and summary["warm_text_forwards"] == 0
    assert summary["targets_met"]["zero_image_forwards_when_warm"] is True
    assert pair["same_metrics"] is True
    assert pair["warm_over_cold"] == warm["seconds"] / cold["seconds"]


def test_cache_rejects_unknown_task(monkeypatch, capsys):
    assert exit_code_in_process(SCRIPT.name, "--quick", "--tasks", "retrieval", monkeypatch=monkeypatch) == 2
    assert "--tasks 'retrieval'" in capsys.readouterr().err
