"""`clipbench download NAME [--data-root DIR] [--offline]`: fetch a dataset (or a registered model's checkpoint)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download a dataset (checksum-verified) or a model checkpoint",
        description="Fetch a registered dataset into the data root (MD5 verified before extracting, published "
        "atomically), or say what to place where when it cannot be fetched (ImageNet). A registered model name "
        "fetches its checkpoint into the cache instead.",
    )
    parser.add_argument("names", nargs="+", metavar="NAME", help="dataset or model name(s)")
    parser.add_argument("--data-root", default=None, help="dataset folder (default: $CLIPBENCH_DATA or the user data dir)")
    parser.add_argument("--cache-dir", default=None, help="model cache (default: $CLIPBENCH_CACHE or the user cache dir)")
    parser.add_argument("--offline", action="store_true", default=None, help="never use the network (also CLIPBENCH_OFFLINE=1)")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.api import download

    for name in args.names:
        print(download(name, data_root=args.data_root, cache_dir=args.cache_dir, offline=args.offline))
    return 0
