"""The manifest rule: when a file counts as unchanged without reading its bytes, and a SHA-256 cache built on it.

A file is unchanged if its (path, size, mtime_ns, ctime_ns, inode) are. An edit, a replaced or touched
file or a file moved over another changes one of them; ctime cannot be set back by tools that restore
mtimes (``rsync -t``, ``cp -p``), so an in-place rewrite that keeps size and mtime is noticed too. A
``chmod`` also changes ctime and costs one re-hash, never a wrong answer. Data files
(``clipbench.datasets.identity``) and checkpoint files (``cached_sha256``) follow this one rule; a full
read of the bytes (``--verify-data``) is the only stronger one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import atomic_write_json, sha256_file

log = logging.getLogger(__name__)


def stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    """(size, mtime_ns, ctime_ns, inode): what the manifest rule compares of one file."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def manifest_line(rel: str, st: os.stat_result) -> str:
    """One file's line of a manifest: its path as the manifest spells it and its ``stamp``, in that order."""
    return f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\n"


def cached_sha256(path: str | os.PathLike, records: str | os.PathLike, verify: bool = False) -> str:
    """SHA-256 of ``path``'s bytes, served from a record under the folder ``records`` while the file is
    unchanged by the manifest rule; ``verify`` reads every byte regardless (and renews the record).

    A record that cannot be written (a read-only cache) only means the file is hashed again next time.
    """
    real = os.path.realpath(path)
    record_path = Path(records) / f"{hashlib.sha256(real.encode()).hexdigest()}.json"
    before = list(stamp(os.stat(real)))
    if not verify:
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            if record.get("path") == real and record.get("stamp") == before:
                return str(record["sha256"])
        except (OSError, ValueError, AttributeError, KeyError):
            pass
    log.info("hashing %s", real)
    digest = sha256_file(real)
    if list(stamp(os.stat(real))) == before:  # not changed while it was read: the record may vouch for it
        try:
            atomic_write_json(record_path, {"path": real, "stamp": before, "sha256": digest})
        except (ClipbenchError, OSError) as exc:
            log.debug("could not record the SHA-256 of %s: %s", real, exc)
    return digest
