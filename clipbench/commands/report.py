"""`clipbench report [RESULTS] [--out DIR]`: Markdown + HTML report with plots from stored results."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write a Markdown/HTML report with tables and plots from results",
        description="Model x dataset tables (primary metric, 95% CI, suite mean), per-dataset bars, "
        "ResNet-vs-ViT plot and published numbers, from a results directory, results.jsonl or leaderboard.csv.",
    )
    parser.add_argument("results", nargs="?", default="results",
                        help="results directory, results.jsonl or leaderboard.csv (default: results/)")
    parser.add_argument("--out", default=None, help="output directory (default: <results dir>/report)")
    parser.add_argument("--no-published", action="store_true", help="leave out the published-numbers table")
    parser.add_argument("--reference", action="append", default=[], metavar="FILE",
                        help="a CLIP_benchmark result JSON, folder of them or build CSV, or an open_clip results CSV: "
                             "its numbers as reference rows next to the measured ones (repeatable)")
    parser.add_argument("--data-root", default=None,
                        help="datasets directory: thumbnails in the per-sample browser (default: none)")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    report = api.report(args.results, out_dir=args.out, published=not args.no_published, references=args.reference,
                        data_root=args.data_root)
    print(f"wrote {report.markdown}")
    print(f"wrote {report.html}")
    for image in report.images:
        print(f"wrote {image}")
    return 0
