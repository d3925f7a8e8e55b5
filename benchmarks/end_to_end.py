"""End to end: clipbench vs CLIP_benchmark on the same zero-shot job, cold and warm, accuracy checked.

The job: zero-shot classification of a generated image folder (``--images`` JPEGs over
``--classes`` classes named after ImageNet classes, the first ``--templates`` ImageNet templates),
with one random open_clip ``ViT-B-32-quickgelu`` state dict that both tools load (clipbench as a
checkpoint path through its native CLIP, CLIP_benchmark through ``open_clip`` as its CLI does).
Both run as the user would, one fresh process per run, on the CPU in fp32:

* clipbench: ``python -m clipbench run --model W.pt --dataset folder:DIR --suite SUITE.yaml``
  (the folder's ``prompts.yaml`` gives the classnames and templates; default options otherwise,
  so ``workers: auto``, the bootstrap CI and the leaderboards are part of its time);
* CLIP_benchmark: its ``clip_benchmark eval`` entry point with ``--dataset fer2013`` (the one of its
  built-in names that reads any class-folder tree, ``ROOT/test/<class>/``) and
  ``--custom_classname_file`` / ``--custom_template_file`` giving the same classnames and templates,
  ``--no_amp`` (its default autocast would run bf16 on a CPU), ``--num_workers 0``. Two patches,
  applied in the launching process and not in its files: its top-k ``accuracy`` helper calls
  ``float()`` on a one-element array, which numpy 2 refuses, so an equivalent helper replaces it;
  and ``pycocoevalcap`` (imported by its captioning metric, unused here) is stubbed when missing.

*Cold*: clipbench with an empty cache; CLIP_benchmark keeps no cache, so every run of it is cold.
*Warm*: clipbench rerun on the cache of the previous cold run; CLIP_benchmark simply run again.
Rounds interleave the four kinds (order alternating), medians over ``--repeats`` (>= 3). The two
tools' top-1 and mean per-class recall must be equal in the same run. CLIP_benchmark's linear
probe asserts a CUDA device, so it cannot be compared on a CPU.

    python benchmarks/end_to_end.py --out end_to_end.json
    python benchmarks/end_to_end.py --quick --out /tmp/e2e.json     # tiny model, 1 round, no targets,
                                                                    # CLIP_benchmark (no cache) run once
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
FULL_ARCH = "ViT-B-32-quickgelu"
QUICK_ARCH = "cbbench-tiny-ViT"
COLD_TARGET, WARM_TARGET = 2.0, 20.0

#: Run CLIP_benchmark's own CLI, with the two patches described above.
CLIP_BENCHMARK_LAUNCHER = r"""
import sys, types, json
try:
    import pycocoevalcap  # noqa: F401
except ImportError:  # only its captioning metric needs it
    for name in ("pycocoevalcap", "pycocoevalcap.tokenizer", "pycocoevalcap.tokenizer.ptbtokenizer",
                 "pycocoevalcap.bleu", "pycocoevalcap.bleu.bleu", "pycocoevalcap.meteor", "pycocoevalcap.meteor.meteor",
                 "pycocoevalcap.rouge", "pycocoevalcap.rouge.rouge", "pycocoevalcap.cider", "pycocoevalcap.cider.cider",
                 "pycocoevalcap.spice", "pycocoevalcap.spice.spice"):
        module = sys.modules.setdefault(name, types.ModuleType(name))
        for attr in ("PTBTokenizer", "Bleu", "Meteor", "Rouge", "Cider", "Spice"):
            setattr(module, attr, None)
quick_cfg = sys.argv.pop(1)
if quick_cfg != "-":
    import open_clip
    open_clip.add_model_config(quick_cfg)
import clip_benchmark.metrics.zeroshot_classification as zc

def accuracy(output, target, topk=(1,)):  # the original's float(array) fails under numpy 2
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [float(correct[:k].reshape(-1).float().sum().item()) / len(target) for k in topk]

zc.accuracy = accuracy
from clip_benchmark.cli import main
sys.argv = ["clip_benchmark"] + sys.argv[1:]
main()
"""


def make_data(folder: Path, classnames: list[str], templates: list[str], n_images: int, size: int, seed: int) -> None:
    """``folder/test/<NN_name>/*.jpg`` plus prompts.yaml (clipbench) and two JSON files (CLIP_benchmark)."""
    rng = np.random.default_rng(seed)
    test = folder / "test"
    for i in range(n_images):
        c = i % len(classnames)
        d = test / f"{c:03d}_{re.sub(r'[^a-z0-9]+', '_', classnames[c].lower())}"
        d.mkdir(parents=True, exist_ok=True)
        w, h = size + (i % 5) * 7, size - (i % 3) * 5
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * (c + 1) % 256, yy * (7 - c % 7) % 256, (xx ^ yy) % 256], -1).astype(np.float64)
        img = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(d / f"{i:05d}.jpg", quality=90)
    import yaml

    (test / "prompts.yaml").write_text(yaml.safe_dump({"classnames": classnames, "templates": templates}))
    (folder / "classnames.json").write_text(json.dumps({"fer2013": classnames}))
    (folder / "templates.json").write_text(json.dumps({"fer2013": templates}))


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), timeout=3600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--templates", type=int, default=8, help="the first N ImageNet templates")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (medians; >= 3 for the README)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="tiny open_clip architecture, 1 round (for tests)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.classes, args.templates, args.repeats = 8, 4, 2, 1
    if args.images < args.classes or not 2 <= args.classes <= 1000 or not 1 <= args.templates <= 80 \
            or args.repeats < 1:
        print("error: need --images >= --classes, --classes in 2..1000, --templates in 1..80, --repeats >= 1",
              file=sys.stderr)
        return 2
    from _common import write_summary
    from zeroshot_text import imagenet_prompts

    all_classes, all_templates, source = imagenet_prompts()
    step = len(all_classes) / args.classes
    classnames = [all_classes[int(i * step)] for i in range(args.classes)]
    templates = all_templates[: args.templates]
    with tempfile.TemporaryDirectory(prefix="clipbench-bench-e2e-") as folder:
        summary = measure(args, Path(folder), classnames, templates, source)
    write_summary(args.out, summary)
    return 0 if summary["accuracy_equal"] else 1


def measure(args, tmp: Path, classnames: list[str], templates: list[str], source: str) -> dict:
    """Every timed run, in ``tmp``; prints the table and returns the JSON summary."""
    import open_clip
    import torch
    from _common import machine_info, print_table
    from extract import register_quick_archs

    quick_cfg = "-"
    if args.quick:
        register_quick_archs(tmp)
        quick_cfg = str(tmp / f"{QUICK_ARCH}.json")
    arch = QUICK_ARCH if args.quick else FULL_ARCH
    torch.manual_seed(0)
    weights = tmp / f"{arch}.pt"
    torch.save(open_clip.create_model(arch, pretrained=None).state_dict(), weights)
    resolution = 64 if args.quick else 224
    make_data(tmp / "data", classnames, templates, args.images, size=max(resolution, 160), seed=0)
    suite = tmp / "suite.yaml"
    suite.write_text("version: 1\nname: e2e\ndatasets: [digits]\ntasks: [zeroshot]\n")  # --dataset replaces it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)}

    def clipbench_cmd(cache: Path, results: Path) -> list[str]:
        return [sys.executable, "-m", "clipbench", "run", "--model", str(weights), "--suite", str(suite), "--dataset",
                f"folder:{tmp / 'data' / 'test'}", "--device", "cpu", "--no-progress", "--batch-size",
                str(args.batch_size), "--cache-dir", str(cache), "--results-dir", str(results)]

    def clip_benchmark_cmd(out: Path) -> list[str]:
        return [sys.executable, "-c", CLIP_BENCHMARK_LAUNCHER, quick_cfg, "eval", "--dataset", "fer2013",
                "--dataset_root", str(tmp / "data"), "--model", arch, "--pretrained", str(weights),
                "--custom_classname_file", str(tmp / "data" / "classnames.json"), "--custom_template_file",
                str(tmp / "data" / "templates.json"), "--no_amp", "--num_workers", "0", "--batch_size",
                str(args.batch_size), "--output", str(out), "--task", "zeroshot_classification"]

    times: dict[str, list[float]] = {k: [] for k in ("clipbench cold", "clipbench warm", "CLIP_benchmark cold",
                                                     "CLIP_benchmark warm")}
    accuracies: dict[str, list[tuple[float, float]]] = {"clipbench": [], "CLIP_benchmark": []}
    for rep in range(args.repeats):
        cache, results = tmp / f"cache{rep}", tmp / f"res{rep}"
        steps = [("CLIP_benchmark cold", "cb"), ("clipbench cold", "cl"), ("CLIP_benchmark warm", "cb"),
                 ("clipbench warm", "cl")]
        if rep % 2:
            steps = [steps[1], steps[0], steps[3], steps[2]]
        if args.quick:  # a smoke run: CLIP_benchmark keeps no cache, so its second run would repeat its first
            steps = [step for step in steps if step[0] != "CLIP_benchmark warm"]
        for name, tool in steps:
            if tool == "cl":
                res = results / name.split()[1]
                seconds, _ = timed(clipbench_cmd(cache, res), env)
                from clipbench.results.records import read_records

                (record,) = read_records(res)
                accuracies["clipbench"].append((record["metrics"]["top1"], record["metrics"]["mean_per_class_recall"]))
            else:
                out = tmp / f"cb-{rep}-{name.split()[1]}.json"
                seconds, _ = timed(clip_benchmark_cmd(out), env)
                metrics = json.loads(out.read_text())["metrics"]
                accuracies["CLIP_benchmark"].append((100 * metrics["acc1"], 100 * metrics["mean_per_class_recall"]))
            times[name].append(seconds)
    if args.quick:
        del times["CLIP_benchmark warm"]
    med = {k: statistics.median(v) for k, v in times.items()}
    # --quick: CLIP_benchmark's one (cold) run stands for its warm one; it has no cache to be warm from
    med_cb_warm = med.get("CLIP_benchmark warm", med["CLIP_benchmark cold"])
    cold_ratio = med["CLIP_benchmark cold"] / med["clipbench cold"]
    warm_ratio = med_cb_warm / med["clipbench warm"]
    values = {tuple(round(x, 9) for x in a) for v in accuracies.values() for a in v}
    equal = len(values) == 1
    (top1, recall) = next(iter(values)) if equal else (None, None)
    rows = [[k, med[k], ", ".join(f"{t:.1f}" for t in times[k])] for k in times]
    title = (f"End to end, zero-shot on {args.images} generated JPEGs, {args.classes} classes x {args.templates} "
             f"templates, random {arch} weights in both, CPU fp32, median of {args.repeats}")
    print_table(title, ["run", "median s", "all s"], rows)
    print(f"\nCLIP_benchmark / clipbench: cold {cold_ratio:.2f}x (target >= {COLD_TARGET}x), warm {warm_ratio:.2f}x "
          f"(target >= {WARM_TARGET}x)")
    print(f"accuracy equal in every run: {equal}" + (f" (top-1 {top1:.2f}%, mean per-class recall {recall:.2f}%)"
                                                      if equal else f": {accuracies}"))
    print("note: CLIP_benchmark's linear probe asserts a CUDA device (metrics/linear_probe.py), so only zero-shot "
          "is compared on a CPU")
    summary = {"benchmark": "end_to_end", "machine": machine_info(("open_clip", "clip_benchmark")), "args": vars(args),
               "arch": arch, "prompt_source": source, "times_s": times, "median_s": med, "cold_ratio": cold_ratio,
               "warm_ratio": warm_ratio, "targets": {"cold": COLD_TARGET, "warm": WARM_TARGET},
               "meets_targets": {"cold": cold_ratio >= COLD_TARGET, "warm": warm_ratio >= WARM_TARGET},
               "accuracy_equal": equal, "accuracies": accuracies, "top1": top1, "mean_per_class_recall": recall}
    return summary


if __name__ == "__main__":
    sys.exit(main())
