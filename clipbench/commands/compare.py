"""`clipbench compare NEW --baseline BASE [--max-drop P]`: the CI regression gate (exit 1 on a regression)."""

from __future__ import annotations

import argparse

from clipbench.errors import EXIT_OK, EXIT_REGRESSION


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="compare results with a baseline (exit 1 on a regression)",
        description="Markdown diff of primary metrics; exits 1 if any dropped by more than --max-drop points, "
                    "a baseline row is missing or a row is not comparable (other weights or data), else 0. "
                    "A value it cannot judge (NaN, missing, unreadable input) exits 2. "
                    "Inputs: results dir, results.jsonl or leaderboard.csv.")
    p.add_argument("new", help="new results (directory, results.jsonl or leaderboard.csv)")
    p.add_argument("--baseline", required=True, help="baseline results (same formats)")
    p.add_argument("--max-drop", type=float, default=0.0, help="tolerated drop in points (default: 0)")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="compare rows whose model_identity or dataset_fingerprint differ instead of failing them")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.comparison import compare

    result = compare(args.new, args.baseline, max_drop=args.max_drop, allow_mismatch=args.allow_mismatch)
    print(result.to_markdown())
    return EXIT_REGRESSION if result.failed else EXIT_OK
