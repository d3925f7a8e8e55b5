"""Image-encoder throughput: clipbench's native CLIP vs open_clip with identical weights, plus the input pipeline.

For each model an open_clip model is created with random weights (BatchNorm statistics made
non-trivial), its state dict is saved and loaded back through ``clipbench.load_model(path)``, so
both sides hold the very same tensors. The two are first checked to give the same features
(max relative difference <= 1e-5), then timed on the same batch of preprocessed JPEGs, the two
implementations interleaved (alternating which goes first) so that noise from a shared machine hits
both alike. Throughput ratios (clipbench / open_clip, > 1 means clipbench is faster) are what to
read; absolute images/s only mean something on a dedicated machine.

On CPU: fp32. On CUDA (when a GPU is visible): fp32 inputs under fp16 and bf16 autocast for both
implementations, and ViT-B/16 bf16 throughput as achieved FLOP/s (about 35.13 GFLOPs per 224-px
image, open_clip's model profile) and, given ``--peak-tflops``, as a fraction of the GPU's peak.

The input pipeline (JPEG decode + the model's preprocess: bicubic resize, crop, normalise) is timed
alone in one process with one torch thread, the way one DataLoader worker runs it, on generated
500x375 JPEGs; the table says how many such workers one model's throughput needs.

    python benchmarks/extract.py --out extract.json
    python benchmarks/extract.py --quick --out /tmp/extract-quick.json   # tiny models, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402

#: clipbench name -> open_clip architecture with OpenAI's QuickGELU (what OpenAI's checkpoints use).
FULL_MODELS = {"ViT-B/32": "ViT-B-32-quickgelu", "ViT-B/16": "ViT-B-16-quickgelu", "RN50": "RN50-quickgelu"}

#: Image-tower GFLOPs per image at 224 px (open_clip docs/model_profile.csv, see published-results.md).
GFLOPS_PER_IMAGE = {"ViT-B/32": 8.82, "ViT-B/16": 35.13, "RN50": 12.22}

_TINY_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}
#: --quick: real architectures, tiny widths, registered with open_clip at run time.
QUICK_ARCHS = {
    "tiny-ViT": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": _TINY_TEXT,
    },
    "tiny-RN": {
        "embed_dim": 32,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
        "text_cfg": _TINY_TEXT,
    },
}
QUICK_MODELS = {name: f"cbbench-{name}" for name in QUICK_ARCHS}


# --------------------------------------------------------------------------- inputs


def write_jpegs(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """Photo-like JPEGs (smooth colour fields plus grain, quality 90) so decode cost is realistic."""
    rng = np.random.default_rng(seed)
    width, height = size
    paths = []
    for i in range(count):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
        pixels = np.asarray(coarse, dtype=np.int16) + rng.normal(0, 12, (height, width, 3)).astype(np.int16)
        path = folder / f"img{i:04d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def decode(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


# --------------------------------------------------------------------------- models


def register_quick_archs(folder: Path) -> None:
    import open_clip

    for name, cfg in QUICK_ARCHS.items():
        arch = QUICK_MODELS[name]
        if open_clip.get_model_config(arch) is None:
            path = folder / f"{arch}.json"
            path.write_text(json.dumps(cfg))
            open_clip.add_model_config(path)


def identical_pair(arch: str, folder: Path, seed: int = 0):
    """(clipbench model, open_clip model) holding the same random weights, both fp32 eval on CPU."""
    import open_clip

    from clipbench import load_model

    torch.manual_seed(seed)
    reference = open_clip.create_model(arch, pretrained=None).eval()
    with torch.no_grad():  # BatchNorm statistics as a trained network has them, not 0 / 1
        for name, buf in reference.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    path = folder / f"{arch}.pt"
    torch.save(reference.state_dict(), path)
    return load_model(path), reference


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def compare_throughput(native, reference, batch: torch.Tensor, precision: str, warmup: int, iters: int) -> dict:
    """Interleaved timing of the two image encoders on the same batch; features compared first."""
    device = batch.device

    def run_native() -> torch.Tensor:
        with torch.inference_mode(), _autocast(device, precision):
            return native.encode_image(batch)

    def run_reference() -> torch.Tensor:
        with torch.inference_mode(), _autocast(device, precision):
            return reference.encode_image(batch)

    ours, theirs = run_native().float(), run_reference().float()
    max_abs = float((ours - theirs).abs().max())
    max_rel = max_abs / max(float(theirs.abs().max()), 1e-12)

    def timed(fn) -> float:
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - start

    for _ in range(warmup):
        timed(run_native)
        timed(run_reference)
    t_native, t_ref = [], []
    for i in range(iters):  # alternate who goes first, so drift and neighbours' load hit both alike
        if i % 2 == 0:
            t_native.append(timed(run_native))
            t_ref.append(timed(run_reference))
        else:
            t_ref.append(timed(run_reference))
            t_native.append(timed(run_native))
    n = batch.shape[0]
    native_ips = n / statistics.median(t_native)
    ref_ips = n / statistics.median(t_ref)
    return {
        "precision": precision,
        "device": str(device),
        "batch_size": n,
        "iters": iters,
        "clipbench_img_s": native_ips,
        "open_clip_img_s": ref_ips,
        "ratio": native_ips / ref_ips,
        "paired_ratio_median": statistics.median(r / c for r, c in zip(t_ref, t_native, strict=True)),
        "clipbench_times_s": t_native,
        "open_clip_times_s": t_ref,
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
    }


# --------------------------------------------------------------------------- input pipeline


def time_pipeline(paths: list[Path], preprocess, rounds: int) -> dict:
    """Decode and preprocess cost per image in one process with one torch thread (= one worker)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for path in paths[: min(4, len(paths))]:  # warm the file cache and the code paths
            preprocess(decode(path))
        t_decode = t_transform = 0.0
        count = 0
        for _ in range(rounds):
            for path in paths:
                start = time.perf_counter()
                image = decode(path)
                mid = time.perf_counter()
                tensor = preprocess(image)
                end = time.perf_counter()
                t_decode += mid - start
                t_transform += end - mid
                count += 1
        assert tensor.ndim == 3
    finally:
        torch.set_num_threads(threads)
    total = t_decode + t_transform
    return {
        "images": count,
        "decode_img_s": count / t_decode,
        "preprocess_img_s": count / t_transform,
        "pipeline_img_s_per_worker": count / total,
        "decode_share": t_decode / total,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(FULL_MODELS), help="comma-separated subset of " + ", ".join(FULL_MODELS))
    parser.add_argument("--batch-size", type=int, default=8, help="CPU batch size (default 8)")
    parser.add_argument("--gpu-batch-size", type=int, default=256, help="CUDA batch size (default 256)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations per implementation")
    parser.add_argument("--iters", type=int, default=6, help="timed iterations per implementation")
    parser.add_argument("--images", type=int, default=64, help="generated JPEGs for the pipeline timing")
    parser.add_argument("--image-size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--pipeline-rounds", type=int, default=3, help="passes over the JPEGs")
    parser.add_argument("--device", default="auto", help="auto (CUDA if visible, and CPU), cpu or cuda")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense bf16 peak in TFLOP/s, to report ViT-B/16 bf16 as a fraction of it")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads for the model timing")
    parser.add_argument("--quick", action="store_true", help="tiny models and sizes (for tests)")
    parser.add_argument("--out", default=None, help="write the JSON summary here")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_size, args.gpu_batch_size = 4, 8
        args.warmup, args.iters, args.images, args.pipeline_rounds = 1, 2, 6, 1
        args.image_size = "160x120"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        width, height = (int(v) for v in args.image_size.lower().split("x"))
    except ValueError:
        print(f"error: --image-size {args.image_size!r} is not WIDTHxHEIGHT", file=sys.stderr)
        return 2
    if args.quick:
        models = dict(QUICK_MODELS)
    else:
        models = {}
        for name in (m.strip() for m in args.models.split(",") if m.strip()):
            if name not in FULL_MODELS:
                print(f"error: unknown model {name!r}; expected one of {', '.join(FULL_MODELS)}", file=sys.stderr)
                return 2
            models[name] = FULL_MODELS[name]
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible", file=sys.stderr)
        return 2
    cpu = args.device in ("auto", "cpu")

    summary: dict = {"benchmark": "extract", "machine": machine_info(("open_clip",)), "args": vars(args),
                     "models": [], "pipeline": [], "gpu": None}
    with tempfile.TemporaryDirectory(prefix="clipbench-bench-extract-") as tmp:
        tmp_path = Path(tmp)
        if args.quick:
            register_quick_archs(tmp_path)
        paths = write_jpegs(tmp_path, args.images, (width, height))
        pipeline_by_res: dict[int, dict] = {}
        for name, arch in models.items():
            native, reference = identical_pair(arch, tmp_path)
            res = native.image_resolution
            if res not in pipeline_by_res:
                pipeline_by_res[res] = {"resolution": res, "image_size": f"{width}x{height}",
                                        **time_pipeline(paths, native.preprocess, args.pipeline_rounds)}
            need = max(args.batch_size, args.gpu_batch_size if cuda else 0)
            pixels = torch.stack([native.preprocess(decode(paths[i % len(paths)])) for i in range(need)])
            runs = []
            if cpu:
                runs.append(compare_throughput(native, reference, pixels[: args.batch_size], "fp32",
                                               args.warmup, args.iters))
            if cuda:
                native.to("cuda")
                reference.to("cuda")
                gpu_batch = pixels[: args.gpu_batch_size].to("cuda")
                for precision in ("fp16", "bf16"):
                    runs.append(compare_throughput(native, reference, gpu_batch, precision, args.warmup, args.iters))
            for run in runs:
                run.update(model=name, open_clip_arch=arch, resolution=res,
                           identical_features=bool(run["max_rel_diff"] <= 1e-5) if run["precision"] == "fp32" else None)
                summary["models"].append(run)
            del native, reference
        summary["pipeline"] = list(pipeline_by_res.values())

    if cuda:
        bf16 = [r for r in summary["models"] if r["model"] == "ViT-B/16" and r["precision"] == "bf16"]
        if bf16:
            tflops = bf16[0]["clipbench_img_s"] * GFLOPS_PER_IMAGE["ViT-B/16"] / 1e3
            summary["gpu"] = {"model": "ViT-B/16", "precision": "bf16", "gflops_per_image": GFLOPS_PER_IMAGE["ViT-B/16"],
                              "achieved_tflops": tflops, "peak_tflops": args.peak_tflops,
                              "fraction_of_peak": tflops / args.peak_tflops if args.peak_tflops else None}
    else:
        summary["gpu_note"] = "no CUDA device visible: fp16/bf16 GPU throughput and FLOP/s utilisation not measured"

    rows = [[r["model"], r["device"], r["precision"], r["batch_size"], r["clipbench_img_s"], r["open_clip_img_s"],
             r["ratio"], r["paired_ratio_median"], r["max_rel_diff"]] for r in summary["models"]]
    print_table("Image encoder throughput, identical weights (ratio = clipbench / open_clip; > 1 is faster)",
                ["model", "device", "precision", "batch", "clipbench img/s", "open_clip img/s", "ratio",
                 "paired ratio (median)", "max rel diff"], rows)
    pipe_rows = [[p["resolution"], p["image_size"], p["decode_img_s"], p["preprocess_img_s"],
                  p["pipeline_img_s_per_worker"]] for p in summary["pipeline"]]
    print_table("Input pipeline, one worker (1 torch thread): JPEG decode + resize/crop/normalise",
                ["resolution", "JPEG size", "decode img/s", "preprocess img/s", "pipeline img/s per worker"], pipe_rows)
    per_worker = {p["resolution"]: p["pipeline_img_s_per_worker"] for p in summary["pipeline"]}
    bound_rows = []
    for r in summary["models"]:
        res = r["resolution"]
        workers = r["clipbench_img_s"] / per_worker[res]
        r["pipeline_workers_to_keep_up"] = workers
        bound_rows.append([r["model"], r["device"], r["precision"], r["clipbench_img_s"], per_worker[res],
                           math.ceil(workers), "model" if workers <= 1 else "input pipeline (per worker)"])
    print_table("Which bounds a run: workers needed so the pipeline keeps up with the encoder",
                ["model", "device", "precision", "encoder img/s", "pipeline img/s/worker", "workers needed",
                 "bound with 1 worker"], bound_rows)
    if cuda and summary["gpu"]:
        g = summary["gpu"]
        frac = f"{100 * g['fraction_of_peak']:.1f}% of {g['peak_tflops']} TFLOP/s" if g["fraction_of_peak"] else \
            "pass --peak-tflops for the fraction of peak"
        print(f"\nViT-B/16 bf16 on {summary['machine']['cuda']}: {g['achieved_tflops']:.1f} TFLOP/s achieved ({frac})")
    elif not cuda:
        print(f"\n{summary['gpu_note']}")
    if cpu and not all(r["identical_features"] for r in summary["models"] if r["precision"] == "fp32"):
        print("\nWARNING: features differ by more than 1e-5 relative between clipbench and open_clip")
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
