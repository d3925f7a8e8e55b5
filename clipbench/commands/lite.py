"""`clipbench lite RESULTS --budget N [--out lite.yaml]`: subsets that rank models as the full sets do, measured."""

from __future__ import annotations

import argparse

from clipbench.foundations.tables import FORMATS, render


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "lite", help="choose small subsets that rank the models already run as the full sets do, and measure it",
        description="From the per-sample files of the models in RESULTS, choose per dataset at most --budget samples "
                    "the models disagree on (stratified by difficulty), measure leave-one-model-out how the "
                    "subsets rank a model they were not chosen on (Spearman and Kendall against the full scores, "
                    "95%% bootstrap intervals over models; each model's full rank with its interval over samples), "
                    "and write a suite that scores exactly those samples (clipbench run --suite FILE).")
    p.add_argument("results", nargs="?", default="results", help="results directory or results.jsonl (default: results/)")
    p.add_argument("--budget", type=int, default=500, help="most samples per dataset (default 500)")
    p.add_argument("--out", metavar="YAML", help="write the lite suite here (default: do not write one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified draw and the bootstrap (default 0)")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples of each interval (default 1000)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default); json or csv: one row per (dataset, task, model)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    report = api.lite(args.results, args.budget, args.out, args.seed, args.bootstrap)
    if args.format == "table":
        print("\n".join(report.lines()))
        if args.out:
            print(f"\nwrote {args.out}")
    else:
        rows = [{"dataset": d.outcomes.dataset, "task": d.outcomes.task, "lite_n": len(d.subset),
                 "spearman": d.agreement.spearman, "kendall": d.agreement.kendall, **row}
                for d in report.datasets for row in d.agreement.rows()]
        print(render(rows, args.format))
    return 0
