"""`clipbench search QUERY --index DIR`: the indexed images nearest to an image path or a text."""

from __future__ import annotations

import argparse
import json
import logging

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="find the indexed images nearest to an image or a text",
        description="Rank the images of an index (built by `clipbench index`) by cosine similarity to QUERY: "
                    "an image path, or any other string as text.",
    )
    p.add_argument("query", metavar="QUERY", help="an image path or a text, e.g. 'a red leather handbag'")
    p.add_argument("--index", required=True, metavar="DIR", help="the indexed folder or its index directory")
    p.add_argument("--top", type=int, default=5, help="how many images to show (default: 5)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--text", dest="kind", action="store_const", const="text", help="QUERY is text")
    kind.add_argument("--image", dest="kind", action="store_const", const="image", help="QUERY is an image path")
    p.add_argument("--model", help="query model (default: the index's; another model is an error)")
    p.add_argument("--backend", choices=("auto", "exact", "faiss"), default="auto",
                   help="exact matrix products, or FAISS IndexFlatIP (same results; default: auto, FAISS for "
                        "very large indexes when installed)")
    p.add_argument("--approx", choices=("hnsw", "ivf"), help="approximate FAISS index; its recall@k against "
                                                             "exact search is measured and printed")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="how the hits are printed (default: table; json and csv for scripts)")
    p.add_argument("--json", action="store_true", help="deprecated: the same as --format json")
    p.add_argument("--verify", action="store_true",
                   help="flag hits whose bytes changed since indexing, by content hash (needs an index built with "
                        "--verify; default: path, size, mtime, ctime and inode decide)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--cache-dir", help="model cache directory (default: $CLIPBENCH_CACHE)")
    p.add_argument("--offline", action="store_true", help="never download; fail if the model is not cached")
    p.set_defaults(func=handler, kind="auto")


def handler(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from clipbench.api import search

    result = search(args.query, args.index, args.top, model=args.model, kind=args.kind, backend=args.backend,
                    approx=args.approx, device=args.device, cache_dir=args.cache_dir, offline=args.offline, verify=args.verify)
    if args.json:
        log.warning("--json is deprecated; use --format json")
        args.format = "json"
    if args.format == "json":
        print(json.dumps(asdict(result), indent=2))
        return 0
    if args.format == "csv":
        from clipbench.foundations.tables import render

        print(render([{**asdict(hit), "query": result.query, "kind": result.kind} for hit in result.hits], "csv"))
        return 0
    print(f"Top {len(result.hits)} for {result.kind} {result.query!r} ({result.backend}):")
    for hit in result.hits:
        note = "  (changed since indexing)" if hit.changed else ""
        print(f"  {hit.rank:>3}  {hit.score:.4f}  {hit.path}{note}")
    if result.recall is not None:
        print(f"recall@{args.top} vs exact search: {result.recall:.3f} (over {result.recall_queries} queries)")
    return 0
