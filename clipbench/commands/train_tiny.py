"""`clipbench train-tiny`: retrain the packaged ``clipbench-tiny`` model from scratch on digits."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from clipbench.training.settings import TrainSettings, settings_with

_DEFAULTS = TrainSettings()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-tiny",
        help="train the small CLIP shipped as clipbench-tiny (digits train split, a few minutes on CPU)",
        description=(
            "Train clipbench-tiny from scratch with CLIP's contrastive loss on the digits train split, "
            "deterministically for a given seed, and write it as an OpenAI-format state dict. "
            "Evaluate the result with: clipbench run --suite smoke --model PATH"
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("clipbench-tiny.pt"), help="checkpoint file to write")
    parser.add_argument("--seed", type=int, default=None, help=f"random seed (default {_DEFAULTS.seed})")
    parser.add_argument("--epochs", type=int, default=None, help=f"passes over the train split (default {_DEFAULTS.epochs})")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many optimiser steps (default: all epochs)")
    parser.add_argument("--data-root", default=None, help="data root (digits ships with scikit-learn; unused by it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clipbench.training.tiny import train_tiny  # torch: only when training

    settings = settings_with(seed=args.seed, epochs=args.epochs, max_steps=args.steps)
    start = time.perf_counter()
    result, sha256 = train_tiny(args.out, settings, data_root=args.data_root)
    elapsed = time.perf_counter() - start
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.out} ({size_mb:.1f} MB) after {result.steps} steps in {elapsed:.0f} s")
    print(f"sha256 {sha256}")
    print(f"final epoch mean loss {result.epoch_losses[-1]:.4f}")
    return 0
