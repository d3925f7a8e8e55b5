"""`clipbench list models|datasets|suites|tasks`: what can be evaluated, and what is already on disk."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="list models, datasets, suites or tasks",
                              description="List registered models, datasets, built-in suites or tasks (with their options).")
    p.add_argument("what", choices=("models", "datasets", "suites", "tasks"))
    p.add_argument("--cache-dir", help="model cache, to show which checkpoints are downloaded")
    p.add_argument("--data-root", help="datasets directory, to show which datasets are present")
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
    print(format_table(rows))
    return 0


def format_table(rows: list[dict]) -> str:
    """Columns in the order of the first row's keys; lists shown comma-separated."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]

    def cell(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (list, tuple)):
            return ",".join(map(str, v))
        return str(v)

    table = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(lines)
