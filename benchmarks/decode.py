"""``--decode gpu`` against the reference preprocessing: pixel, feature and accuracy differences, and images/s.

The reference is CLIP's preprocessing as clipbench runs it by default (PIL decode, PIL bicubic
resize, centre crop, normalise). ``--decode gpu`` decodes JPEGs with nvjpeg and reproduces PIL's
resize on the device (``clipbench/features/image_pipeline.py``). On a machine without CUDA the same
pipeline runs on the CPU (libjpeg-turbo through torchvision.io, torch's resize on the CPU, via the
``CLIPBENCH_TEST_DECODE_ON_CPU`` hook): that measures the resize's share of the difference, not
nvjpeg's, and the output says which device decoded.

* pixels: generated JPEGs in landscape, portrait and very tall shapes (qualities 75-95, three
  chroma subsamplings, progressive and greyscale variants), each through both pipelines at
  ``--resolution``: the share of 8-bit values that differ and the largest difference, in levels;
* accuracy: digits' 797 test images (scikit-learn's, upscaled to 128x128 with PIL bicubic) saved as
  JPEGs, zero-shot by clipbench-tiny through ``clipbench.run`` once per decode: top-1 of each, the
  predictions that differ, and the largest relative feature difference and smallest cosine;
* rate: images/s of each pipeline's whole job on ``--resolution`` px (PIL: decode + preprocess
  per image, one thread; gpu: a batch decoded and resized on the device, synchronised).

    python benchmarks/decode.py --out decode.json                 # CPU (or --device cuda)
    python benchmarks/decode.py --quick --out /tmp/decode.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402
from pipeline import make_jpegs  # noqa: E402

#: (width, height) of each generated group: landscape, near-square, portrait, over twice as tall as wide.
SHAPES = ((500, 375), (400, 410), (333, 500), (180, 520))


def pixel_differences(paths: list[Path], resolution: int, device: torch.device) -> dict:
    """Both pipelines' pixels of every image, compared in 8-bit levels (normalisation undone)."""
    from clipbench.datasets.images import open_rgb, read_bytes
    from clipbench.features.image_pipeline import GpuPipeline
    from clipbench.models.preprocess import CLIP_STD, clip_preprocess

    reference, pipeline = clip_preprocess(resolution), GpuPipeline(resolution, device.type)
    std = torch.tensor(CLIP_STD).view(3, 1, 1) * 255
    differing = total = 0
    worst = 0.0
    for path in paths:
        sample = pipeline.transform.from_encoded(read_bytes(path), str(path), lambda p=path: open_rgb(p))
        ours = pipeline.to_device([sample], device)[0].cpu()
        levels = ((ours - reference(open_rgb(path))) * std).abs()
        differing += int((levels > 0.5).sum())
        total += levels.numel()
        worst = max(worst, float(levels.max()))
    return {"images": len(paths), "values": total, "differing_share": differing / total, "max_levels": worst}


def digits_jpegs(folder: Path, size: tuple[int, int] = (128, 128)) -> tuple[list[Path], np.ndarray]:
    """digits' test split upscaled (PIL bicubic) to ``size`` and saved as quality-90 JPEGs."""
    from clipbench.datasets.digits import digits_adapter

    split = digits_adapter().load_split("test")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, pixels in enumerate(split.images):
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(pixels).convert("RGB").resize(size, Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths, np.asarray(split.labels)


def accuracy_difference(work: Path, device: str, limit: int | None) -> dict:
    """clipbench-tiny zero-shot on the digits JPEGs under each decode, through ``clipbench.run``."""
    import clipbench
    from clipbench.datasets.digits import DigitsAdapter, digits_adapter
    from clipbench.datasets.images import FileSplit
    from clipbench.features import FeatureStore, extract_features
    from clipbench.models import load_model

    paths, labels = digits_jpegs(work / "digits-jpeg")
    if limit:
        paths, labels = paths[:limit], labels[:limit]

    class DigitsJpeg(DigitsAdapter):  # digits' classnames and prompts, the test images from JPEG files
        def load_split(self, split, data_root=None):
            return FileSplit(self.name, split, paths, labels, root=work / "digits-jpeg")

    base = digits_adapter()
    adapter = DigitsJpeg(**{**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, "name": "digits-jpeg"})
    out: dict = {"images": len(paths)}
    features = {}
    model = load_model("clipbench-tiny", device=device)  # to read back the runs' features from the cache
    for decode in ("pil", "gpu"):
        records = clipbench.run("clipbench-tiny", datasets=[adapter], suite="zeroshot", device=device,
                                results_dir=work / f"results-{decode}", cache_dir=work / "cache", progress=False,
                                decode=decode, bootstrap=0, workers=0, log_samples=False)
        out[f"top1_{decode}"] = records[0]["metrics"]["top1"]
        out[f"preprocess_id_{decode}"] = records[0]["preprocess_id"]
        features[decode] = extract_features(model, adapter.load_split("test"), FeatureStore(work / "cache" / "features"),
                                            decode=decode, progress=False).features
    a, b = features["pil"], features["gpu"]
    out["max_rel_feature_diff"] = float(np.abs(a - b).max() / np.abs(a).max())
    out["min_cosine"] = float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())
    classifier = clipbench_classifier(model, adapter, work)
    flips = (np.argmax(a @ classifier.T, 1) != np.argmax(b @ classifier.T, 1)).sum()
    out["predictions_differing"] = int(flips)
    return out


def clipbench_classifier(model, adapter, work: Path) -> np.ndarray:
    from clipbench.features.text_classifier import text_classifier

    return np.asarray(text_classifier(model, adapter.class_prompts(), work / "cache" / "text"))


def rates(paths: list[Path], resolution: int, device: torch.device, batch: int) -> dict:
    """Images/s of each pipeline's whole job (files already in the page cache)."""
    from clipbench.datasets.images import open_rgb, read_bytes
    from clipbench.features.image_pipeline import GpuPipeline
    from clipbench.models.preprocess import clip_preprocess

    reference = clip_preprocess(resolution)
    start = time.perf_counter()
    for path in paths:
        reference(open_rgb(path))
    pil = len(paths) / (time.perf_counter() - start)
    pipeline = GpuPipeline(resolution, device.type)
    samples = [pipeline.transform.from_encoded(read_bytes(p), str(p), lambda p=p: open_rgb(p)) for p in paths]
    pipeline.to_device(samples[:batch], device)  # warm-up (CUDA context, nvjpeg handles)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(0, len(samples), batch):
        pipeline.to_device(samples[i:i + batch], device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"pil_img_s_one_thread": pil, "gpu_pipeline_img_s": len(paths) / (time.perf_counter() - start)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=24, help="generated JPEGs per shape group")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="digits test images for the accuracy part (default all 797)")
    parser.add_argument("--quick", action="store_true", help="3 images per group, 40 digits (for tests)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.limit = 3, 40
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    if device.type != "cuda":
        os.environ["CLIPBENCH_TEST_DECODE_ON_CPU"] = "1"  # the gpu pipeline, run on the CPU
    torch.set_num_threads(1) if device.type == "cpu" else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = [p for i, size in enumerate(SHAPES) for p in make_jpegs(work / f"shape{i}", args.images, size, seed=i)]
        pixels = pixel_differences(paths, args.resolution, device)
        speed = rates(paths, args.resolution, device, args.batch)
        accuracy = accuracy_difference(work, args.device, args.limit)
    decoder = "nvjpeg" if device.type == "cuda" else "libjpeg-turbo (CPU stand-in for nvjpeg)"
    print_table(f"--decode gpu vs the reference (PIL), {args.device}, decoder {decoder}",
                ["measure", "value"],
                [[f"pixels: share of 8-bit values differing ({pixels['images']} JPEGs, {args.resolution} px)",
                  f"{pixels['differing_share']:.2e}"],
                 ["pixels: largest difference (levels)", pixels["max_levels"]],
                 [f"digits-jpeg top-1, pil / gpu ({accuracy['images']} images)",
                  f"{accuracy['top1_pil']:.2f} / {accuracy['top1_gpu']:.2f}"],
                 ["predictions differing", accuracy["predictions_differing"]],
                 ["features: max relative difference / min cosine",
                  f"{accuracy['max_rel_feature_diff']:.2e} / {accuracy['min_cosine']:.7f}"],
                 ["img/s: PIL decode+preprocess, one thread", speed["pil_img_s_one_thread"]],
                 [f"img/s: gpu pipeline on {args.device}, batches of {args.batch}", speed["gpu_pipeline_img_s"]]])
    write_summary(args.out, {"benchmark": "decode", "machine": machine_info(("torchvision", "pillow")),
                             "args": vars(args), "decoder": decoder, "pixels": pixels, "accuracy": accuracy,
                             "rates": speed})
    return 0


if __name__ == "__main__":
    sys.exit(main())
