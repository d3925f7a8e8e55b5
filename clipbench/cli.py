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
import difflib
import importlib
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import NoReturn

from clipbench.foundations.config import debug_enabled, hf_offline, resolve_offline
from clipbench.foundations.errors import (
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
    "clipbench.commands.lite",
    "clipbench.commands.cache",
    "clipbench.commands.report",
    "clipbench.commands.predict",
    "clipbench.commands.train_tiny",
    "clipbench.commands.index",
    "clipbench.commands.search",
    "clipbench.commands.export",
    "clipbench.commands.publish",
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
    """Bad arguments are one line (with close matches) plus a pointer to ``--help``, exit 2."""

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = [c.strip(" '") for c in choice.group(2).split(",")]
            message += _did_you_mean(choice.group(1), options)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def _add_common(parser: argparse.ArgumentParser, top: bool) -> None:
    """--debug and -v, accepted before and after the subcommand (after it they override)."""
    default_debug, default_verbose = (False, 0) if top else (argparse.SUPPRESS, argparse.SUPPRESS)
    parser.add_argument("--debug", action="store_true", default=default_debug,
                        help="show full tracebacks (also CLIPBENCH_DEBUG=1)")
    parser.add_argument("-v", "--verbose", action="count", default=default_verbose,
                        help="more logging (-vv for debug logs)")


def _version() -> str:
    from clipbench import __version__

    return f"clipbench {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="clipbench", description="Benchmark CLIP-style image-text models.",
                             epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    _add_common(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    for sub in subparsers.choices.values():
        _add_common(sub, top=False)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, with a close match for a misspelt flag of the chosen subcommand."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = _subparser(parser, getattr(args, "command", None))
        target = sub or parser
        flags = [o for action in target._actions for o in action.option_strings]
        first = extra[0].split("=", 1)[0]
        hint = _did_you_mean(first, flags) if first.startswith("-") else ""
        target.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    return args


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


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


def check_cache_dir(args: argparse.Namespace) -> None:
    """A command that takes ``--cache-dir`` fails up front, in one line, if the cache directory (the flag,
    else $CLIPBENCH_CACHE) is a file or lies under one: not after the model loads, naming a lock inside."""
    if not hasattr(args, "cache_dir"):
        return
    from clipbench.foundations.config import resolve_cache_dir

    path = resolve_cache_dir(args.cache_dir)
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        where = "--cache-dir" if args.cache_dir is not None else "the cache directory ($CLIPBENCH_CACHE)"
        raise ClipbenchError(f"{where} {path}: {blocker} is a file, expected a directory (the model and feature "
                             "cache goes there)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    debug = args.debug or debug_enabled()
    _setup_logging(args.verbose if not debug else max(args.verbose, 2))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with _sigterm_as_interrupt():
            check_cache_dir(args)
            offline = resolve_offline(getattr(args, "offline", None))
            with hf_offline(offline):  # the Hugging Face libraries' own switches, for every command
                return int(args.func(args) or 0)
    except BrokenPipeError:  # `clipbench ... | head`: the reader left; not an error of ours
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
