"""The `clipbench` command: argument parsing and error reporting only; the work is in the API.

Each subcommand lives in ``clipbench.commands.<name>`` and exposes ``add_parser(subparsers)``
which registers its arguments and sets ``func`` (a callable taking the parsed args and returning
an exit code). User errors (``ClipbenchError``) print one line and exit 2; ``--debug`` or
``CLIPBENCH_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from clipbench.config import debug_enabled
from clipbench.errors import ClipbenchError

log = logging.getLogger("clipbench")

#: Explicit list of subcommand modules, in the order `clipbench --help` shows them.
COMMAND_MODULES: tuple[str, ...] = (
    "clipbench.commands.download",
    "clipbench.commands.run",
    "clipbench.commands.list",
    "clipbench.commands.compare",
    "clipbench.commands.samples",
    "clipbench.commands.history",
    "clipbench.commands.cache",
    "clipbench.commands.report",
    "clipbench.commands.predict",
    "clipbench.commands.train_tiny",
)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; keep its message to one line plus usage."""


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="clipbench", description="Benchmark CLIP-style image-text models.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks (also CLIPBENCH_DEBUG=1)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug logs)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or debug_enabled()
    _setup_logging(args.verbose if not debug else max(args.verbose, 2))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ClipbenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"clipbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clipbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line unless asked for the trace
        if debug:
            traceback.print_exc()
        else:
            print(
                f"clipbench: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
