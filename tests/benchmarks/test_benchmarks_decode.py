"""benchmarks/decode.py: `--decode gpu`'s pipeline (on the CPU here) against PIL's, in pixels, features and top-1."""

from __future__ import annotations

import pytest
from _benchmark_fixtures import run_quick

pytestmark = pytest.mark.subprocess


def test_decode_quick_measures_the_difference(tmp_path):
    stdout, summary = run_quick("decode.py", tmp_path / "d.json", in_process=True)
    assert "--decode gpu vs the reference" in stdout and "libjpeg-turbo" in summary["decoder"]
    pixels, accuracy = summary["pixels"], summary["accuracy"]
    assert pixels["images"] == 12 and 0 < pixels["differing_share"] < 2e-3 and pixels["max_levels"] < 1.01
    assert accuracy["images"] == 40 and accuracy["predictions_differing"] <= 1
    assert abs(accuracy["top1_pil"] - accuracy["top1_gpu"]) <= 2.5  # one image of 40 at most
    assert accuracy["preprocess_id_gpu"].startswith(accuracy["preprocess_id_pil"] + ":decode-libjpeg-turbo")
    assert 0.999 < accuracy["min_cosine"] <= 1.0
    assert all(v > 0 for v in summary["rates"].values())
