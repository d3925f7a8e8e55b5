"""`clipbench samples RESULT_ID [--results DIR] [--format F]`: error analysis of one record from its per-sample file."""

from __future__ import annotations

import argparse

from clipbench.foundations.tables import FORMATS, render


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "samples", help="error analysis of one result from its per-sample predictions",
        description="Error analysis of one record from the per-sample file that --log-samples wrote beside the "
                    "results: a classification record's most confident wrong predictions and most frequent (true, "
                    "predicted) class pairs; a retrieval record's worst-ranked images and captions; a selection "
                    "record's accuracy per subset and lowest-margin items with their captions.")
    p.add_argument("result_id", help="the record_id of a result (a unique prefix is enough)")
    p.add_argument("--results", default="results", help="results directory or results.jsonl (default: results/)")
    p.add_argument("-n", "--top", type=int, default=10, help="rows per table (default: 10)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default): the error analysis; json or csv: every sample's row of the per-sample "
                        "file, as stored (for scripts; --top does not apply)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    if args.format == "table":
        print(api.samples(args.results, args.result_id, args.top))
        return 0
    from clipbench.results.samples import sample_rows

    print(render(sample_rows(args.results, args.result_id), args.format))
    return 0
