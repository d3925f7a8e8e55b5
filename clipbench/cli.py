"""The `clipbench` command: argument parsing and error reporting only; the work is in the API.

Each subcommand lives in ``clipbench.commands.<name>`` and exposes ``add_parser(subparsers)``
which registers its arguments and sets ``func`` (a callable taking the parsed args and returning
an exit code). User errors (``ClipbenchError``) print one line and exit 2; an unexpected exception
is a bug, one line and exit 3 (never 1, which is `compare`'s "regression"); ``--debug`` or
``CLIPBENCH_DEBUG=1`` shows the full traceback instead. SIGTERM is handled like Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator

from clipbench.config import debug_enabled, hf_offline, resolve_offline
from clipbench.errors import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_REGRESSION,
    EXIT_TERMINATED,
    EXIT_USAGE,
    ClipbenchError,
    Terminated,
)

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
    "clipbench.commands.index",
    "clipbench.commands.search",
)


EPILOG = f"""exit codes:
  0    success (compare: the gate passed)
  {EXIT_REGRESSION}    compare only: a regression (a baseline row dropped by more than --max-drop, is missing,
       or is not comparable: other weights or other data)
  {EXIT_USAGE}    bad input or unusable environment (one line on stderr; compare: a value it cannot judge)
  {EXIT_BUG}    internal error, a bug in clipbench (one line; rerun with --debug for the traceback)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); completed rows are kept and the leaderboards regenerated
  {EXIT_TERMINATED}  terminated (SIGTERM); handled like Ctrl-C"""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; keep its message to one line plus usage."""


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="clipbench", description="Benchmark CLIP-style image-text models.",
                             epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks (also CLIPBENCH_DEBUG=1)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug logs)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises ``Terminated`` (a KeyboardInterrupt) so it is cleaned up alike."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or debug_enabled()
    _setup_logging(args.verbose if not debug else max(args.verbose, 2))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with _sigterm_as_interrupt():
            offline = resolve_offline(getattr(args, "offline", None))
            with hf_offline(offline):  # the Hugging Face libraries' own switches, for every command
                return int(args.func(args) or 0)
    except ClipbenchError as exc:
        if debug:
            traceback.print_exc()
        print(f"clipbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # Ctrl-C and SIGTERM (Terminated)
        if debug:
            traceback.print_exc()
        terminated = isinstance(exc, Terminated)
        print("clipbench: interrupted" + (" (SIGTERM)" if terminated else ""), file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so in one line unless asked for the trace
        if debug:
            traceback.print_exc()
        print(f"clipbench: internal error (a bug in clipbench, exit {EXIT_BUG}): {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
