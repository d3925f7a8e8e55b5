"""`clipbench download NAME [--data-root DIR] [--offline]`: fetch a dataset (or a registered model's checkpoint)."""

from __future__ import annotations

import argparse

from clipbench.errors import UnknownNameError


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


def download(name: str, data_root=None, cache_dir=None, offline=None) -> str:
    """Fetch one dataset or model; returns a line saying where it is."""
    from clipbench.config import Paths
    from clipbench.datasets import DATASETS, download_dataset

    paths = Paths.resolve(cache_dir=cache_dir, data_root=data_root, offline=offline)
    if name in DATASETS:
        target = download_dataset(DATASETS.get(name), paths.data_root, offline=paths.offline)
        return f"{DATASETS.canonical(name)}: {target if target is not None else 'bundled, nothing to download'}"
    from clipbench.models import MODELS
    from clipbench.models.loading import checkpoint_path

    if name in MODELS:
        info = MODELS.get(name)
        return f"{info.name}: {checkpoint_path(info, cache_dir=paths.cache_dir, offline=paths.offline)}"
    raise UnknownNameError(_unknown_message(name, DATASETS.names(), MODELS.names()))


def _unknown_message(name: str, datasets: list[str], models: list[str]) -> str:
    """`download` takes datasets and models alike, so suggest the closest names of both."""
    import difflib

    norm = {n.lower().replace("-", "").replace("_", "").replace("/", ""): n for n in [*datasets, *models]}
    wanted = name.lower().replace("-", "").replace("_", "").replace("/", "")
    close = [norm[k] for k in difflib.get_close_matches(wanted, list(norm), n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown dataset or model {name!r}{hint} (datasets: `clipbench list datasets`, "
            f"models: `clipbench list models`)")


def handler(args: argparse.Namespace) -> int:
    for name in args.names:
        print(download(name, data_root=args.data_root, cache_dir=args.cache_dir, offline=args.offline))
    return 0
