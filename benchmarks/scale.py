"""A DataComp-shaped job end to end: images/s, decode- or encode-bound, workers per GPU, 1 -> 2 processes.

The job: the ``datacomp`` suite's 40 datasets (DataComp's 38 tasks plus FairFace and UTKFace), one
``folder:`` dataset each, zero-shot, with a random native CLIP (``--arch``: ViT-B/32, the default,
or ViT-B/16; ``--quick``: a tiny one) saved as an OpenAI-layout checkpoint. Each task gets
``round(size * --scale)`` generated JPEGs (at least 2), ``size`` being the published test size the
suite's dataset declares, else the ``size`` field of DataComp's ``tasklist.yml``
(github.com/mlfoundations/datacomp at commit 2d7bde7c28a9e5cacb3cdbc84dcdf5ea9a1d65f3): 752,016
images in all, more than the "about half a million" the scale issue names, since SUN397's 108,754
and Flickr30k's 31,014 are whole datasets. The pixel size is our estimate of the task's typical
image (``TASKS`` below: not measured from the data). ``--images-per-shape`` distinct JPEGs are
drawn per task and hard-linked up to its count, so the full size (``--scale 1``) costs disk and
time only once per shape.

Measured in one run, on the same JPEGs:

* **decode**: one worker (one thread) decoding and preprocessing the job's whole JPEG mix (PIL,
  CLIP's resize): images/s per worker;
* **encode**: the model's image encoder (one thread on the CPU, or the device) on a preprocessed
  batch: images/s per process. The job is *decode-bound* where a worker decodes slower than the
  encoder encodes, per core, else *encode-bound*;
* **end to end, cold**, ``python -m clipbench run`` over all the datasets, each time with a new
  cache: on the CPU as one plain process (``--threads 1``, ``--workers 0``), the reference; as a
  one-rank job array (``--rank 0 --world-size 1``, then the scoring step ``--world-size 1``); and
  as a two-rank job array (both ranks at once, then the scoring step), same options. Speed-ups:
  extraction = t(the one rank) / t(the two ranks at once), ideally 2 on two idle cores; end to end =
  t(plain) / t(two ranks + scoring step), where the scoring step (text classifiers, assembling,
  metrics, bootstrap) runs once either way; and a two-rank array with ``--shard-jobs`` (the
  cost-balanced plan: each rank scores its own jobs, no scoring step): t(plain) / t(its ranks).
  All four runs' records must be equal. A split is sharded in whole batches, so the CPU default
  batch is 4: at 1/2000 most tasks hold fewer than 32 images. On CUDA (``benchmarks/gpu.sh``): one process, ``--workers auto``, cold then warm,
  against the targets of 15 minutes cold and 1 minute warm for the full job.

**Workers per GPU** = the encoder rate a GPU reaches (``--gpu-img-s``; default ViT-B/16, 35.1
GFLOPs per image, at 40% of an H100's 989 dense bf16 TFLOP/s: 11,270 img/s) / the per-worker
decode rate measured here.

    python benchmarks/scale.py --out scale.json
    python benchmarks/scale.py --quick --out /tmp/scale.json
    python benchmarks/scale.py --scale 1 --device cuda --arch ViT-B/16 --out scale-gpu.json    # gpu.sh
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLD_TARGET_S, WARM_TARGET_S = 15 * 60.0, 60.0
#: ViT-B/16 image tower (models registry) at 40% of an H100 SXM's dense bf16 peak (989 TFLOP/s)
DEFAULT_GPU_IMG_S = 0.40 * 989e12 / 35.1e9

#: (the datacomp suite's dataset, in its order (tasklist.yml's), test images in DataComp's tasklist.yml, our
#: estimate of a typical image's width x height)
TASKS = (
    ("caltech101", 6085, (300, 200)), ("cifar10", 10000, (32, 32)), ("cifar100", 10000, (32, 32)),
    ("clevr_count", 15000, (480, 320)), ("clevr_distance", 15000, (480, 320)), ("country211", 21100, (500, 375)),
    ("dtd", 1880, (500, 400)), ("eurosat", 5400, (64, 64)), ("fgvc_aircraft", 3333, (1000, 700)),
    ("food101", 25250, (512, 384)), ("gtsrb", 12630, (50, 50)), ("imagenet1k", 50000, (500, 375)),
    ("imagenet_sketch", 50889, (500, 400)), ("imagenet_v2", 10000, (500, 375)), ("imagenet_a", 7500, (500, 375)),
    ("imagenet_o", 2000, (500, 375)), ("imagenet_r", 30000, (500, 400)), ("kitti_distance", 711, (1242, 375)),
    ("mnist", 10000, (28, 28)), ("objectnet", 18574, (640, 480)), ("flowers102", 6149, (500, 600)),
    ("oxford_pets", 3669, (500, 375)), ("voc2007", 14976, (500, 375)), ("pcam", 32768, (96, 96)),
    ("rendered_sst2", 1821, (448, 448)), ("resisc45", 6300, (256, 256)), ("stanford_cars", 8041, (700, 480)),
    ("stl10", 8000, (96, 96)), ("sun397", 108754, (640, 480)), ("svhn", 26032, (32, 32)),
    ("flickr30k", 31014, (500, 375)), ("mscoco_captions", 5000, (640, 480)), ("winogavil", 3563, (512, 512)),
    ("iwildcam", 42791, (448, 448)), ("camelyon17", 85054, (96, 96)), ("fmow", 22108, (224, 224)),
    ("dollar_street", 3503, (500, 375)), ("geode", 12488, (500, 375)), ("fairface", 10954, (224, 224)),
    ("utkface", 23703, (200, 200)),
)


def suite_sizes() -> list[int]:
    """Images per task: the evaluation split's published size the suite's dataset declares (what ``clipbench
    run --suite datacomp`` scores: e.g. clipbench's VOC2007 is the paper's 4,952 images, not DataComp's 14,976
    crops), else tasklist.yml's ``size`` (Caltech-101, the retrieval sets, WinoGAViL, UTKFace; EuroSAT and
    SUN397, which declare the whole set they carve their test split from)."""
    from clipbench.datasets import get_dataset
    from clipbench.datasets.counts import expected_count

    return [expected_count(get_dataset(name)) or size for name, size, _ in TASKS]


def write_model(path: Path, arch: str) -> Path:
    """A random native CLIP of ``arch`` (the OpenAI hyperparameters; "tiny": 32 px) as a state dict."""
    from clipbench.models.architecture import CLIP, ClipConfig

    text = {"context_length": 77, "vocab_size": 49408}
    if arch == "tiny":
        config = ClipConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                            transformer_width=64, transformer_heads=1, transformer_layers=1, **text)
    else:
        config = ClipConfig(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                            vision_patch_size=int(arch.rsplit("/", 1)[1]), transformer_width=512, transformer_heads=8,
                            transformer_layers=12, **text)
    torch.manual_seed(0)
    module = CLIP(config)
    with torch.no_grad():  # nothing left all-zero
        for p in module.parameters():
            if p.abs().sum() == 0:
                p.copy_(0.02 * torch.randn_like(p))
    torch.save(module.state_dict(), path)
    return path


def task_counts(scale: float, tasks: int = len(TASKS)) -> list[tuple[str, int, tuple[int, int]]]:
    """(folder name, images, size) of the first ``tasks`` tasks at ``scale``; each keeps at least 2 images."""
    return [(name, max(2, round(size * scale)), shape)
            for (name, _, shape), size in zip(TASKS[:tasks], suite_sizes(), strict=False)]


def write_job(root: Path, scale: float, per_shape: int, tasks: int = len(TASKS), seed: int = 0) -> list[Path]:
    """``root/<task>/test/{a,b}/*.jpg`` for the first ``tasks`` tasks; returns the dataset folders."""
    rng = np.random.default_rng(seed)
    folders = []
    for name, count, (w, h) in task_counts(scale, tasks):
        distinct = []
        for i in range(min(count, per_shape)):  # photo-like: a smooth colour field plus grain, quality 90
            coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
            pixels = np.asarray(coarse, dtype=np.int16) + rng.normal(0, 12, (h, w, 3)).astype(np.int16)
            path = root / "_distinct" / name / f"{i:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
            distinct.append(path)
        for i in range(count):
            target = root / name / "test" / ("a" if i % 2 else "b") / f"{i:06d}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(distinct[i % len(distinct)], target)
        folders.append(root / name)
    return folders


def decode_rate(paths: list[Path], preprocess, most: int = 2000) -> float:
    """Images/s of one worker (one thread) decoding and preprocessing ``paths`` (every k-th, at most ``most``,
    so the job's mix of tasks is kept) once, in order."""
    paths = paths[::max(1, math.ceil(len(paths) / most))]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        for path in paths:
            with Image.open(path) as img:
                preprocess(img.convert("RGB"))
        return len(paths) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def encode_rate(model, preprocess, paths: list[Path], batch: int, iters: int, device: str) -> float:
    """Images/s of the image encoder alone on one preprocessed batch (median of ``iters``)."""
    images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in (paths * batch)[:batch]]).to(device)
    times = []
    with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=device == "cuda"):
        for i in range(iters + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.encode_image(images)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first is warm-up
                times.append(time.perf_counter() - start)
    return batch / float(np.median(times))


def clipbench_run(args, weights: Path, datasets: list[Path], tag: str, tmp: Path, *extra: str) -> list[str]:
    opts = ["--threads", "1", "--workers", "0"] if args.device == "cpu" else ["--workers", "auto", "--precision",
                                                                              "bf16"]
    return [sys.executable, "-m", "clipbench", "run", "--model", str(weights), "--task", "zeroshot", "--dataset",
            ",".join(f"folder:{d}" for d in datasets), "--device", args.device, "--no-progress", "--batch-size",
            str(args.batch_size), "--cache-dir", str(tmp / f"cache-{tag}"), "--results-dir", str(tmp / f"res-{tag}"),
            "--offline", *opts, *extra]


def _cli_in_fork(argv: list[str]) -> None:
    code = 1
    try:
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        from clipbench.cli import main as cli_main

        code = cli_main(argv)
    finally:
        os._exit(code)


def timed(cmds: list[list[str]], fork: bool = False) -> float:
    """Start ``cmds`` at once, wait for all; seconds (their CPU seconds are added to ``CPU_S``). A failure raises
    with its stderr. ``fork``: run each
    ``python -m clipbench ARGS`` as ``clipbench.cli.main(ARGS)`` in a process forked from this one (no fresh
    interpreter: --quick's cheap test path, not a user's timing)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = _timed(cmds, fork)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_S.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return seconds


#: CPU seconds (user + system) of the processes of each ``timed`` call, in call order
CPU_S: list[float] = []


def _timed(cmds: list[list[str]], fork: bool) -> float:
    if fork:
        import multiprocessing

        start = time.perf_counter()
        procs = [multiprocessing.get_context("fork").Process(target=_cli_in_fork, args=(c[3:],)) for c in cmds]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            raise RuntimeError(f"clipbench run exited {[p.exitcode for p in procs]}")
        return time.perf_counter() - start
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
           "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    outs = [p.communicate(timeout=3 * 3600) for p in procs]
    seconds = time.perf_counter() - start
    for p, (_, err) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"clipbench run exited {p.returncode}:\n{err[-3000:]}")
    return seconds


def metrics(results: Path) -> list:
    lines = (results / "results.jsonl").read_text().splitlines()
    return sorted((json.loads(line)["dataset"], json.loads(line)["metrics"]) for line in lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1 / 2000, help="fraction of each task's images (1: full)")
    parser.add_argument("--images-per-shape", type=int, default=8, help="distinct JPEGs per task (hard-linked)")
    parser.add_argument("--arch", default="ViT-B/32", choices=("ViT-B/32", "ViT-B/16"),
                        help="the random native CLIP's architecture")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 4 on the CPU (a split is sharded in whole batches: at 1/2000 most tasks have "
                             "under 32 images), 256 on CUDA")
    parser.add_argument("--gpu-img-s", type=float, default=DEFAULT_GPU_IMG_S,
                        help="encoder images/s one GPU reaches, for the workers-per-GPU column")
    parser.add_argument("--gpu-cores", type=int, default=16, help="CPU cores beside one GPU, for the extrapolation")
    parser.add_argument("--tasks", type=int, default=len(TASKS), help=f"the first N of the {len(TASKS)} tasks")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny model, 3 tasks of 2 images, runs forked from this process (for tests)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if (not 0 < args.scale <= 1 or args.images_per_shape < 1 or args.gpu_img_s <= 0 or args.gpu_cores < 1
            or not 1 <= args.tasks <= len(TASKS)):
        parser.error(f"--scale must be in (0, 1], --tasks from 1 to {len(TASKS)}, --images-per-shape, --gpu-img-s "
                     "and --gpu-cores positive")
    if args.quick:
        args.scale, args.images_per_shape, args.arch, args.tasks = 1e-6, 2, "tiny", 3
    args.batch_size = args.batch_size or (256 if args.device == "cuda" else 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("scale: SKIPPED: no CUDA device")
        return 0
    from clipbench import load_model
    from clipbench.models.preprocess import clip_preprocess

    with tempfile.TemporaryDirectory(prefix="clipbench-bench-scale-") as name:
        tmp = Path(name)
        weights = write_model(tmp / f"{args.arch.replace('/', '-')}.pt", args.arch)
        start = time.perf_counter()
        datasets = write_job(tmp / "data", args.scale, args.images_per_shape, args.tasks)
        made_s = time.perf_counter() - start
        paths = sorted((tmp / "data").glob("*/test/*/*.jpg"))
        model = load_model(weights, device=args.device)
        preprocess = clip_preprocess(model.image_resolution)
        per_worker = decode_rate(paths, preprocess)
        threads = torch.get_num_threads()
        torch.set_num_threads(1 if args.device == "cpu" else threads)
        encoder = encode_rate(model, preprocess, paths, args.batch_size, 3, args.device)
        torch.set_num_threads(threads)
        ends: dict[str, float] = {}
        if args.device == "cpu":
            fork = args.quick
            ends["1 process (plain run)"] = timed([clipbench_run(args, weights, datasets, "plain", tmp)], fork)
            for world in (1, 2):
                ranks = [clipbench_run(args, weights, datasets, f"array{world}", tmp, "--rank", str(r), "--world-size",
                                       str(world)) for r in range(world)]
                ends[f"job array of {world}: ranks at once"] = timed(ranks, fork)
                ends[f"job array of {world}: scoring step"] = timed(
                    [clipbench_run(args, weights, datasets, f"array{world}", tmp, "--world-size", str(world))], fork)
                ends[f"job array of {world}: total"] = sum(ends[f"job array of {world}: {p}"]
                                                           for p in ("ranks at once", "scoring step"))
                CPU_S.append(CPU_S[-1] + CPU_S[-2])  # the total's
            ranks = [clipbench_run(args, weights, datasets, "plan2", tmp, "--rank", str(r), "--world-size", "2",
                                   "--shard-jobs") for r in range(2)]
            ends["job array of 2, --shard-jobs (no scoring step)"] = timed(ranks, fork)
            equal = (metrics(tmp / "res-plain") == metrics(tmp / "res-array1") == metrics(tmp / "res-array2")
                     == metrics(tmp / "res-plan2"))
        else:
            ends["cold"] = timed([clipbench_run(args, weights, datasets, "gpu", tmp)])
            ends["warm"] = timed([clipbench_run(args, weights, datasets, "gpu", tmp)])
            equal = None
    n = len(paths)
    bound = "decode-bound" if per_worker < encoder else "encode-bound"
    cpu = dict(zip(ends, CPU_S, strict=True))
    rows = [[k, n, round(v, 2), n / v, round(cpu[k], 1), cpu[k] / v] for k, v in ends.items()]
    print_table(f"DataComp-shaped job: {args.tasks} tasks, {n} JPEGs (scale {args.scale:g}), {args.arch}, "
                f"{args.device}, batch {args.batch_size}; cores used = CPU s / s (the neighbours take the rest)",
                ["run", "images", "seconds", "img/s", "CPU s", "cores used"], rows)
    speedup = extract_speedup = plan_speedup = None
    if args.device == "cpu":
        speedup = ends["1 process (plain run)"] / ends["job array of 2: total"]
        extract_speedup = ends["job array of 1: ranks at once"] / ends["job array of 2: ranks at once"]
        plan_speedup = ends["1 process (plain run)"] / ends["job array of 2, --shard-jobs (no scoring step)"]
        print(f"\nspeed-up 1 -> 2 processes (ideal 2.00): extraction (the ranks) {extract_speedup:.2f}x; end to end "
              f"(plain run / 2-rank array with its scoring step) {speedup:.2f}x; end to end with the --shard-jobs "
              f"plan {plan_speedup:.2f}x; records equal: {equal}")
    workers_gpu = math.ceil(args.gpu_img_s / per_worker)
    full = sum(suite_sizes())
    gpu_rate = min(args.gpu_img_s, per_worker * args.gpu_cores)
    print_table("Per process, one thread (the pipeline: decode + CLIP preprocess; the encoder: one batch)",
                ["stage", "img/s"], [["decode + preprocess (1 worker)", per_worker], [f"encode ({args.arch})", encoder]])
    print(f"\nhere: {bound} (one worker decodes {per_worker:.0f} img/s, the encoder takes {encoder:.1f} img/s)")
    print(f"workers to feed one GPU at {args.gpu_img_s:.0f} img/s: {workers_gpu}")
    print(f"extrapolation, not a measurement: {full:,} images on one GPU with {args.gpu_cores} cores run at "
          f"min({args.gpu_img_s:.0f}, {args.gpu_cores} x {per_worker:.0f}) = {gpu_rate:.0f} img/s: "
          f"{full / gpu_rate:.0f} s against the {COLD_TARGET_S:.0f} s target")
    if args.device == "cuda":
        scaled = ends["cold"] / args.scale
        print(f"\ncold: {ends['cold']:.1f} s ({'within' if ends['cold'] <= COLD_TARGET_S * args.scale else 'over'} "
              f"the 15-minute target{'' if args.scale == 1 else f' scaled to {args.scale:g}'}; full size ~{scaled:.0f} s); "
              f"warm: {ends['warm']:.1f} s (target {WARM_TARGET_S:.0f} s at full size)")
    summary = {"benchmark": "scale", "machine": machine_info(("PIL",)), "args": vars(args),
               "tasks": args.tasks, "images": n, "full_size_images": full, "jpegs_written_s": made_s,
               "end_to_end_s": ends, "end_to_end_img_s": {k: n / v for k, v in ends.items()}, "cpu_s": cpu,
               "speedup_1_to_2": speedup, "extraction_speedup_1_to_2": extract_speedup,
               "plan_speedup_1_to_2": plan_speedup, "records_equal": equal, "decode_img_s_per_worker": per_worker,
               "encode_img_s": encoder, "bound": bound, "gpu_img_s": args.gpu_img_s, "workers_per_gpu": workers_gpu,
               "extrapolated_one_gpu_s": full / gpu_rate, "targets_s": {"cold": COLD_TARGET_S, "warm": WARM_TARGET_S}}
    write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
