"""benchmarks/extract.py runs end to end on tiny models and writes a complete JSON summary (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import BENCHMARKS, exit_code_in_process, run_quick

SCRIPT = BENCHMARKS / "extract.py"


@pytest.mark.subprocess
def test_extract_quick_writes_summary(tmp_path):
    out = tmp_path / "extract.json"
    stdout, summary = run_quick("extract.py", out, in_process=True)
    assert "Image encoder throughput" in stdout and "Input pipeline" in stdout
    assert summary["benchmark"] == "extract"
    for field in ("date", "cpu_count", "cpu"):
        assert summary["machine"][field]
    runs = {r["model"]: r for r in summary["models"] if r["precision"] == "fp32"}
    assert set(runs) == {"tiny-ViT", "tiny-RN"}
    for run in runs.values():
        # identical weights must give identical features (the benchmark's correctness precondition)
        assert run["identical_features"] is True and run["max_rel_diff"] <= 1e-5
        assert run["clipbench_img_s"] > 0 and run["open_clip_img_s"] > 0
        assert run["ratio"] == run["clipbench_img_s"] / run["open_clip_img_s"]
        assert len(run["clipbench_times_s"]) == len(run["open_clip_times_s"]) == run["iters"]
        assert run["pipeline_workers_to_keep_up"] > 0
    (pipeline,) = summary["pipeline"]
    assert pipeline["resolution"] == 64 and pipeline["pipeline_img_s_per_worker"] > 0
    assert 0 < pipeline["decode_share"] < 1
    if summary["machine"]["cuda"] is None:
        assert summary["gpu"] is None and "no CUDA" in summary["gpu_note"]


def test_extract_rejects_unknown_model(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "x.json")
    assert exit_code_in_process(SCRIPT.name, "--models", "ViT-Z/99", "--out", out, monkeypatch=monkeypatch) == 2
    assert "unknown model 'ViT-Z/99'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
