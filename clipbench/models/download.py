"""Verified checkpoint files: download once, check SHA-256, reuse without the network.

A file under its final name in the cache has been verified: downloads stream into a temporary
sibling (``clipbench.foundations.fileio.atomic_open``), are hashed on the way, and are renamed into place
only when size and SHA-256 match. A small sidecar ``<file>.verified.json`` records the hash with
the file's size, mtime, ctime and inode (the data files' manifest rule), so later loads skip re-hashing a
multi-GB file; any mismatch between sidecar and file means the file is hashed again (and deleted if it is
wrong).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError, OfflineError
from clipbench.foundations.file_identity import stamp
from clipbench.foundations.fileio import atomic_write_json, file_lock, remove_stale_temps, sha256_file
from clipbench.foundations.http_download import download_verified

log = logging.getLogger(__name__)

_SIDECAR_SUFFIX = ".verified.json"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _stat_key(path: Path) -> dict[str, int]:
    """The file as the manifest rule sees it (``foundations.file_identity``): size, mtime, ctime, inode."""
    return dict(zip(("size", "mtime_ns", "ctime_ns", "inode"), stamp(path.stat()), strict=True))


def _record_verified(path: Path, sha256: str) -> None:
    atomic_write_json(_sidecar(path), {"sha256": sha256, **_stat_key(path)})


def recorded_as_verified(path: Path, sha256: str) -> bool:
    """True if the sidecar vouches for ``path`` as it is now (same hash and manifest stamp); never hashes."""
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return record == {"sha256": sha256, **_stat_key(path)}


def is_verified(path: str | os.PathLike, sha256: str) -> bool:
    """True if ``path`` exists and has ``sha256`` (trusting a matching sidecar, else hashing and recording)."""
    path = Path(path)
    if not path.is_file():
        return False
    if recorded_as_verified(path, sha256):
        return True
    log.info("verifying SHA-256 of %s", path)
    if sha256_file(path) != sha256:
        return False
    try:
        _record_verified(path, sha256)
    except ClipbenchError as exc:  # read-only cache: still usable, just hashed again next time
        log.debug("could not record verification of %s: %s", path, exc)
    return True


def _remove_bad(path: Path) -> None:
    log.warning("%s does not have the expected SHA-256; removing it", path)
    for victim in (path, _sidecar(path)):
        try:
            victim.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ClipbenchError(f"{victim} has the wrong SHA-256 and cannot be removed: {exc}") from exc


def _stream(url: str, target: Path, sha256: str) -> None:
    """Download ``url`` into ``target`` (only if its size and SHA-256 check out) and record it as verified."""
    download_verified(url, target, "sha256", sha256)
    _record_verified(target, sha256)


def _offline_message(url: str, target: Path, sha256: str, state: str) -> str:
    return (
        f"{target.name} {state} and offline mode is on; download {url} "
        f"and place it at {target} (SHA-256 {sha256})"
    )


def fetch(
    url: str,
    sha256: str,
    filename: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
) -> Path:
    """Path of a verified local copy of ``url`` in ``<cache>/checkpoints/``, downloading it if needed.

    Offline (``offline=True`` or ``CLIPBENCH_OFFLINE=1``) a missing file raises ``OfflineError``
    naming the URL and the path to place it at.
    """
    if not url.startswith(("https://", "http://")):
        raise ClipbenchError(f"cannot download {url!r}: only http(s) URLs are supported")
    paths = Paths.resolve(cache_dir=cache_dir, offline=offline)
    target = paths.checkpoints_dir / (filename or Path(url.split("?", 1)[0]).name)
    if target.is_file() and recorded_as_verified(target, sha256):
        return target  # fast path, no lock: also works on a read-only cache
    if paths.offline and not target.exists():
        raise OfflineError(_offline_message(url, target, sha256, "is not in the cache"))
    with file_lock(target):  # one downloader per file across processes; others wait, then reuse
        was_bad = False
        if target.exists():
            if is_verified(target, sha256):
                return target
            _remove_bad(target)
            was_bad = True
        if paths.offline:
            state = "had the wrong SHA-256 and was removed" if was_bad else "is not in the cache"
            raise OfflineError(_offline_message(url, target, sha256, state))
        if remove_stale_temps(target):
            log.info("removed a partial download of %s left by an interrupted run", target.name)
        log.info("downloading %s to %s", url, target)
        _stream(url, target, sha256)
    return target
