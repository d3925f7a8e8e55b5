"""One streamed, hash-checked HTTP download: what checkpoint and dataset downloads both use.

The bytes go to a temporary sibling of the target (``clipbench.foundations.fileio.atomic_open``) while the
digest is computed; a short transfer, a broken connection or a wrong digest raises and discards
the temporary file, so the target name only ever holds a complete file with the expected digest.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from clipbench.foundations.errors import ChecksumError, ClipbenchError
from clipbench.foundations.fileio import atomic_open
from clipbench.foundations.progress import progress_bar

CHUNK = 1 << 20
TIMEOUT_S = 60
_LABELS = {"sha256": "SHA-256", "md5": "MD5"}


def download_verified(url: str, target: Path, algorithm: str, expected: str, discarded: str = "the file was discarded") -> None:
    """Stream ``url`` to ``target`` if its ``algorithm`` digest equals ``expected``; else a one-line error.

    ``discarded`` completes the checksum error message (e.g. "... and nothing was extracted").
    """
    label = _LABELS[algorithm]
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 (http/https URLs from our tables)
    except urllib.error.HTTPError as exc:
        raise ClipbenchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ClipbenchError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from exc
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        digest = hashlib.new(algorithm, usedforsecurity=False)
        received = 0
        with atomic_open(target, "wb") as fh, progress_bar(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name, leave=False
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK)
                except (http.client.IncompleteRead, OSError) as exc:
                    raise ClipbenchError(
                        f"download of {url} was interrupted after {received} bytes ({type(exc).__name__}); "
                        f"nothing was saved, run again to retry"
                    ) from exc
                if not block:
                    break
                fh.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
            if total is not None and received != total:
                raise ClipbenchError(
                    f"download of {url} is incomplete: got {received} of {total} bytes; nothing was saved, run again"
                )
            if digest.hexdigest() != expected:
                raise ChecksumError(f"download of {url} has {label} {digest.hexdigest()}, expected {expected}; {discarded}")
