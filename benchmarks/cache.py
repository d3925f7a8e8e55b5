"""Cold run vs warm rerun of the same suite through ``clipbench.run``: wall time and encoder forward passes.

A generated ``folder:PATH`` dataset (class folders of 500x375 JPEGs under ``train/`` and ``test/``)
is evaluated with zero-shot and the linear probe by a random-weight model of ViT-B/32's size,
loaded from a checkpoint file the way a user's run loads one. The cold run starts from an empty
cache; the warm rerun is the identical call with the same cache: it must make zero image-encoder
forward passes (features come from the feature store) and zero text-encoder passes (the zero-shot
classifier is cached too), and should take a small fraction of the cold time.

Forward passes are counted twice, independently: by the engine's own ``FORWARD_STATS`` and by
wrapping the model class's ``encode_image`` / ``encode_text`` for the duration of the benchmark.
An untimed priming run on a few images (separate cache) comes first, so the cold run does not
also pay one-off import and first-call costs.

    python benchmarks/cache.py --out cache.json
    python benchmarks/cache.py --quick --out /tmp/cache-quick.json     # tiny model, ~60 images
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402
from extract import write_jpegs  # noqa: E402

#: ViT-B/32 as OpenAI trained it (the sizes only; weights are random).
VIT_B_32 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12)
TINY_VIT = dict(embed_dim=32, image_resolution=64, vision_layers=2, vision_width=64, vision_patch_size=16,
                context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=1)
CLASSNAMES = ["apple", "bicycle", "castle", "dolphin", "elephant", "forest", "guitar", "harbor", "island", "jellyfish",
              "kettle", "lantern", "meadow", "nest", "orchid", "pyramid"]


@dataclass
class Counter:
    image_batches: int = 0
    image_samples: int = 0
    text_batches: int = 0


@contextlib.contextmanager
def count_encoder_calls(model_class: type, counter: Counter):
    """Count every ``encode_image`` / ``encode_text`` call on instances of ``model_class``."""
    real_image, real_text = model_class.encode_image, model_class.encode_text

    def encode_image(self, images, *args, **kwargs):
        counter.image_batches += 1
        counter.image_samples += int(images.shape[0])
        return real_image(self, images, *args, **kwargs)

    def encode_text(self, tokens, *args, **kwargs):
        counter.text_batches += 1
        return real_text(self, tokens, *args, **kwargs)

    model_class.encode_image, model_class.encode_text = encode_image, encode_text
    try:
        yield counter
    finally:
        model_class.encode_image, model_class.encode_text = real_image, real_text


def make_dataset(root: Path, classes: int, train_per_class: int, test_per_class: int, size: tuple[int, int]) -> int:
    """``root/{train,test}/<class>/*.jpg``; returns the number of images written."""
    total = 0
    for index, name in enumerate(CLASSNAMES[:classes]):
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            folder = root / split / name
            folder.mkdir(parents=True)
            write_jpegs(folder, count, size, seed=1000 * index + (split == "test"))
            total += count
    return total


def make_checkpoint(path: Path, sizes: dict, seed: int = 0) -> Path:
    """Random weights of the given CLIP sizes, saved as an OpenAI-format state dict."""
    from clipbench.models.architecture import CLIP, ClipConfig

    torch.manual_seed(seed)
    torch.save(CLIP(ClipConfig(**sizes)).state_dict(), path)
    return path


def write_suite(path: Path, dataset: Path, batch_size: int, tasks: list[str]) -> Path:
    path.write_text(
        "name: bench-cache\nversion: 1\ndescription: cold vs warm rerun benchmark\n"
        f"datasets: ['folder:{dataset.as_posix()}']\ntasks: [{', '.join(tasks)}]\n"
        f"options: {{batch_size: {batch_size}, workers: 0, offline: true}}\n",
        encoding="utf-8",
    )
    return path


def timed_run(checkpoint: Path, suite: Path, data_root: Path, cache_dir: Path, results_dir: Path,
              counter: Counter) -> dict:
    import clipbench
    from clipbench.features import FORWARD_STATS

    FORWARD_STATS.reset()
    before = Counter(**vars(counter))
    start = time.perf_counter()
    records = clipbench.run(str(checkpoint), suite=str(suite), data_root=data_root, cache_dir=cache_dir,
                            results_dir=results_dir, device="cpu", progress=False)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "records": len(records),
        "n_samples": {r["task"] + ":" + r["split"]: r["n_samples"] for r in records},
        "image_forward_batches": FORWARD_STATS.batches,
        "image_forward_samples": FORWARD_STATS.samples,
        "encode_image_calls": counter.image_batches - before.image_batches,
        "encode_image_samples": counter.image_samples - before.image_samples,
        "encode_text_calls": counter.text_batches - before.text_batches,
        "metrics": {r["task"]: r["metrics"] for r in records},
        "time_extract_s": sum(r.get("time_extract_s") or 0.0 for r in records),
        "time_task_s": sum(r.get("time_task_s") or 0.0 for r in records),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=10, help=f"class folders (at most {len(CLASSNAMES)})")
    parser.add_argument("--train-per-class", type=int, default=40)
    parser.add_argument("--test-per-class", type=int, default=20)
    parser.add_argument("--image-size", default="500x375", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tasks", default="zeroshot,linear_probe", help="comma-separated tasks of the suite")
    parser.add_argument("--repeats", type=int, default=1, help="cold/warm pairs (each cold run gets a fresh cache)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="tiny model, ~60 small images (for tests)")
    parser.add_argument("--out", default=None, help="write the JSON summary here")
    args = parser.parse_args(argv)
    if args.quick:
        args.classes, args.train_per_class, args.test_per_class, args.image_size = 5, 8, 4, "160x120"
        args.batch_size = 16
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 2 <= args.classes <= len(CLASSNAMES) or args.train_per_class < 5 or args.test_per_class < 1:
        print(f"error: need 2..{len(CLASSNAMES)} classes, >= 5 train and >= 1 test images per class", file=sys.stderr)
        return 2
    try:
        width, height = (int(v) for v in args.image_size.lower().split("x"))
    except ValueError:
        print(f"error: --image-size {args.image_size!r} is not WIDTHxHEIGHT", file=sys.stderr)
        return 2
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or any(t not in ("zeroshot", "linear_probe") for t in tasks):
        print(f"error: --tasks {args.tasks!r}: expected a comma-separated subset of zeroshot, linear_probe",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("clipbench").setLevel(logging.WARNING)
    from clipbench.models.native import NativeClipModel

    model_name = "tiny-ViT" if args.quick else "ViT-B/32"
    summary: dict = {"benchmark": "cache", "machine": machine_info(), "args": vars(args), "model": model_name,
                     "pairs": []}
    with tempfile.TemporaryDirectory(prefix="clipbench-bench-cache-") as tmp, \
            count_encoder_calls(NativeClipModel, Counter()) as counter:
        tmp_path = Path(tmp)
        n_images = make_dataset(tmp_path / "data" / "bench", args.classes, args.train_per_class,
                                args.test_per_class, (width, height))
        checkpoint = make_checkpoint(tmp_path / "model.pt", TINY_VIT if args.quick else VIT_B_32)
        suite = write_suite(tmp_path / "suite.yaml", tmp_path / "data" / "bench", args.batch_size, tasks)
        data_root = tmp_path / "data"
        # untimed priming run: imports, first-call kernels, file cache (own small dataset and cache dir)
        make_dataset(data_root / "prime", args.classes, 5, 1, (width, height))
        prime_suite = write_suite(tmp_path / "prime.yaml", data_root / "prime", args.batch_size, tasks)
        timed_run(checkpoint, prime_suite, data_root, tmp_path / "prime-cache", tmp_path / "prime-results", counter)
        for repeat in range(args.repeats):
            cache_dir, results_dir = tmp_path / f"cache{repeat}", tmp_path / f"results{repeat}"
            cold = timed_run(checkpoint, suite, data_root, cache_dir, results_dir, counter)
            warm = timed_run(checkpoint, suite, data_root, cache_dir, results_dir, counter)
            summary["pairs"].append({"cold": cold, "warm": warm, "warm_over_cold": warm["seconds"] / cold["seconds"],
                                     "same_metrics": cold["metrics"] == warm["metrics"]})
    summary["images"] = n_images
    summary["warm_over_cold_median"] = statistics.median(p["warm_over_cold"] for p in summary["pairs"])
    summary["warm_image_forwards"] = max(p["warm"]["encode_image_calls"] + p["warm"]["image_forward_batches"]
                                         for p in summary["pairs"])
    summary["warm_text_forwards"] = max(p["warm"]["encode_text_calls"] for p in summary["pairs"])
    summary["targets_met"] = {"zero_image_forwards_when_warm": summary["warm_image_forwards"] == 0,
                              "warm_under_10pct_of_cold": summary["warm_over_cold_median"] < 0.10}
    rows = []
    for i, pair in enumerate(summary["pairs"]):
        for kind in ("cold", "warm"):
            r = pair[kind]
            rows.append([i, kind, r["seconds"], r["image_forward_batches"], r["encode_image_samples"],
                         r["encode_text_calls"], r["time_extract_s"], r["time_task_s"],
                         pair["warm_over_cold"] if kind == "warm" else ""])
    print_table(f"Cold run vs warm rerun: {model_name} (random weights), folder dataset of {n_images} "
                f"{width}x{height} JPEGs, {' + '.join(tasks)}, CPU",
                ["pair", "run", "wall s", "image fwd batches", "images encoded", "text fwd calls",
                 "extract s (records)", "task s (records)", "warm / cold"], rows)
    print(f"\nmedian warm/cold wall time: {summary['warm_over_cold_median']:.3f}; "
          f"image-encoder forwards when warm: {summary['warm_image_forwards']}; "
          f"text-encoder forwards when warm: {summary['warm_text_forwards']}; "
          f"same metrics cold vs warm: {all(p['same_metrics'] for p in summary['pairs'])}")
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
