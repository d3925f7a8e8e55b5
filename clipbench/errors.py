"""Errors a user can cause. The CLI turns these into one line on stderr and exit code 2.

Anything else escaping to the CLI is a bug and is reported as such (with the trace under --debug).
"""

from __future__ import annotations


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
