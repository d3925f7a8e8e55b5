"""The input pipeline alone: JPEG decode (PIL vs torchvision.io's libjpeg-turbo), images/s per worker, workers needed.

On generated 500x375 JPEGs (three qualities, 4:4:4 / 4:2:2 / 4:2:0 chroma subsampling, one
progressive, one greyscale):

* decode only, one thread: PIL (``Image.open().convert("RGB")``) vs ``torchvision.io.decode_jpeg``
  (RGB mode), with a pixel-for-pixel equality check on every image;
* one worker's whole job, one thread: decode + CLIP's preprocessing at 224 px (PIL bicubic resize,
  centre crop, normalise): PIL decode, and torchvision.io decode handed to PIL (the resize must stay
  PIL's to keep CLIP's pixels, so the tensor goes back to a PIL image);
* a DataLoader over a ``folder:`` split with the model preprocess, 0..N workers, no encoder;
* from the per-worker rate: how many workers an encoder running at R images/s needs, and what
  ``workers: auto`` resolves to here for CPU and CUDA runs.

    python benchmarks/pipeline.py --out pipeline.json
    python benchmarks/pipeline.py --quick --out /tmp/pipeline.json
"""

from __future__ import annotations

import argparse
import io
import math
import os
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


def make_jpegs(folder: Path, n: int, size: tuple[int, int] = (500, 375), seed: int = 0) -> list[Path]:
    """Photo-like JPEGs (smooth gradients + noise) over two class folders; a few format variants."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = size[0] - (i % 7), size[1] + (i % 5)
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.stack([xx * 255 / w, yy * 255 / h, ((xx + yy + 13 * i) % 97) * 2.6], -1) + rng.normal(0, 18, (h, w, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        path = folder / ("a" if i % 2 else "b") / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i % 11 == 5:
            img.convert("L").save(path, format="JPEG", quality=85)
        else:
            img.save(path, format="JPEG", quality=(75, 90, 95)[i % 3], subsampling=(0, 1, 2)[i % 3],
                     progressive=i % 11 == 7)
        paths.append(path)
    return paths


def pil_decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.convert("RGB")


def tv_decode(data: bytes) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg

    return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)


def tv_decode_to_pil(data: bytes) -> Image.Image:
    return Image.fromarray(tv_decode(data).permute(1, 2, 0).contiguous().numpy())


def rate(fn, items: list, rounds: int) -> float:
    """Items per second, best of ``rounds`` passes (the least disturbed by other load)."""
    fn(items[0])
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def loader_rate(split, preprocess, workers: int, batch_size: int, rounds: int = 1) -> float:
    """Images/s of a fresh DataLoader (worker start-up included), best of ``rounds``."""
    from torch.utils.data import DataLoader

    from clipbench.foundations.workers import loader_options

    opts = loader_options(workers, "cpu", len(split))
    best = math.inf
    for _ in range(rounds):
        loader = DataLoader(split.torch_dataset(preprocess), batch_size=batch_size, **opts)
        start = time.perf_counter()
        count = sum(len(labels) for _, labels in loader)
        best = min(best, time.perf_counter() - start)
    return count / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96, help="generated JPEGs")
    parser.add_argument("--rounds", type=int, default=3, help="passes per single-process timing (best kept)")
    parser.add_argument("--max-workers", type=int, default=None, help="DataLoader workers up to (default: CPUs)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--encoder-rates", default="100,1000,3000,10000",
                        help="encoder images/s to size the worker count for (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="few small runs (for tests)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    try:
        encoder_rates = [float(v) for v in args.encoder_rates.split(",")]
    except ValueError:
        encoder_rates = []
    if args.images < 2 or not encoder_rates or any(r <= 0 for r in encoder_rates):
        print("error: --images must be >= 2 and --encoder-rates positive numbers", file=sys.stderr)
        return 2
    if args.quick:
        args.images, args.rounds, args.max_workers = 12, 1, 1
    from clipbench.datasets import get_dataset
    from clipbench.foundations.workers import CPU_INLINE_SAMPLES, cpu_share, resolve_workers
    from clipbench.models.preprocess import clip_preprocess

    max_workers = args.max_workers if args.max_workers is not None else (os.cpu_count() or 1)
    threads = torch.get_num_threads()
    preprocess = clip_preprocess(224)
    with tempfile.TemporaryDirectory(prefix="clipbench-bench-pipeline-") as tmp:
        paths = make_jpegs(Path(tmp) / "imgs", args.images)
        blobs = [p.read_bytes() for p in paths]
        identical = [bool(np.array_equal(np.asarray(pil_decode(b)), tv_decode(b).permute(1, 2, 0).numpy()))
                     for b in blobs]
        torch.set_num_threads(1)  # one DataLoader worker runs one thread
        single = {
            "decode: PIL": rate(pil_decode, blobs, args.rounds),
            "decode: torchvision.io": rate(tv_decode, blobs, args.rounds),
            "decode + preprocess: PIL": rate(lambda b: preprocess(pil_decode(b)), blobs, args.rounds),
            "decode + preprocess: torchvision.io -> PIL": rate(lambda b: preprocess(tv_decode_to_pil(b)), blobs,
                                                                args.rounds),
        }
        torch.set_num_threads(threads)
        split = get_dataset(f"folder:{Path(tmp) / 'imgs'}").load_split("test")
        loaders = {w: loader_rate(split, preprocess, w, args.batch_size, args.rounds) for w in range(max_workers + 1)}
    per_worker = single["decode + preprocess: PIL"]
    rows = [[name, value, "yes" if all(identical) else "NO"] if name.startswith("decode: torch") else [name, value, "-"]
            for name, value in single.items()]
    print_table(f"One worker (1 thread), {args.images} generated ~500x375 JPEGs, best of {args.rounds}",
                ["step", "img/s", "pixels identical to PIL"], rows)
    print_table(f"DataLoader over folder:, batch {args.batch_size}, CLIP preprocess 224 px, no encoder, "
                f"best of {args.rounds}",
                ["workers", "img/s"], [[w, r] for w, r in loaders.items()])
    needs = [[r, math.ceil(r / per_worker), min(math.ceil(r / per_worker), cpu_share())] for r in encoder_rates]
    print_table(f"Workers to feed an encoder at {per_worker:.0f} img/s per worker ({cpu_share()} CPUs here)",
                ["encoder img/s", "workers needed", "possible here"], needs)
    auto = {"cpu_small_split": resolve_workers("auto", "cpu", CPU_INLINE_SAMPLES),
            "cpu_large_split": resolve_workers("auto", "cpu", CPU_INLINE_SAMPLES + 1),
            "cuda": resolve_workers("auto", "cuda", 50_000)}
    print(f"\nworkers: auto here -> CPU small split {auto['cpu_small_split']}, CPU large split "
          f"{auto['cpu_large_split']}, CUDA {auto['cuda']}")
    faster = single["decode + preprocess: torchvision.io -> PIL"] > single["decode + preprocess: PIL"]
    summary = {"benchmark": "pipeline", "machine": machine_info(("torchvision", "PIL")), "args": vars(args),
               "images": args.images, "pixels_identical": all(identical), "identical_per_image": identical,
               "single_worker_img_s": single, "per_worker_img_s": per_worker,
               "loader_img_s_by_workers": {str(w): r for w, r in loaders.items()},
               "workers_needed": [{"encoder_img_s": r, "workers": n, "possible_here": p} for r, n, p in needs],
               "auto_workers": auto, "torchvision_io_faster_end_to_end": faster,
               "median_loader_img_s": statistics.median(loaders.values())}
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
