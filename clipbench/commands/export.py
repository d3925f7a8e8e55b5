"""`clipbench export RESULTS --format clip_benchmark|mteb|openclip_csv --out DIR`: results in a peer's format."""

from __future__ import annotations

import argparse

from clipbench.results.export import FORMATS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write results in CLIP_benchmark's, MTEB's or open_clip's format",
        description="Write the newest record per row of RESULTS as CLIP_benchmark result JSONs (its `build` reads "
                    "them), MTEB's results folder (results/<model>/<revision>/<task>.json + model_meta.json) or "
                    "open_clip's results-table CSV (zero-shot classification). See docs/export.md.")
    p.add_argument("results", help="results directory or results.jsonl")
    p.add_argument("--format", required=True, choices=FORMATS, help="the peer's format")
    p.add_argument("--out", required=True, help="output directory (created; files in it are replaced)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    for path in api.export(args.results, args.format, args.out):
        print(f"wrote {path}")
    return 0
