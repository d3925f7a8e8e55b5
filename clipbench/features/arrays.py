"""Verified array files: the one primitive that feature shards, text classifiers and search indexes use.

An ``.npz`` is written atomically and its size and SHA-256 are returned for the caller's sidecar;
a read checks both before parsing, so a truncated or corrupted file is a ``CacheCorruptError``
(recomputed by the caller), never wrong numbers.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from clipbench.foundations.errors import CacheCorruptError
from clipbench.foundations.fileio import atomic_write_bytes, sha256_bytes


def write_verified_arrays(path: Path, **arrays: np.ndarray) -> dict:
    """Atomically write ``arrays`` as an .npz, then its sidecar ``.json`` with size and SHA-256."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    meta = {"size": len(data), "sha256": sha256_bytes(data)}
    return meta


def read_verified_arrays(path: Path, size: int, sha256: str) -> dict[str, np.ndarray]:
    """Read an .npz whose size and SHA-256 must match; anything else raises ``CacheCorruptError``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CacheCorruptError(f"{path}: unreadable ({exc})") from exc
    if len(data) != size:
        raise CacheCorruptError(f"{path}: {len(data)} bytes, expected {size} (truncated?)")
    if sha256_bytes(data) != sha256:
        raise CacheCorruptError(f"{path}: SHA-256 mismatch (corrupted)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError) as exc:  # pragma: no cover - checksum passed, format broken
        raise CacheCorruptError(f"{path}: not a readable array file ({exc})") from exc
