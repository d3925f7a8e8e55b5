"""`clipbench list models|datasets|suites|tasks`: what can be evaluated, and what is already on disk."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list models, datasets, suites or tasks",
                              description="List registered models, datasets, built-in suites or tasks (with their options).")
    p.add_argument("what", choices=("models", "datasets", "suites", "tasks"))
    p.add_argument("--cache-dir", help="model cache, to show which checkpoints are downloaded")
    p.add_argument("--data-root", help="datasets directory, to show which datasets are present")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="output format (default: table; json and csv for scripts)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    if args.what == "models":
        rows = api.list_models(cache_dir=args.cache_dir)
    elif args.what == "datasets":
        rows = api.list_datasets(data_root=args.data_root)
    elif args.what == "tasks":
        rows = api.list_tasks()
    else:
        rows = api.list_suites()
    from clipbench.foundations.tables import fmt_params, render

    if args.format == "table":  # people read "102.0 M"; json and csv keep the exact count for scripts
        rows = [{**r, "params": fmt_params(r["params"])} if "params" in r else r for r in rows]
    print(render(rows, args.format))
    return 0


def format_table(rows: list[dict]) -> str:
    """Columns in the order of the first row's keys; lists shown comma-separated."""
    from clipbench.foundations.tables import render

    return render(rows, "table")
