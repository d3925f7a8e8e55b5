"""`clipbench cache list|clear`: cached features and text classifiers, with sizes."""

from __future__ import annotations

import argparse

from clipbench.foundations.tables import FORMATS


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cache", help="list or clear cached features", description="Inspect or clear the cache.")
    p.add_argument("action", choices=("list", "clear"))
    p.add_argument("--cache-dir", help="cache directory (default: $CLIPBENCH_CACHE)")
    p.add_argument("--only", choices=("features", "text", "all"), default="all", help="what to clear (default: all)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="how `list` prints (default: table; json and csv give one object per entry, sizes in bytes)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api
    from clipbench.foundations.tables import render

    if args.action == "clear":
        freed = api.clear_cache(args.cache_dir, args.only)
        print(f"freed {_size(freed)}")
        return 0
    entries = api.cache_entries(args.cache_dir)
    if args.format != "table":  # one document for scripts: exact sizes, no total line
        print(render(entries, args.format))
        return 0
    rows = [{"kind": e["kind"], "model": e["model"], "dataset": e["dataset"], "split": e["split"],
             "features": e["features"], "precision": e["precision"], "samples": e["n_samples"],
             "complete": e["complete"], "size": _size(e["size_bytes"]), "path": e["path"]} for e in entries]
    print(render(rows, "table"))
    print(f"total {_size(sum(e['size_bytes'] for e in entries))}")
    return 0
