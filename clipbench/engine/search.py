"""Image search over a folder: embed every image once, then find the nearest ones to a photo or a sentence.

``build_index(folder, model)`` embeds the images under ``folder`` into an index directory
(``<folder>/.clipbench-index`` unless told otherwise); ``search(query, index)`` ranks them by
cosine similarity to an image path or a text string.

How a rerun encodes only what is new. The index directory holds a feature store
(``features/``, the same verified, sharded ``FeatureStore`` the benchmarks use) and ``index.json``.
Images are embedded in chunks (``clipbench.engine.search_files``); ``index.json`` lists the chunks
with their store keys and files, and which of their rows are still live. A rerun stats the folder;
a chunk row stays live while its file has the recorded identity (``search_files``: the image
cache's manifest rule, path, size, mtime, ctime and inode; its content hash under ``verify``);
everything else (new files, changed files, rows of chunks whose store entry is missing or damaged)
is embedded into new chunks. A chunk with no live rows left is deleted. A search flags each hit
whose file no longer has its indexed identity.

The assembled, L2-normalised embeddings are written to ``embeddings-<sha>.npz`` (SHA-256 and
size recorded in ``index.json``, which is written last); every read re-checks the checksum.
Search is exact by default, or FAISS (``clipbench.engine.vector_search``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipbench.datasets.images import IMAGE_EXTENSIONS
from clipbench.engine.options import engine_option
from clipbench.engine.search_files import (
    INDEX_DIRNAME,
    INDEX_SCHEMA,
    MANIFEST,
    ChunkSplit,
    FileEntry,
    chunk_files,
    identify,
    read_manifest,
    resolve_index_dir,
    scan_folder,
)
from clipbench.engine.search_query import classify_query, query_image
from clipbench.engine.vector_search import BLOCK_ROWS, vector_search
from clipbench.features.extraction import FORWARD_STATS, extract_features
from clipbench.features.store import FeatureKey, FeatureStore, read_verified_arrays, write_verified_arrays
from clipbench.foundations.errors import CacheCorruptError, ClipbenchError
from clipbench.foundations.fileio import atomic_write_json, ensure_dir, file_lock
from clipbench.models.base import ImageTextModel
from clipbench.scoring.similarity import l2_normalise

log = logging.getLogger(__name__)

def _load_chunk(store: FeatureStore, chunk: dict) -> np.ndarray | None:
    """A chunk's stored features (checksums verified), or None if the store entry is gone or damaged."""
    try:
        key = FeatureKey(**chunk["key"])
        features = store.load(key)
    except (TypeError, ValueError, KeyError):
        return None
    except CacheCorruptError as exc:
        log.warning("index chunk %s is damaged and will be re-embedded: %s", chunk.get("id"), exc)
        return None
    if features is None or len(features.features) != len(chunk["files"]):
        return None
    return features.features


def _normalise(features: np.ndarray) -> np.ndarray:
    return l2_normalise(np.asarray(features, dtype=np.float32))


# --------------------------------------------------------------------------------------- building


@dataclass
class IndexReport:
    """What ``build_index`` did."""

    index_dir: Path
    folder: Path
    model: str
    n_images: int
    n_encoded: int  # images run through the image encoder in this call
    n_reused: int  # images whose embeddings came from the store
    n_removed: int  # indexed images no longer in the folder
    n_changed: int  # indexed images whose identity changed (re-encoded)


def _resolve_model(model: str | os.PathLike | ImageTextModel, device: str | None, cache_dir, offline: bool):
    if isinstance(model, ImageTextModel):
        return model if device is None else model.to(device)
    from clipbench.foundations.torch_env import default_device
    from clipbench.models import load_model

    return load_model(model, device=device or default_device(), cache_dir=cache_dir, offline=offline)


def _check_same_model(manifest: dict, model: ImageTextModel, index_dir: Path, action: str) -> None:
    if manifest.get("model_identity") == model.identity and manifest.get("preprocess_id") == model.preprocess_id:
        return
    folder = manifest.get("folder", "FOLDER")
    raise ClipbenchError(
        f"model mismatch: the index at {index_dir} was built with {manifest.get('model')!r}, but {action} uses "
        f"{model.name!r} (different weights or preprocessing); use --model {manifest.get('model')!r}, or "
        f"re-embed with `clipbench index {folder} --model {model.name} --rebuild`"
    )


def build_index(
    folder: str | os.PathLike,
    model: str | os.PathLike | ImageTextModel | None = None,
    index_dir: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    batch_size: int = 64,
    workers: int | str = 0,
    rebuild: bool = False,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
    offline: bool = False,
    verify: bool = False,
) -> IndexReport:
    """Embed every image under ``folder`` (only what is new since the last call) and write the index.

    ``model``: a spec or a loaded model; default the model the existing index was built with.
    ``rebuild`` discards an existing index (e.g. to switch models). ``verify`` hashes every file's
    bytes: an indexed image is reused only if its content hash is the recorded one.
    """
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ClipbenchError(f"image folder {folder} does not exist or is not a directory")
    index_dir = Path(index_dir).expanduser().resolve() if index_dir is not None else folder / INDEX_DIRNAME
    for name, value in (("batch_size", batch_size), ("workers", workers)):
        engine_option(name).validate(value)  # run's checks: no more workers than max_workers()
    ensure_dir(index_dir)
    with file_lock(index_dir / MANIFEST):
        old = None if rebuild or not (index_dir / MANIFEST).is_file() else read_manifest(index_dir)
        if model is None:
            if old is None:
                raise ClipbenchError(f"{folder} has no index yet: pass --model (e.g. --model ViT-B/32)")
            model = old["model"]
        if old is not None and old.get("folder") != str(folder):
            raise ClipbenchError(f"the index at {index_dir} belongs to the folder {old.get('folder')}, not {folder}; "
                                 "pass --rebuild to index this folder there instead")
        if isinstance(model, (str, os.PathLike)) and Path(model).expanduser().is_file():
            model = str(Path(model).expanduser().resolve())  # so that searches from any directory find it
        files = scan_folder(folder, exclude=[index_dir], verify=verify)
        if not files:
            raise ClipbenchError(f"no images under {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})")
        loaded = _resolve_model(model, device, cache_dir, offline)
        if old is not None:
            _check_same_model(old, loaded, index_dir, "this run")
        return _build_locked(folder, index_dir, loaded, files, old, batch_size, workers, progress, verify)


def _build_locked(folder: Path, index_dir: Path, model: ImageTextModel, files: list[FileEntry], old: dict | None,
                  batch_size: int, workers: int | str, progress: bool, verify: bool) -> IndexReport:
    store = FeatureStore(index_dir / "features")
    current = {f.path: f for f in files}
    kept: list[tuple[dict, list[int], np.ndarray]] = []  # (chunk record, live rows, features)
    covered: set[str] = set()
    old_live: dict[str, FileEntry] = {}
    for chunk in (old or {}).get("chunks", []):
        entries = [FileEntry(*row) for row in chunk["files"]]
        for r in chunk["live"]:
            old_live[entries[r].path] = entries[r]
        live = [r for r in chunk["live"] if entries[r].path in current
                and entries[r].same_file(current[entries[r].path], verify)]
        if not live:
            continue
        features = _load_chunk(store, chunk)
        if features is None:
            continue  # its live files are embedded again below
        rows = list(chunk["files"])
        for r in live:  # the file as scanned now (a touched file's new stamp), keeping a known content hash
            now = current[entries[r].path]
            rows[r] = replace(now, sha256=now.sha256 or entries[r].sha256).row()
        kept.append(({**chunk, "files": rows}, live, features))
        covered.update(entries[r].path for r in live)
    new_files = [f for f in files if f.path not in covered]
    encoded_before = FORWARD_STATS.samples
    for chunk_files_ in chunk_files(new_files):
        split = ChunkSplit(folder, chunk_files_)
        features = extract_features(model, split, store, batch_size=batch_size, workers=workers, progress=progress)
        record = {"id": split.digest, "key": asdict(features.key), "files": [f.row() for f in chunk_files_],
                  "live": list(range(len(chunk_files_)))}
        kept.append((record, record["live"], features.features))
    # rows in folder order: the manifest and the embeddings agree row for row
    rows: list[tuple[str, int, int]] = []  # (path, chunk index, row in chunk)
    for c, (chunk, live, _) in enumerate(kept):
        rows.extend((chunk["files"][r][0], c, r) for r in live)
    rows.sort()
    live_by_chunk: dict[int, list[int]] = {}
    for _, c, r in rows:
        live_by_chunk.setdefault(c, []).append(r)
    embeddings = _normalise(np.stack([kept[c][2][r] for _, c, r in rows]))
    chunks = []
    for c, (chunk, _, _) in enumerate(kept):
        chunks.append({**chunk, "live": sorted(live_by_chunk[c])})
    order = [(c, r) for _, c, r in rows]
    _write_index(index_dir, store, folder, model, chunks, order, embeddings)
    n_encoded = FORWARD_STATS.samples - encoded_before
    changed = sum(1 for p, e in old_live.items() if p in current and not e.same_file(current[p], verify))
    removed = sum(1 for p in old_live if p not in current)
    report = IndexReport(index_dir, folder, model.name, len(rows), n_encoded, len(rows) - n_encoded, removed, changed)
    log.info("indexed %s", report)
    return report


def _write_index(index_dir: Path, store: FeatureStore, folder: Path, model: ImageTextModel, chunks: list[dict],
                 order: list[tuple[int, int]], embeddings: np.ndarray) -> None:
    """Embeddings file first (named by its hash), then the manifest that points at it, then cleanup."""
    data_meta = write_verified_arrays(index_dir / ".embeddings.staging.npz", embeddings=embeddings)
    name = f"embeddings-{data_meta['sha256'][:16]}.npz"
    os.replace(index_dir / ".embeddings.staging.npz", index_dir / name)
    manifest = {
        "schema": INDEX_SCHEMA,
        "folder": str(folder),
        "model": model.name,
        "model_identity": model.identity,
        "preprocess_id": model.preprocess_id,
        "embed_dim": int(embeddings.shape[1]),
        "n_images": int(embeddings.shape[0]),
        "embeddings": {"file": name, **data_meta},
        "rows": [list(x) for x in order],
        "chunks": chunks,
    }
    atomic_write_json(index_dir / MANIFEST, manifest)
    for stale in index_dir.glob("embeddings-*.npz"):
        if stale.name != name:
            stale.unlink(missing_ok=True)
    referenced = {store.entry_dir(FeatureKey(**c["key"])) for c in chunks}
    for entry in store.entries():
        if entry.path not in referenced:
            store.clear(entry)


# --------------------------------------------------------------------------------------- searching


@dataclass(frozen=True)
class Hit:
    rank: int
    path: str  # absolute path of the image
    score: float  # cosine similarity
    changed: bool = False  # the file was changed or removed since it was indexed


@dataclass
class SearchResult:
    query: str
    kind: str  # "image" or "text"
    hits: list[Hit]
    backend: str  # "exact", "faiss-flat", "faiss-hnsw", "faiss-ivf"
    #: approximate backends only: mean recall@k against exact search, and over how many queries
    recall: float | None = None
    recall_queries: int = 0


class FolderIndex:
    """A built index, read and checksum-verified: paths, normalised embeddings and the model they came from."""

    def __init__(self, index_dir: Path, manifest: dict, embeddings: np.ndarray) -> None:
        self.index_dir = index_dir
        self.manifest = manifest
        self.embeddings = embeddings
        self.folder = Path(manifest["folder"])
        chunks = manifest["chunks"]
        self.entries = [FileEntry(*chunks[c]["files"][r]) for c, r in manifest["rows"]]
        self.paths = [str(self.folder / e.path) for e in self.entries]

    @classmethod
    def open(cls, folder_or_index: str | os.PathLike) -> FolderIndex:
        index_dir = resolve_index_dir(folder_or_index)
        manifest = read_manifest(index_dir)
        meta = manifest["embeddings"]
        try:
            arrays = read_verified_arrays(index_dir / meta["file"], meta["size"], meta["sha256"])
        except CacheCorruptError as exc:
            raise ClipbenchError(f"index embeddings are damaged ({exc}); rerun `clipbench index "
                                 f"{manifest.get('folder')}` to repair them from the feature store") from exc
        embeddings = arrays["embeddings"]
        if embeddings.shape != (manifest["n_images"], manifest["embed_dim"]) or len(manifest["rows"]) != len(embeddings):
            raise ClipbenchError(f"{index_dir}: embeddings and manifest disagree; rebuild the index")
        return cls(index_dir, manifest, embeddings)

    @property
    def model_name(self) -> str:
        return self.manifest["model"]

    def __len__(self) -> int:
        return len(self.paths)

    def load_model(self, model: str | os.PathLike | ImageTextModel | None = None, device: str | None = None,
                   cache_dir: str | os.PathLike | None = None, offline: bool = False) -> ImageTextModel:
        """The index's model (or ``model``, which must be the same weights and preprocessing)."""
        loaded = _resolve_model(self.model_name if model is None else model, device, cache_dir, offline)
        _check_same_model(self.manifest, loaded, self.index_dir, "the query")
        return loaded

    def embed_queries(self, queries: Sequence, model: ImageTextModel, kind: str = "auto") -> tuple[np.ndarray, list]:
        """Normalised query embeddings [Q, D] and each query's (label, kind)."""
        vectors, described = [], []
        for query in queries:
            which, label, payload = classify_query(query, kind)
            with torch.inference_mode():
                if which == "image":
                    pixels = model.preprocess(query_image(payload)).unsqueeze(0)
                    vec = model.encode_image(pixels.to(model.device))
                else:
                    vec = model.encode_text(model.tokenize([payload]))
            vectors.append(vec.float().cpu().numpy()[0])
            described.append((label, which))
        return _normalise(np.stack(vectors)), described

    def check_verifiable(self) -> None:
        """``verify`` compares content hashes: one line if the index has rows without one."""
        if any(e.sha256 is None for e in self.entries):
            raise ClipbenchError(f"the index at {self.index_dir} has no content hashes to verify against; run "
                                 f"`clipbench index {self.folder} --verify` first")

    def search(self, queries: Sequence, model: ImageTextModel, top: int = 5, *, kind: str = "auto",
               backend: str = "auto", approx: str | None = None, block_rows: int = BLOCK_ROWS,
               verify: bool = False) -> list[SearchResult]:
        vectors, described = self.embed_queries(queries, model, kind)
        scores, indices, info = vector_search(self.embeddings, vectors, top, backend=backend, approx=approx,
                                              block_rows=block_rows, index_dir=self.index_dir,
                                              embeddings_sha256=self.manifest["embeddings"]["sha256"])
        results = []
        for (label, which), row_s, row_i in zip(described, scores, indices, strict=True):
            hits = [Hit(rank + 1, self.paths[i], float(s), self._changed(int(i), verify))
                    for rank, (s, i) in enumerate(zip(row_s, row_i, strict=True))]
            results.append(SearchResult(label, which, hits, info["backend"], info.get("recall"),
                                        info.get("recall_queries", 0)))
        return results

    def _changed(self, row: int, verify: bool = False) -> bool:
        """Whether row's file no longer has its indexed identity (or is gone)."""
        entry = self.entries[row]
        try:
            stat = (self.folder / entry.path).stat()
            if not entry.stamp and not verify:  # a schema 1 row: size and mtime are all it knows
                return (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns)
            now = identify(self.folder, FileEntry(entry.path, stat.st_size, stat.st_mtime_ns), verify)
        except (OSError, ClipbenchError):
            return True
        return not entry.same_file(now, verify)


def search(
    query: str | os.PathLike | Image.Image | Sequence[str | os.PathLike | Image.Image],
    index: str | os.PathLike | FolderIndex,
    top: int = 5,
    *,
    model: str | os.PathLike | ImageTextModel | None = None,
    kind: str = "auto",
    backend: str = "auto",
    approx: str | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    offline: bool = False,
    block_rows: int = BLOCK_ROWS,
    verify: bool = False,
) -> SearchResult | list[SearchResult]:
    """Nearest indexed images to an image (path or PIL image) or a text; a list of queries gives a list.

    ``index``: the indexed folder, its index directory or an open ``FolderIndex``. ``model``
    defaults to the index's; another model is an error unless it has the same weights. Each hit
    says whether its file changed since indexing; ``verify`` decides that by content hash.
    """
    opened = index if isinstance(index, FolderIndex) else FolderIndex.open(index)
    single = isinstance(query, (str, os.PathLike, Image.Image))
    queries = [query] if single else list(query)
    if not queries:
        raise ClipbenchError("no query given")
    if verify:
        opened.check_verifiable()
    for q in queries:  # a missing query image or an empty text is one line before the model loads
        classify_query(q, kind)
    loaded = opened.load_model(model, device=device, cache_dir=cache_dir, offline=offline)
    results = opened.search(queries, loaded, top, kind=kind, backend=backend, approx=approx, block_rows=block_rows,
                            verify=verify)
    return results[0] if single else results
