"""benchmarks/lite_zoo.py trains a zoo of small CLIPs, runs them on digits and measures `clipbench lite`'s rank
agreement; --quick trains 3 models for 2 steps each and scores zero-shot only (run in this interpreter: the training and the runs are
the cost, not the start-up)."""

from __future__ import annotations

import json

from _benchmark_fixtures import exit_code_in_process


def test_lite_zoo_quick_trains_runs_and_measures(tmp_path, monkeypatch, capsys):
    out = tmp_path / "zoo.json"
    assert exit_code_in_process("lite_zoo.py", "--quick", "--work", str(tmp_path / "w"), "--budget", "40",
                                "--out", str(out), monkeypatch=monkeypatch) == 0
    summary = json.loads(out.read_text())
    assert summary["models"] == 3 and [d["task"] for d in summary["datasets"]] == ["zeroshot"]
    for d in summary["datasets"]:
        assert d["lite_n"] <= 40 and d["full_n"] == 797 and len(d["models"]) == 3
    assert (tmp_path / "w" / "lite.yaml").is_file() and "spearman" in capsys.readouterr().out
