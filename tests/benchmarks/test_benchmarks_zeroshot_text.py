"""benchmarks/zeroshot_text.py runs on a tiny text tower and writes a complete JSON summary (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import BENCHMARKS, exit_code_in_process, run_quick

SCRIPT = BENCHMARKS / "zeroshot_text.py"


@pytest.mark.subprocess
@pytest.mark.peer
def test_zeroshot_text_quick_writes_summary(tmp_path):
    out = tmp_path / "zs.json"
    stdout, summary = run_quick("zeroshot_text.py", out, in_process=True)
    assert "Zero-shot classifier" in stdout
    assert summary["benchmark"] == "zeroshot_text" and summary["machine"]["versions"]["torch"]
    assert summary["classes_timed"] == 6 and summary["templates"] == 8 and summary["prompts_timed"] == 48
    assert summary["classifier_shape"] == [6, 32]  # tiny model's embedding width
    # batched, per-class and open_clip's per-class loop build the same classifier
    assert summary["same_classifier"] is True
    methods = {m["method"]: m for m in summary["methods"]}
    assert set(methods) == {"clipbench batched", "clipbench per class", "open_clip per class"}
    for m in methods.values():
        assert m["max_rel_diff_vs_batched"] <= 1e-5
        assert m["seconds"] > 0 and len(m["times_s"]) == 1
        assert m["projected_full_seconds"] == m["seconds"] * 1000 / 6


def test_zeroshot_text_rejects_bad_sizes(monkeypatch, capsys):
    assert exit_code_in_process(SCRIPT.name, "--classes", "0", monkeypatch=monkeypatch) == 2
    assert "--classes" in capsys.readouterr().err
