"""benchmarks/text_tower.py runs on a tiny text tower and writes a complete JSON summary (no timing checks)."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import exit_code_in_process, run_quick


@pytest.mark.subprocess
@pytest.mark.peer
def test_text_tower_quick_writes_summary(tmp_path):
    out = tmp_path / "tt.json"
    stdout, summary = run_quick("text_tower.py", out, in_process=True)
    assert "Text tower" in stdout
    assert summary["benchmark"] == "text_tower" and summary["prompts_timed"] == 48
    assert summary["sorted_equals_file_order"] is True and summary["same_classifier"] is True
    methods = {m["method"]: m for m in summary["methods"]}
    assert set(methods) == {"clipbench sorted", "clipbench file order", "open_clip per class"}
    assert methods["clipbench file order"]["max_rel_diff_vs_sorted"] <= 1e-6
    # sorting never runs more positions than file order; open_clip runs all 77 for every prompt
    assert methods["clipbench sorted"]["token_positions"] <= methods["clipbench file order"]["token_positions"]
    assert methods["open_clip per class"]["token_positions"] == 48 * 77
    full = {m: methods[m]["full_build_token_positions"] for m in methods}
    assert full["clipbench sorted"] < full["clipbench file order"] < full["open_clip per class"] == 1000 * 8 * 77


def test_text_tower_rejects_bad_sizes(monkeypatch, capsys):
    assert exit_code_in_process("text_tower.py", "--classes", "0", monkeypatch=monkeypatch) == 2
    assert "--classes" in capsys.readouterr().err
