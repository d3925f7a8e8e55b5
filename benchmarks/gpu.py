"""One short GPU job: encoder img/s and TFLOP/s vs open_clip, the input pipeline, the probe at ImageNet shape, torchrun.

Meant to run once when a device is lent (``bash benchmarks/gpu.sh``, about 10 minutes on an
H100-class GPU); every part that needs CUDA prints ``SKIPPED: no CUDA device`` and records
``{"skipped": ...}`` when there is none, so the script is tested on a CPU in that mode.

* encoders: ViT-B/16 and ViT-L/14 with the same random weights in clipbench's native CLIP and in
  open_clip (``benchmarks/extract.py``'s ``identical_pair``), fp32 inputs under fp16 and bf16
  autocast; max relative feature difference between the two; images/s of each; achieved TFLOP/s
  (analytic image-tower FLOPs: 2 x (12 w^2 T + 2 T^2 w) per layer + patch embedding; 35.1 GFLOPs
  for ViT-B/16, 162 for ViT-L/14, matching open_clip's model profile) and the fraction of the
  device's dense fp16/bf16 peak (a table of known devices, or ``--peak-tflops``); target >= 40%
  for ViT-B/16;
* pipeline: generated JPEGs through a DataLoader with ``workers: auto`` (all CPUs, at most 16) and
  the CLIP preprocess; is the encoder starved (pipeline img/s < the encoder's)?
* decode: ``benchmarks/decode.py`` on CUDA: ``--decode gpu`` (nvjpeg, the resize on the device)
  against PIL in pixels, features, digits-JPEG top-1 and images/s;
* probe: ``clipbench.linear_probe`` on CUDA over synthetic features of ImageNet's shape (``--probe-rows``
  x 768, 1000 classes; default the full 1,281,167), the whole C sweep and refit, timed; then the first
  ``--probe-chunked-rows`` (128,000) twice, rows on the device and streamed from host memory in 8
  blocks (the path for problems the device cannot hold): same chosen C and top-1, and its cost;
* torchrun: ``clipbench run`` of clipbench-tiny on digits as a plain process and under
  ``torchrun --nproc_per_node 1`` (NCCL); the two records' metrics must be equal.

    bash benchmarks/gpu.sh                       # writes gpu.json and prints the table
    python benchmarks/gpu.py --quick --out /tmp/gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SKIP = "no CUDA device"
MODELS = {"ViT-B/16": ("ViT-B-16-quickgelu", 768, 12, 16, 224), "ViT-L/14": ("ViT-L-14-quickgelu", 1024, 24, 14, 224)}
#: Dense (no sparsity) fp16/bf16 tensor-core peak TFLOP/s by device-name fragment, most specific first.
PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("A100", 312.0),
               ("L40S", 362.0), ("L40", 181.0), ("A10G", 125.0), ("A10", 125.0), ("L4", 121.0), ("V100", 125.0),
               ("T4", 65.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0))


def vit_gflops(width: int, layers: int, patch: int, resolution: int) -> float:
    """Image-tower GFLOPs per image (multiply-add = 2 FLOPs): blocks + attention + patch embedding."""
    tokens = (resolution // patch) ** 2 + 1
    per_layer = 12 * width**2 * tokens + 2 * tokens**2 * width
    patch_embed = (tokens - 1) * width * 3 * patch**2
    return 2 * (layers * per_layer + patch_embed) / 1e9


def device_peak(name: str | None, override: float | None) -> float | None:
    if override:
        return override
    for fragment, peak in PEAK_TFLOPS:
        if name and fragment in name:
            return peak
    return None


def skipped(part: str) -> dict:
    print(f"SKIPPED: {SKIP} ({part})", flush=True)
    return {"skipped": SKIP}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def time_encoder(fn, batch: torch.Tensor, iters: int) -> float:
    fn(batch)
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn(batch)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return len(batch) / statistics.median(times)


def encoders(args, peak: float | None) -> dict:
    if not torch.cuda.is_available():
        return skipped("encoders")
    from extract import identical_pair

    out = {}
    for name, (arch, width, layers, patch, res) in MODELS.items():
        with tempfile.TemporaryDirectory() as tmp:
            native, reference = identical_pair(arch, Path(tmp))
        native.to("cuda")
        reference = reference.to("cuda").eval()
        batch = torch.randn(args.batch if name == "ViT-B/16" else max(1, args.batch // 2), 3, res, res, device="cuda")
        gflops = vit_gflops(width, layers, patch, res)
        for precision, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
                ours, theirs = native.encode_image, reference.encode_image
                diff = rel(ours(batch[:16]), theirs(batch[:16]))
                ours_rate = time_encoder(ours, batch, args.iters)
                theirs_rate = time_encoder(theirs, batch, args.iters)
            tflops = ours_rate * gflops / 1e3
            out[f"{name} {precision}"] = {"img_s": ours_rate, "open_clip_img_s": theirs_rate,
                                          "ratio": ours_rate / theirs_rate, "max_rel_diff": diff,
                                          "gflops_per_image": gflops, "tflops": tflops,
                                          "fraction_of_peak": tflops / peak if peak else None}
        native = reference = ours = theirs = None  # free the device memory before the next model
        torch.cuda.empty_cache()
    return out


def pipeline(args, encoder_rate: float | None) -> dict:
    from pipeline import loader_rate, make_jpegs

    from clipbench.datasets import get_dataset
    from clipbench.foundations.workers import resolve_workers
    from clipbench.models.preprocess import clip_preprocess

    workers = resolve_workers("auto", "cuda", 10**6)
    with tempfile.TemporaryDirectory(prefix="clipbench-gpu-pipeline-") as tmp:
        make_jpegs(Path(tmp) / "imgs", args.images)
        split = get_dataset(f"folder:{Path(tmp) / 'imgs'}").load_split("test")
        img_s = loader_rate(split, clip_preprocess(224), workers, 64)
    starved = None if encoder_rate is None else img_s < encoder_rate
    return {"cpus": os.cpu_count(), "auto_workers": workers, "img_s": img_s, "encoder_img_s": encoder_rate,
            "encoder_starved": starved}


def decode(args) -> dict:
    """``--decode gpu`` (nvjpeg + the resize on the device) against PIL: ``benchmarks/decode.py`` on CUDA."""
    if not torch.cuda.is_available():
        return skipped("--decode gpu (nvjpeg) against PIL")
    import decode as decode_benchmark

    with tempfile.TemporaryDirectory(prefix="clipbench-gpu-decode-") as tmp:
        out = Path(tmp) / "decode.json"
        extra = ["--quick"] if args.quick else []
        if decode_benchmark.main(["--device", "cuda", *extra, "--out", str(out)]) != 0:
            return {"error": "benchmarks/decode.py failed"}
        summary = json.loads(out.read_text())
    return {k: summary[k] for k in ("decoder", "pixels", "accuracy", "rates")}


def probe(args) -> dict:
    if not torch.cuda.is_available():
        return skipped("probe at ImageNet shape")
    from probe_scale import compare_storage, make_features

    import clipbench

    n_test = 50_000 if args.probe_rows >= 500_000 else max(args.probe_rows // 5, 1000)
    X, y = make_features(args.probe_rows + n_test, 768, 1000, seed=0)
    start = time.perf_counter()
    result = clipbench.linear_probe(train=(X[: args.probe_rows], y[: args.probe_rows]),
                                    test=(X[args.probe_rows:], y[args.probe_rows:]), device="cuda")
    seconds = time.perf_counter() - start
    out = {"rows": args.probe_rows, "dim": 768, "classes": 1000, "seconds": seconds, "C": result.C,
           "top1": result.top1, "sweep_points": len(result.sweep), "time_sweep_s": result.time_sweep_s,
           "time_refit_s": result.time_refit_s, "method": result.convergence["method"]}
    out["chunked"] = compare_storage(X[: args.probe_chunked_rows], y[: args.probe_chunked_rows],
                                     X[args.probe_rows:], y[args.probe_rows:], device="cuda")
    return out


def torchrun(args) -> dict:
    if not torch.cuda.is_available():
        return skipped("1-GPU torchrun with NCCL")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)}
    records = {}
    with tempfile.TemporaryDirectory(prefix="clipbench-gpu-torchrun-") as tmp:
        for mode in ("plain", "torchrun"):
            launcher = [sys.executable] if mode == "plain" else [sys.executable, "-m", "torch.distributed.run",
                                                                 "--standalone", "--nproc_per_node", "1"]
            cmd = [*launcher, "-m", "clipbench", "run", "--suite", "smoke", "--device", "cuda", "--no-progress",
                   "--cache-dir", f"{tmp}/{mode}/cache", "--results-dir", f"{tmp}/{mode}/res"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            if proc.returncode != 0:
                return {"error": f"{mode} exited {proc.returncode}: {proc.stderr[-1500:]}"}
            lines = Path(f"{tmp}/{mode}/res/results.jsonl").read_text().splitlines()
            records[mode] = {"seconds": time.perf_counter() - start,
                             "metrics": [json.loads(line)["metrics"] for line in lines]}
    return {**records, "equal": records["plain"]["metrics"] == records["torchrun"]["metrics"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="ViT-B/16 batch (ViT-L/14: half)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--images", type=int, default=512, help="generated JPEGs for the pipeline")
    parser.add_argument("--probe-rows", type=int, default=1_281_167, help="probe training rows (ImageNet: 1,281,167)")
    parser.add_argument("--probe-chunked-rows", type=int, default=128_000,
                        help="rows of the probe run twice, on the device and streamed from host memory")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense fp16/bf16 peak")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: encoders,pipeline,decode,probe,torchrun")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    parser.add_argument("--out", default="gpu.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.iters, args.images, args.probe_rows, args.probe_chunked_rows = 32, 2, 8, 20_000, 8_000
    args.probe_chunked_rows = min(args.probe_chunked_rows, args.probe_rows)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    peak = device_peak(name, args.peak_tflops)
    summary: dict = {"benchmark": "gpu", "machine": machine_info(("open_clip",)), "device": name,
                     "peak_tflops": peak, "args": vars(args)}
    summary["encoders"] = encoders(args, peak) if "encoders" not in skip else {"skipped": "--skip"}
    enc = summary["encoders"].get("ViT-B/16 bf16") if isinstance(summary["encoders"], dict) else None
    summary["pipeline"] = pipeline(args, enc["img_s"] if enc else None) if "pipeline" not in skip else {"skipped": "--skip"}
    summary["decode"] = decode(args) if "decode" not in skip else {"skipped": "--skip"}
    summary["probe"] = probe(args) if "probe" not in skip else {"skipped": "--skip"}
    summary["torchrun"] = torchrun(args) if "torchrun" not in skip else {"skipped": "--skip"}

    rows = []
    for key, part in summary["encoders"].items():
        if isinstance(part, dict):
            rows.append([f"encoder {key}", part["img_s"], part["open_clip_img_s"], part["tflops"],
                         part["fraction_of_peak"], part["max_rel_diff"]])
    print_table(f"Image encoders on {name or 'no GPU'} (peak {peak or '?'} TFLOP/s dense)",
                ["part", "img/s", "open_clip img/s", "TFLOP/s", "of peak", "max rel diff"], rows or [["encoders",
                                                                                                        SKIP, "-", "-",
                                                                                                        "-", "-"]])
    p = summary["pipeline"]
    if "img_s" in p:
        encoder = f"{p['encoder_img_s']:.0f} img/s" if p["encoder_img_s"] else "-"
        print(f"\npipeline: {p['img_s']:.0f} img/s with {p['auto_workers']} workers ({p['cpus']} CPUs); encoder "
              f"{encoder}; starved: {p['encoder_starved']}")
    for part in ("decode", "probe", "torchrun"):
        print(f"{part}: {json.dumps(summary[part])[:300]}")
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
