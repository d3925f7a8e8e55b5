"""benchmarks/gpu.py and benchmarks/probe_scale.py in --quick mode: on a CPU-only machine every GPU part is
skipped loudly ("SKIPPED: no CUDA device") and recorded as skipped; the CPU parts still measure."""

from __future__ import annotations

import pytest
import torch
from _benchmark_fixtures import run_quick


@pytest.mark.subprocess
def test_gpu_quick_skips_gpu_parts_loudly_without_cuda(tmp_path):
    stdout, summary = run_quick("gpu.py", tmp_path / "gpu.json")
    assert summary["benchmark"] == "gpu"
    if torch.cuda.is_available():  # on a GPU machine the parts run instead
        assert "ViT-B/16 bf16" in summary["encoders"] and summary["torchrun"]["equal"] is True
        return
    for part in ("encoders", "--decode gpu (nvjpeg) against PIL", "probe at ImageNet shape", "1-GPU torchrun with NCCL"):
        assert f"SKIPPED: no CUDA device ({part})" in stdout
    for part in ("encoders", "decode", "probe", "torchrun"):
        assert summary[part] == {"skipped": "no CUDA device"}
    assert summary["pipeline"]["img_s"] > 0 and summary["pipeline"]["encoder_starved"] is None


def test_vit_flops_match_open_clips_profile():
    import sys

    from _benchmark_fixtures import BENCHMARKS

    sys.path.insert(0, str(BENCHMARKS))
    from gpu import device_peak, vit_gflops

    assert abs(vit_gflops(768, 12, 16, 224) - 35.13) < 0.2  # open_clip model profile, ViT-B-16 image tower
    assert abs(vit_gflops(1024, 24, 14, 224) - 162.03) < 0.8  # ViT-L-14
    assert device_peak("NVIDIA H100 PCIe", None) == 756.0 and device_peak("NVIDIA H200", None) == 989.0
    assert device_peak("unknown", None) is None and device_peak("x", 100.0) == 100.0


@pytest.mark.subprocess
def test_probe_scale_compares_device_and_host_streamed_rows_in_one_run(tmp_path):
    """The comparison the GPU job runs (benchmarks/gpu.py's probe part), here on the CPU."""
    stdout, summary = run_quick("probe_scale.py", tmp_path / "cs.json", "--compare-storage")
    runs = summary["compare_storage"]
    assert runs["same_choice"] is True and runs["rows"] == 600 and runs["host_over_device"] > 0
    assert runs["device"]["all_converged"] and runs["host"]["all_converged"]
    assert "row blocks" not in runs["device"]["method"] and "row blocks of <= 76 on host memory" in runs["host"]["method"]
    assert "host-streamed / device time" in stdout


@pytest.mark.subprocess
def test_probe_scale_quick_writes_summary(tmp_path):
    stdout, summary = run_quick("probe_scale.py", tmp_path / "ps.json", "--block-rows", "100", "--storage", "host")
    assert "5 row blocks of <= 100 on host memory" in summary["method"] and summary["all_converged"]
    assert "Linear probe at scale" in stdout
    assert summary["n_train"] == 600 and summary["classes"] == 10 and summary["iterations"] > 0
    assert 0 < summary["share_of_imagenet"] < 1e-4 and 0 <= summary["top1"] <= 100
