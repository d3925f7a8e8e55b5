"""`clipbench compare NEW --baseline BASE [--max-drop P]`: the CI regression gate (exit 1 on a regression)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare", help="compare results with a baseline (exit 1 on a regression)",
        description="Markdown diff of primary metrics; exits 1 if any dropped by more than --max-drop points "
                    "or a baseline row is missing, else 0. Inputs: results dir, results.jsonl or leaderboard.csv.")
    p.add_argument("new", help="new results (directory, results.jsonl or leaderboard.csv)")
    p.add_argument("--baseline", required=True, help="baseline results (same formats)")
    p.add_argument("--max-drop", type=float, default=0.0, help="tolerated drop in points (default: 0)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.api import compare

    result = compare(args.new, args.baseline, max_drop=args.max_drop)
    print(result.to_markdown())
    return 1 if result.failed else 0
