"""Text features of exact texts (captions), cached on disk and verified on every read.

``text_features(model, texts)`` returns float32 [len(texts), D] embeddings, *not* normalised (the
retrieval task normalises, like the image store keeps raw image features). An entry is keyed by
the model's identity, the SHA-256 of the exact ordered texts, the precision and a schema version;
its ``.npz`` is written atomically with a sidecar holding size and SHA-256, checked on read, so a
damaged or truncated entry is recomputed instead of scored. Encoding is batched and deterministic
(texts in the given order); duplicate texts are encoded once each occurrence (no dedup: order and
count are part of the key).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from clipbench.errors import CacheCorruptError, ClipbenchError
from clipbench.features.extraction import autocast_context
from clipbench.features.store import read_verified_arrays, write_verified_arrays
from clipbench.fileio import atomic_write_json, file_lock, remove_stale_temps
from clipbench.models.base import ImageTextModel

log = logging.getLogger(__name__)

TEXT_STORE_SCHEMA = 1


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 of the ordered texts (what the cache key and the record carry)."""
    payload = json.dumps(list(texts), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@torch.inference_mode()
def encode_texts(model: ImageTextModel, texts: Sequence[str], batch_size: int = 256,
                 precision: str = "fp32") -> np.ndarray:
    """[N, D] float32 text embeddings (unnormalised), computed in batches of ``batch_size``."""
    if not texts:
        raise ClipbenchError("no texts to encode")
    chunks = []
    with autocast_context(model.device, precision):
        for start in range(0, len(texts), batch_size):
            emb = model.encode_text(model.tokenize(list(texts[start:start + batch_size]))).float().cpu()
            chunks.append(emb)
    out = torch.cat(chunks)
    if not torch.isfinite(out).all():
        raise ClipbenchError(f"{model.name} produced NaN/Inf text embeddings at precision {precision}")
    return out.numpy()


def text_cache_path(text_dir: str | os.PathLike, model: ImageTextModel, digest: str, precision: str) -> Path:
    key = json.dumps({"kind": "texts", "model": model.identity, "texts": digest, "precision": precision,
                      "schema": TEXT_STORE_SCHEMA}, sort_keys=True)
    return Path(text_dir) / "texts" / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def text_features(
    model: ImageTextModel,
    texts: Sequence[str],
    text_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    precision: str = "fp32",
) -> np.ndarray:
    """Cached ``encode_texts`` (no caching when ``text_dir`` is None)."""
    texts = list(texts)
    if text_dir is None:
        return encode_texts(model, texts, batch_size, precision)
    digest = texts_hash(texts)
    path = text_cache_path(text_dir, model, digest, precision)
    sidecar = path.with_suffix(".json")
    with file_lock(path):
        if sidecar.is_file() and path.is_file():
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8"))
                feats = read_verified_arrays(path, meta["size"], meta["sha256"])["features"]
                if feats.shape[0] == len(texts) and feats.dtype == np.float32:
                    return feats
                raise CacheCorruptError(f"{path}: {feats.shape[0]} rows of {feats.dtype}, expected {len(texts)} float32")
            except (CacheCorruptError, ValueError, KeyError) as exc:
                log.warning("cached text features damaged, recomputing: %s", exc)
                sidecar.unlink(missing_ok=True)
        for stale in (path, sidecar):  # temporary files of a process killed while writing them
            remove_stale_temps(stale)
        feats = encode_texts(model, texts, batch_size, precision)
        meta = write_verified_arrays(path, features=feats)
        atomic_write_json(sidecar, {**meta, "model": model.name, "model_identity": model.identity,
                                    "texts_sha256": digest, "n_texts": len(texts), "precision": precision,
                                    "schema": TEXT_STORE_SCHEMA})
    return feats
