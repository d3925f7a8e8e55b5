"""`clipbench index DIR --model M`: embed every image under DIR (only what is new) for `clipbench search`."""

from __future__ import annotations

import argparse

from clipbench.foundations.workers import workers_flag


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index",
        help="embed the images of a folder for `clipbench search`",
        description="Embed every image under DIR into an index (DIR/.clipbench-index by default). A rerun "
                    "embeds only new or changed images; removed images leave the index.",
    )
    p.add_argument("folder", metavar="DIR", help="folder of images (searched recursively)")
    p.add_argument("--model", help="model name, checkpoint path, openclip:... or hf:... "
                                   "(required for a new index; default: the index's model)")
    p.add_argument("--index-dir", help="where the index lives (default: DIR/.clipbench-index)")
    p.add_argument("--rebuild", action="store_true", help="discard the existing index (e.g. to change model)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--workers", type=workers_flag, default=0,
                   help="DataLoader worker processes: 'auto', or 0 to four per CPU, as for run (default: 0)")
    p.add_argument("--cache-dir", help="model cache directory (default: $CLIPBENCH_CACHE)")
    p.add_argument("--offline", action="store_true", help="never download; fail if the model is not cached")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verify", action="store_true",
                   help="hash every image's bytes: an indexed image is reused only if its recorded content hash "
                        "matches (the first --verify of an index built without it re-embeds every image); default: "
                        "path, size, mtime, ctime and inode decide, as for the feature cache")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.api import build_index
    report = build_index(args.folder, args.model, args.index_dir, device=args.device, batch_size=args.batch_size,
                         workers=args.workers, rebuild=args.rebuild, progress=not args.no_progress,
                         cache_dir=args.cache_dir, offline=args.offline, verify=args.verify)
    print(f"indexed {report.n_images} images of {report.folder} with {report.model}: {report.n_encoded} embedded, "
          f"{report.n_reused} reused, {report.n_changed} changed, {report.n_removed} removed -> {report.index_dir}")
    return 0
