"""`clipbench history [RESULTS] [--model M --dataset D --task T] [--plot PNG] [--format F]`: primary metric over time."""

from __future__ import annotations

import argparse
import sys

from clipbench.foundations.tables import FORMATS, render


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "history", help="each row's primary metric over time, with CIs, git commits and tags",
        description="Every record of a results.jsonl (append-only, so a history), grouped by (model, dataset, task, "
                    "variant) in time order: value, 95% CI, change against the previous run, git commit and tag.")
    p.add_argument("results", nargs="?", default="results", help="results directory or results.jsonl (default: results/)")
    p.add_argument("--model", help="only this model")
    p.add_argument("--dataset", help="only this dataset")
    p.add_argument("--task", help="only this task")
    p.add_argument("--plot", metavar="PNG", help="also write a trend plot (one line per row, CI band, tags)")
    p.add_argument("--throughput-plot", metavar="PNG",
                   help="also write accuracy against measured images/s (latest record per row)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="output format (default: table; json and csv list one object per record for scripts)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api
    from clipbench.results.history import HISTORY_COLUMNS, format_history, history_rows

    points, written = api.history(args.results, args.model, args.dataset, args.task, plot=args.plot,
                                  throughput_plot=args.throughput_plot)
    if args.format == "table":
        print(format_history(points))
    else:
        print(render(history_rows(points), args.format, columns=HISTORY_COLUMNS))
    for path in written:  # stdout stays one document under --format json|csv
        print(f"wrote {path}", file=sys.stdout if args.format == "table" else sys.stderr)
    return 0
