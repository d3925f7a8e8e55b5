"""A zoo of small CLIPs trained here, run on digits, then `clipbench lite`: how well do lite subsets rank them?

Not a speed benchmark: the measurement behind the README's lite figures (issue 31). Each zoo model is the
clipbench-tiny recipe (``clipbench.training``) with another depth, epoch count and seed, so the zoo spans
a range of accuracies the way a real model zoo does, at a size this machine can train. Every model is
scored on the digits test split (zero-shot and k-NN, per-sample files kept); `clipbench lite` then picks
subsets of ``--budget`` samples and reports leave-one-model-out Spearman and Kendall correlations with
bootstrap CIs. They are a small zoo's figures on one small dataset, not a claim about ImageNet-scale zoos.

    python benchmarks/lite_zoo.py --out lite_zoo.json            # 12 models (~10 min on 2 idle cores)
    python benchmarks/lite_zoo.py --quick                        # 3 models, 2 steps each, zero-shot only
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import clipbench
from clipbench.suites import parse_suite
from clipbench.training.settings import RECIPES
from clipbench.training.tiny import TINY_CONFIG, load_training_data, save_checkpoint, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_summary  # noqa: E402

#: (layers of each tower, epochs, seed): 12 models from barely trained to the shipped recipe's neighbourhood.
#: The width stays 64: OpenAI's checkpoint format infers heads as width // 64, so narrower towers do not load.
ZOO = [(1, 1, 0), (1, 2, 1), (1, 3, 2), (1, 5, 3), (1, 8, 4), (1, 12, 5),
       (2, 1, 6), (2, 2, 7), (2, 3, 8), (2, 5, 9), (2, 8, 10), (2, 12, 11)]
QUICK = [(1, 1, 0), (1, 1, 1), (2, 1, 2)]


def train_zoo(zoo, work: Path, max_steps: int | None) -> list[Path]:
    images, labels, tokens = load_training_data(None, "digits")
    paths = []
    for layers, epochs, seed in zoo:
        path = work / f"zoo-l{layers}-e{epochs}-s{seed}.pt"
        if not path.is_file():
            config = dataclasses.replace(TINY_CONFIG, vision_layers=layers, transformer_layers=layers)
            settings = dataclasses.replace(RECIPES["digits"], epochs=epochs, seed=seed, max_steps=max_steps)
            save_checkpoint(train(images, labels, tokens, settings, config, progress=False).state_dict, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("lite-zoo"), help="checkpoints, cache and results")
    parser.add_argument("--budget", type=int, default=100, help="lite samples per (dataset, task)")
    parser.add_argument("--quick", action="store_true", help="3 models, 2 optimiser steps each, zero-shot only")
    parser.add_argument("--out", type=Path, help="JSON summary")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    paths = train_zoo(QUICK if args.quick else ZOO, args.work, 2 if args.quick else None)
    options = {"offline": True, "threads": 2, "bootstrap": 0, "log_samples": "always"}
    tasks = ["zeroshot"] if args.quick else ["zeroshot", "knn"]  # --quick: what a test can afford
    suite = parse_suite({"version": 1, "datasets": ["digits"], "tasks": tasks, "options": options},
                        "lite_zoo", "lite_zoo", check_dataset=None)
    results = args.work / "results"
    for path in paths:
        clipbench.run(str(path), suite=suite, results_dir=results, cache_dir=args.work / "cache", device="cpu",
                      progress=False)
    report = clipbench.lite(results, args.budget, args.work / "lite.yaml", n_resamples=200 if args.quick else 1000)
    print("\n".join(report.lines()))
    summary = {"machine": machine_info(), "models": len(paths), "budget": args.budget,
               "datasets": [{"dataset": d.outcomes.dataset, "task": d.outcomes.task, "lite_n": len(d.subset),
                             "full_n": int(d.outcomes.correct.shape[1]), "spearman": d.agreement.spearman,
                             "spearman_ci": d.agreement.spearman_ci, "kendall": d.agreement.kendall,
                             "kendall_ci": d.agreement.kendall_ci, "models": d.agreement.rows()}
                            for d in report.datasets]}
    if args.out:
        write_summary(args.out, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
