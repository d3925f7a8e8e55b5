"""`clipbench samples RESULT_ID [--results DIR]`: a record's most confident errors and top confusion pairs."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "samples", help="error analysis of one result from its per-sample predictions",
        description="The most confident wrong predictions and the most frequent (true, predicted) class pairs of "
                    "one record, from the per-sample file that --log-samples wrote beside the results.")
    p.add_argument("result_id", help="the record_id of a result (a unique prefix is enough)")
    p.add_argument("--results", default="results", help="results directory or results.jsonl (default: results/)")
    p.add_argument("-n", "--top", type=int, default=10, help="rows per table (default: 10)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    print(api.samples(args.results, args.result_id, args.top))
    return 0
