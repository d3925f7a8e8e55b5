"""benchmarks/zeroshot_text.py runs on a tiny text tower and writes a complete JSON summary (no timing checks)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _benchmark_fixtures import BENCHMARKS, run_quick

pytestmark = pytest.mark.subprocess

SCRIPT = BENCHMARKS / "zeroshot_text.py"


@pytest.mark.peer
def test_zeroshot_text_quick_writes_summary(tmp_path):
    out = tmp_path / "zs.json"
    stdout, summary = run_quick("zeroshot_text.py", out)
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


def test_zeroshot_text_rejects_bad_sizes(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--classes", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--classes" in proc.stderr
