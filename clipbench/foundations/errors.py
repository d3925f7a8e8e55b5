"""Errors a user can cause. The CLI turns these into one line on stderr and exit code 2.

Anything else escaping to the CLI is a bug and is reported as such, with its own exit code
(``EXIT_BUG``) so that CI never mistakes a crash for a regression (``EXIT_REGRESSION``).
"""

from __future__ import annotations

#: The CLI's exit codes (README, "Guarantees"; ``clipbench --help``).
EXIT_OK = 0
EXIT_REGRESSION = 1  # only `compare`: a baseline row dropped or is missing, or a row is not comparable
EXIT_USAGE = 2  # bad input or an unusable environment: one line on stderr
EXIT_BUG = 3  # an unexpected exception inside clipbench: one line, --debug for the traceback
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C); 128 + 2 as shells report it
EXIT_TERMINATED = 143  # SIGTERM; 128 + 15


class ClipbenchError(Exception):
    """Bad input or an unusable environment: the message is the whole story, no traceback needed."""


class UnknownNameError(ClipbenchError, KeyError):
    """A registry lookup failed; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ChecksumError(ClipbenchError):
    """A downloaded or cached file does not have the expected SHA-256 / MD5."""


class OfflineError(ClipbenchError):
    """A download is needed but offline mode forbids it."""


class DataError(ClipbenchError):
    """A dataset on disk is missing, incomplete or corrupt."""


class CacheCorruptError(Exception):
    """A cache entry failed verification. Internal: callers recompute it and log a warning."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the CLI's signal handler: cleanup (leaderboards, the table of completed rows)
    runs exactly as for Ctrl-C, because it is a ``KeyboardInterrupt``."""
