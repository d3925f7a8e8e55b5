"""Top-k inner products of query vectors over an index's embeddings: exact, or with FAISS.

Exact by default: blockwise matrix products with the one top-k and tie rule of
``clipbench.scoring.similarity`` (equal scores: the lower row first). With FAISS
(``pip install 'clipbench[search]'``) ``backend="faiss"`` uses ``IndexFlatIP``, which gives the
same ranking (its hits re-ordered by the same tie rule), and ``approx="hnsw"``/``"ivf"`` an
approximate index whose recall@k against the exact search is measured on every call (on the
queries plus sampled indexed images; a returned image counts as a true neighbour when its exact
score reaches the k-th best exact score, so ties among duplicate photos are not counted as misses).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from clipbench.features.store import read_verified_arrays, write_verified_arrays
from clipbench.foundations.errors import CacheCorruptError, ClipbenchError
from clipbench.foundations.fileio import atomic_write_json
from clipbench.scoring.similarity import blockwise_top_k, top_k

log = logging.getLogger(__name__)

#: Exact search multiplies the queries by this many indexed rows at a time.
BLOCK_ROWS = 65536
#: backend="auto" switches to FAISS (IndexFlatIP, same results) from this many images, if installed.
FAISS_AUTO_MIN = 200_000
APPROX_KINDS = ("hnsw", "ivf")
BACKENDS = ("auto", "exact", "faiss")
#: Indexed images used as extra queries when measuring an approximate index's recall.
RECALL_SAMPLE = 100


def exact_search(embeddings: np.ndarray, queries: np.ndarray, k: int, block_rows: int = BLOCK_ROWS
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner products of each query over the rows, ``block_rows`` rows at a time: (scores, indices) [Q, k]."""
    k = min(k, embeddings.shape[0])
    return blockwise_top_k(np.asarray(queries, dtype=np.float32), embeddings, k, database_block=block_rows)


def _by_score(scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's hits (any order) ordered by the tie rule: descending score, equal scores by ascending index."""
    by_index = np.argsort(indices, axis=1, kind="stable")
    scores, indices = np.take_along_axis(scores, by_index, 1), np.take_along_axis(indices, by_index, 1)
    order = top_k(scores, scores.shape[1])
    return np.take_along_axis(scores, order, 1), np.take_along_axis(indices, order, 1)


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ClipbenchError("FAISS search needs the optional package faiss-cpu; install it with: "
                             "pip install 'clipbench[search]'") from exc
    return faiss


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _approx_index(faiss, kind: str, embeddings: np.ndarray):
    n, d = embeddings.shape
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(embeddings)
        return index
    nlist = max(1, min(4096, int(np.sqrt(n)), n // 39))  # FAISS wants >= 39 training points per list
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(embeddings)
    index.add(embeddings)
    index.nprobe = _ivf_nprobe(nlist)
    return index


def _ivf_nprobe(nlist: int) -> int:
    """Lists an IVF search visits: a quarter of them, at least 8 (all of them for small indexes)."""
    return min(nlist, max(8, nlist // 4))


def _cached_approx_index(faiss, kind: str, embeddings: np.ndarray, index_dir: Path | None, emb_sha: str):
    """Build (or read back, verified) the approximate index of these embeddings."""
    if index_dir is None:
        return _approx_index(faiss, kind, embeddings)
    path = index_dir / f"faiss-{kind}-{emb_sha[:16]}.npz"
    meta_path = path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        blob = read_verified_arrays(path, meta["size"], meta["sha256"])["index"]
        return faiss.deserialize_index(blob)
    except (OSError, ValueError, KeyError, TypeError, CacheCorruptError):
        pass
    index = _approx_index(faiss, kind, embeddings)
    try:
        meta = write_verified_arrays(path, index=faiss.serialize_index(index))
        atomic_write_json(meta_path, meta)
        for stale in index_dir.glob(f"faiss-{kind}-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
                stale.with_suffix(".json").unlink(missing_ok=True)
    except ClipbenchError as exc:  # a read-only index still searches, it just rebuilds next time
        log.debug("could not save the %s index: %s", kind, exc)
    return index


def vector_search(embeddings: np.ndarray, queries: np.ndarray, k: int, *, backend: str = "auto",
                  approx: str | None = None, block_rows: int = BLOCK_ROWS, index_dir: Path | None = None,
                  embeddings_sha256: str = "", recall_sample: int = RECALL_SAMPLE, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(scores, indices, info) of the top-k rows for each query; info names the backend and any recall."""
    if backend not in BACKENDS:
        raise ClipbenchError(f"unknown search backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if approx is not None and approx not in APPROX_KINDS:
        raise ClipbenchError(f"unknown approximate index {approx!r}; expected one of {', '.join(APPROX_KINDS)}")
    if approx is not None and backend == "exact":
        raise ClipbenchError("an approximate index needs the faiss backend, not --backend exact")
    if k < 1:
        raise ClipbenchError(f"--top must be positive, got {k}")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, embeddings.shape[0])
    use_faiss = backend == "faiss" or approx is not None or (
        backend == "auto" and embeddings.shape[0] >= FAISS_AUTO_MIN and faiss_available())
    if not use_faiss:
        scores, indices = exact_search(embeddings, queries, k, block_rows)
        return scores, indices, {"backend": "exact"}
    faiss = _faiss()
    if approx is None:
        index = faiss.IndexFlatIP(embeddings.shape[1])
        index.add(embeddings)
        scores, indices = index.search(queries, k)
        scores, indices = _by_score(scores, indices.astype(np.int64))
        return scores, indices, {"backend": "faiss-flat"}
    index = _cached_approx_index(faiss, approx, embeddings, index_dir, embeddings_sha256)
    if approx == "hnsw":
        index.hnsw.efSearch = max(64, 2 * k)
    else:
        index.nprobe = _ivf_nprobe(index.nlist)
    scores, indices = index.search(queries, k)
    # recall@k against exact search: the real queries plus a seeded sample of indexed images as queries
    rng = np.random.default_rng(seed)
    sample = rng.choice(embeddings.shape[0], size=min(recall_sample, embeddings.shape[0]), replace=False)
    probe = np.concatenate([queries, embeddings[np.sort(sample)]])
    _, approx_idx = index.search(probe, k)
    exact_scores, _ = exact_search(embeddings, probe, k, block_rows)
    # a returned row counts as a true neighbour if its exact score reaches the k-th exact score, so
    # that among tied rows (duplicate photos) any choice is right
    hits = []
    for query, found, kth in zip(probe, approx_idx, exact_scores[:, -1], strict=True):
        found = found[found >= 0]
        hits.append(float(np.sum(embeddings[found] @ query >= kth - 1e-6)) / k)
    keep = indices >= 0
    out_s = [s[m] for s, m in zip(scores, keep, strict=True)]
    out_i = [i[m].astype(np.int64) for i, m in zip(indices, keep, strict=True)]
    width = min(len(i) for i in out_i)
    info = {"backend": f"faiss-{approx}", "recall": float(np.mean(hits)), "recall_queries": len(probe)}
    return np.stack([s[:width] for s in out_s]), np.stack([i[:width] for i in out_i]), info
