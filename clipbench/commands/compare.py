"""`clipbench compare NEW --baseline BASE [--max-drop P] [--alpha A] [--tolerances FILE]`: the CI regression gate.

Exit codes: 0 pass, 1 regression, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse

from clipbench.foundations.errors import EXIT_OK, EXIT_REGRESSION


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="compare results with a baseline (exit 1 on a regression)",
        description="Markdown diff of primary metrics. Where both sides have per-sample predictions for the same "
                    "samples (results dir or results.jsonl), a row fails only on a drop larger than --max-drop AND "
                    "significant at --alpha (exact McNemar for accuracy, paired bootstrap otherwise); elsewhere "
                    "(e.g. leaderboard.csv) on any drop larger than --max-drop. A missing baseline row fails, and so "
                    "does a row that is not comparable (other weights or data). Exit 0 pass, 1 regression; a value it "
                    "cannot judge (NaN, missing, unreadable input) exits 2.")
    p.add_argument("new", help="new results (directory, results.jsonl or leaderboard.csv)")
    p.add_argument("--baseline", required=True, help="baseline results (same formats)")
    p.add_argument("--max-drop", type=float, default=0.0, help="tolerated drop in points (default: 0)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the paired tests (default: 0.05)")
    p.add_argument("--tolerances", metavar="FILE.yaml",
                   help="per-dataset / per-task max-drop (keys: default, datasets, tasks)")
    p.add_argument("--format", choices=("markdown", "json", "csv"), default="markdown",
                   help="output format (default: markdown; json and csv list one object per row for scripts)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare rows whose model_identity or dataset_fingerprint differ instead of failing them")
    p.add_argument("--reference", action="append", default=[], metavar="FILE",
                   help="also print NEW's numbers next to a CLIP_benchmark or open_clip result file's (markdown "
                        "output only; never part of the verdict; repeatable)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    references = api.reference_table(args.new, args.reference) if args.reference and args.format == "markdown" else ""
    result = api.compare(args.new, args.baseline, max_drop=args.max_drop, alpha=args.alpha,
                         tolerances=args.tolerances, allow_mismatch=args.allow_mismatch)
    if args.format == "markdown":
        print(result.to_markdown())
        if references:  # read before the gate ran: a bad reference file is exit 2, not a verdict
            print("\n" + references)
    else:
        from clipbench.foundations.tables import render

        print(render(result.row_dicts(), args.format))
    return EXIT_REGRESSION if result.failed else EXIT_OK
