"""The files of an image search index: the folder's images, the chunks they are embedded in, the manifest.

Each file's identity is the image cache's manifest rule (``clipbench.datasets.identity.files_identity``):
a *stamp* over (relative path, size, mtime_ns, ctime_ns, inode), so a file replaced by bytes of the
same size with its mtime restored (``cp -p``, ``rsync -t``) still differs (its ctime moved), plus,
under ``--verify``, the SHA-256 of its bytes, which then decides alone.

Images are embedded in *chunks*: each chunk is a ``FileSplit`` of some files whose split name and
subset spec carry a hash of its files' identities, so its store key changes whenever any of its
files does. Chunk boundaries among new files are content-defined (a file ends
a chunk when a hash of its path says so), so after an interrupted run, or after removing an
unreadable image, the chunks that were already complete have the same keys and come from the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from clipbench.datasets.identity import HASH_THREADS, files_identity
from clipbench.datasets.images import FileSplit, is_image_file
from clipbench.foundations.errors import ClipbenchError

INDEX_DIRNAME = ".clipbench-index"
MANIFEST = "index.json"
#: 2: file rows carry the manifest stamp (ctime, inode) and, under --verify, a content hash.
#: Schema 1 indexes stay readable: their rows are compared on size and mtime, and re-embedded once.
INDEX_SCHEMA = 2
READABLE_SCHEMAS = (1, 2)
DATASET_NAME = "folder-index"
#: Content-defined chunking of new files: on average this many per chunk, never more than CHUNK_MAX.
CHUNK_AVG = 256
CHUNK_MAX = 2048


@dataclass(frozen=True)
class FileEntry:
    """One image file of the folder as the index saw it."""

    path: str  # relative to the folder, '/'-separated
    size: int
    mtime_ns: int
    stamp: str = ""  # files_identity's manifest hash of this one file ("" in schema 1 indexes)
    sha256: str | None = None  # files_identity's content hash, once --verify has read the file

    def row(self) -> list:
        return [self.path, self.size, self.mtime_ns, self.stamp, self.sha256]

    def same_file(self, current: FileEntry, verify: bool) -> bool:
        """Whether ``current`` (this path as scanned now) is still the file indexed as ``self``: equal
        content hashes under ``verify``, else equal stamps (a schema 1 row has none: it never matches)."""
        if verify:
            return self.sha256 is not None and self.sha256 == current.sha256
        return bool(self.stamp) and self.stamp == current.stamp


def identify(folder: Path, entry: FileEntry, verify: bool) -> FileEntry:
    """``entry`` (path, size, mtime) with its stamp, and its content hash under ``verify``."""
    ident = files_identity(folder, [str(folder / entry.path)], verify_data=verify)
    return replace(entry, stamp=ident["manifest_sha256"], sha256=ident["content_sha256"])


def scan_folder(folder: Path, exclude: Iterable[Path] = (), verify: bool = False) -> list[FileEntry]:
    """Image files under ``folder`` (hidden files and folders, and ``exclude`` folders, skipped), sorted,
    each identified (``identify``; ``verify`` reads every byte)."""
    excluded = {Path(p).resolve() for p in exclude}
    entries = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (root_path / d).resolve() not in excluded)
        for name in files:
            if name.startswith(".") or not is_image_file(name):
                continue
            path = root_path / name
            try:
                stat = path.stat()
            except OSError as exc:
                raise ClipbenchError(f"cannot read image file {path}: {exc.strerror or exc}") from exc
            entries.append(FileEntry(path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    entries.sort(key=lambda e: e.path)
    with ThreadPoolExecutor(HASH_THREADS if verify else 1) as pool:
        return list(pool.map(lambda e: identify(folder, e, verify), entries))


def _files_digest(files: Sequence[FileEntry]) -> str:
    payload = json.dumps([f.row() for f in files], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class ChunkSplit(FileSplit):
    """Some image files of the folder as a split; its name and subset spec hash the files' identities."""

    def __init__(self, folder: Path, files: Sequence[FileEntry]) -> None:
        digest = _files_digest(files)
        super().__init__(DATASET_NAME, f"chunk-{digest[:16]}", [folder / f.path for f in files], [0] * len(files))
        self.subset_spec = f"files:{digest}"
        self.digest = digest


def _chunk_boundary(path: str) -> bool:
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "big") % CHUNK_AVG == 0


def chunk_files(files: Sequence[FileEntry]) -> list[list[FileEntry]]:
    """Content-defined chunks of sorted files: removing or adding one file changes only its own chunk."""
    chunks: list[list[FileEntry]] = []
    current: list[FileEntry] = []
    for entry in files:
        current.append(entry)
        if _chunk_boundary(entry.path) or len(current) >= CHUNK_MAX:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


def resolve_index_dir(folder_or_index: str | os.PathLike) -> Path:
    """An index directory, or a folder holding one in ``.clipbench-index``; error if neither has an index."""
    path = Path(folder_or_index).expanduser()
    for candidate in (path, path / INDEX_DIRNAME):
        if (candidate / MANIFEST).is_file():
            return candidate
    if not path.exists():
        raise ClipbenchError(f"no index at {path}: the path does not exist")
    raise ClipbenchError(f"no index at {path} (no {MANIFEST} in it or in {path / INDEX_DIRNAME}); "
                         f"build one with `clipbench index FOLDER --model MODEL`")


def read_manifest(index_dir: Path) -> dict:
    path = index_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ClipbenchError(f"index manifest {path} is unreadable ({type(exc).__name__}); rebuild the index "
                             "with `clipbench index FOLDER --rebuild`") from exc
    if not isinstance(manifest, dict) or manifest.get("schema") not in READABLE_SCHEMAS:
        raise ClipbenchError(f"{path} is not a clipbench index of schema {INDEX_SCHEMA}; rebuild it with "
                             "`clipbench index FOLDER --rebuild`")
    return manifest
