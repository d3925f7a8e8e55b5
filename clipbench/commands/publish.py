"""`clipbench publish RESULTS --to DIR|hf:ORG/NAME`: results as a Hugging Face dataset (folder or Hub repo)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish", help="write results as a Hugging Face dataset (a folder, or pushed to the Hub)",
        description="Records as a table (config `records`), per-sample rows as one config per kind "
                    "(`samples_<kind>`), and a dataset card (README.md) with the leaderboard and provenance; "
                    "`datasets.load_dataset(DIR, 'records')` reads it. hf:ORG/NAME pushes it with huggingface_hub "
                    "(needs a login). See docs/export.md.")
    p.add_argument("results", help="results directory or results.jsonl")
    p.add_argument("--to", required=True, help="output directory, or hf:ORG/NAME for a Hub dataset repository")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench import api

    print(f"published {args.results} to {api.publish(args.results, args.to)}")
    return 0
