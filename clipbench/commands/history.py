"""`clipbench history [RESULTS] [--model M --dataset D --task T] [--plot PNG]`: primary metric over time."""

from __future__ import annotations

import argparse


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
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.errors import ClipbenchError
    from clipbench.fileio import atomic_write_bytes
    from clipbench.history import format_history, history_points, throughput_points

    points = history_points(args.results, args.model, args.dataset, args.task)
    print(format_history(points))
    if args.plot:
        if not points:
            raise ClipbenchError("no records match; nothing to plot")
        from clipbench.plots import trend_plot

        atomic_write_bytes(args.plot, trend_plot(points))
        print(f"wrote {args.plot}")
    if args.throughput_plot:
        rows = [p for p in throughput_points(args.results, args.task)
                if (not args.model or p["model"] == args.model) and (not args.dataset or p["dataset"] == args.dataset)]
        if not rows:
            raise ClipbenchError("no matching record has a measured throughput (were all features cached?)")
        from clipbench.plots import throughput_plot

        atomic_write_bytes(args.throughput_plot, throughput_plot(rows))
        print(f"wrote {args.throughput_plot}")
    return 0
