"""What a split's fingerprint knows about the data itself: file manifests, content hashes, array hashes.

The feature cache is keyed on a split's fingerprint, so the fingerprint must change whenever the
pixels behind it may have changed. Two levels:

* **Manifest** (always, cheap: one ``stat`` per file): the resolved absolute root plus, per file in
  sample order, (relative path, size, mtime_ns, ctime_ns, inode). An edit, a replaced or touched
  file, a swap of two class folders (the inodes move with the files) or another copy of the tree
  (another root) changes it. ctime cannot be set back by tools that restore mtimes, so an in-place
  edit that keeps size and mtime is noticed too; a ``chmod`` also changes ctime and costs one
  re-extraction, never a wrong score.
* **Content** (opt-in ``verify_data``: reads every byte): per file (relative path, size, SHA-256).
  The key then depends on the bytes only, not on root or timestamps, so identical copies on other
  machines share cache entries and any changed byte is noticed even when size and times match.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from clipbench.foundations.errors import DataError
from clipbench.foundations.file_identity import manifest_line

_CHUNK = 1 << 20
#: threads for --verify-data content hashing (hashlib releases the GIL on large buffers)
HASH_THREADS = 8


def _relative(path: str, given: str, prefix: str) -> str:
    """``path`` relative to the root (``given``: as spelled by the caller, ``prefix``: absolute, both with a
    trailing separator), else absolute; always '/'-separated."""
    if path.startswith(given) and ".." not in path:
        rel = path[len(given):]
    else:
        absolute = os.path.abspath(path)
        rel = absolute[len(prefix):] if absolute.startswith(prefix) else absolute
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def _root_forms(root: str | os.PathLike | None, files: Sequence[str]) -> tuple[str | os.PathLike, str, str]:
    """``root`` (default: the folder ``files`` share), then it as spelled and as an absolute path, each with a
    trailing separator: what ``_relative`` strips."""
    if root is None:
        root = os.path.commonpath([os.path.abspath(f) for f in files]) if files else "."
        if files and os.path.isfile(root):
            root = os.path.dirname(root)
    return root, os.path.join(os.fspath(root), ""), os.path.join(os.path.abspath(root), "")


def relative_paths(root: str | os.PathLike | None, files: Sequence[str]) -> list[str]:
    """Each of ``files`` as the manifest names it: relative to ``root`` (default: the folder they share) where
    it lies under it, else absolute. Per-sample files show these names too (``SplitData.sample_names``)."""
    _, given, prefix = _root_forms(root, files)
    return [_relative(os.fspath(f), given, prefix) for f in files]


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _missing(path: str, exc: OSError) -> DataError:
    return DataError(f"image file {path} is missing or unreadable ({exc.strerror or exc}); expected a readable file")


def files_identity(root: str | os.PathLike | None, files: Sequence[str], verify_data: bool = False) -> dict:
    """Fingerprint inputs of ``files`` (in order) under ``root``: see the module docstring.

    Returns ``{"kind": "files", "root", "n_files", "manifest_sha256", "content_sha256"}``;
    ``content_sha256`` is None unless ``verify_data``. Files outside ``root`` enter by absolute path.
    """
    root, given, prefix = _root_forms(root, files)
    lines, rels = [], []
    for path in files:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise _missing(path, exc) from exc
        rel = _relative(path, given, prefix)
        rels.append((rel, st.st_size))
        lines.append(manifest_line(rel, st))
    manifest = hashlib.sha256("".join(lines).encode())
    content = None
    if verify_data:
        try:
            unique = list(dict.fromkeys(files))  # a file named by several items (choices) is read once
            with ThreadPoolExecutor(HASH_THREADS) as pool:
                by_file = dict(zip(unique, pool.map(_file_sha256, unique), strict=True))
            digests = [by_file[f] for f in files]
        except OSError as exc:
            raise _missing(getattr(exc, "filename", None) or "?", exc) from exc
        whole = hashlib.sha256()
        for (rel, size), digest in zip(rels, digests, strict=True):
            whole.update(f"{rel}\0{size}\0{digest}\n".encode())
        content = whole.hexdigest()
    return {"kind": "files", "root": os.path.realpath(root), "n_files": len(files),
            "manifest_sha256": manifest.hexdigest(), "content_sha256": content}


def tree_files(root: str | os.PathLike) -> list[str]:
    """Every regular file below ``root`` (hidden ones too), sorted: the data of layouts with no per-sample files."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out += [os.path.join(dirpath, f) for f in sorted(filenames)]
    return sorted(out)


def array_identity(images: np.ndarray) -> dict:
    """Fingerprint inputs of pixels already in memory: their exact bytes (shape and dtype included)."""
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(f"{images.dtype.str}{images.shape}".encode())
    digest.update(memoryview(images).cast("B"))
    return {"kind": "arrays", "root": None, "n_files": 0, "manifest_sha256": None, "content_sha256": digest.hexdigest()}


def archives_of(folder: str | os.PathLike) -> list[dict] | None:
    """The verified archives (url, md5) recorded in a downloaded dataset's completion marker, if any."""
    import json

    from clipbench.datasets.download import MARKER

    try:
        doc = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
        return [{"url": str(a["url"]), "md5": str(a["md5"])} for a in doc["archives"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
