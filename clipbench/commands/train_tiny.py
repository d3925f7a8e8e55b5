"""`clipbench train-tiny`: retrain a packaged tiny model from scratch (clipbench-tiny on digits, clipbench-shapes)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import check_writable
from clipbench.training.settings import RECIPES, TRAIN_DATASET, settings_with

#: the packaged model each training dataset's recipe produces
MODEL_NAMES = {"digits": "clipbench-tiny", "shapes": "clipbench-shapes"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-tiny",
        help="train the small CLIPs shipped as clipbench-tiny (digits) / clipbench-shapes (a few minutes on CPU)",
        description=(
            "Train clipbench-tiny (--dataset digits, the default) or clipbench-shapes (--dataset shapes) from "
            "scratch with CLIP's contrastive loss on that dataset's train split, deterministically for a given "
            "seed, and write it as an OpenAI-format state dict. Evaluate the result with: "
            "clipbench run --suite smoke --model PATH (digits) or --suite smoke-retrieval --model PATH (shapes)"
        ),
    )
    parser.add_argument("--dataset", choices=tuple(RECIPES), default=TRAIN_DATASET,
                        help="training data and recipe: digits (clipbench-tiny) or shapes (clipbench-shapes)")
    parser.add_argument("--out", type=Path, default=None,
                        help="checkpoint file to write (default: <model name>.pt, e.g. clipbench-tiny.pt)")
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default {RECIPES[TRAIN_DATASET].seed})")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the train split (default: the recipe's, " +
                        ", ".join(f"{d} {s.epochs}" for d, s in RECIPES.items()) + ")")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many optimiser steps (default: all epochs)")
    parser.add_argument("--data-root", default=None,
                        help="data root (digits ships with scikit-learn; shapes is generated there on first use)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clipbench.training.tiny import train_tiny  # torch: only when training

    out = args.out if args.out is not None else Path(f"{MODEL_NAMES[args.dataset]}.pt")
    try:
        check_writable(out)  # before a minute of training, not after it
    except ClipbenchError as exc:
        raise ClipbenchError(f"train-tiny --out {out}: {exc}") from None
    settings = settings_with(args.dataset, seed=args.seed, epochs=args.epochs, max_steps=args.steps)
    start = time.perf_counter()
    result, sha256 = train_tiny(out, settings, data_root=args.data_root, dataset=args.dataset)
    elapsed = time.perf_counter() - start
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({size_mb:.1f} MB) after {result.steps} steps in {elapsed:.0f} s")
    print(f"sha256 {sha256}")
    print(f"final epoch mean loss {result.epoch_losses[-1]:.4f}")
    return 0
