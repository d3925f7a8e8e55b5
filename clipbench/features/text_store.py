"""Text features of exact texts (class prompts and captions), cached on disk and verified on every read.

The one text cache: zero-shot classifiers (``clipbench.text_classifier``: the class prompts'
features, normalised and averaged per class) and retrieval / selection captions are both served
from here. ``text_features(model, texts)`` returns float32 [len(texts), D] embeddings, *not*
normalised (the tasks normalise, as the image store keeps raw image features). An entry is keyed
by the model's identity, the SHA-256 of the exact ordered texts, the precision and a schema
version; its ``.npz`` is written atomically with a sidecar holding size and SHA-256, checked on
read, so a damaged or truncated entry is recomputed instead of scored. Encoding is batched by
token length (``length_order``) and deterministic; the output keeps the given order. Duplicate
texts are encoded once each occurrence (no dedup: order and count are part of the key).
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

#: 2: texts are batched by token length (was: in the given order), which moves float bits
TEXT_STORE_SCHEMA = 2


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 of the ordered texts (what the cache key and the record carry)."""
    payload = json.dumps(list(texts), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def length_order(tokens: torch.Tensor) -> torch.Tensor:
    """Text indices sorted by end-of-text position (stable), so each batch holds texts of one length.

    CLIP's end-of-text token has the largest id, so ``argmax`` (first maximum) finds it; for a
    tokenizer where it does not, the order is merely less useful: the output never depends on it.
    """
    return torch.sort(tokens.argmax(dim=-1), stable=True).indices


@torch.inference_mode()
def encode_texts(model: ImageTextModel, texts: Sequence[str], batch_size: int = 256,
                 precision: str = "fp32") -> np.ndarray:
    """[N, D] float32 text embeddings (unnormalised) in the order of ``texts``.

    Texts are encoded in order of token length: the text tower stops each batch at its longest
    end-of-text token (``CLIP.encode_text``), so sorted batches skip the padding that the given
    order would run through. Embeddings go back to their text's place.
    """
    if not texts:
        raise ClipbenchError("no texts to encode")
    tokens = model.tokenize(list(texts))
    order = length_order(tokens)
    out = None
    with autocast_context(model.device, precision):
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            emb = model.encode_text(tokens[rows]).float().cpu()
            if out is None:
                out = torch.empty(len(texts), emb.shape[1])
            out[rows] = emb
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
                broken = path if isinstance(exc, CacheCorruptError) else sidecar  # JSON or field errors: the sidecar
                log.warning("cached text features damaged, recomputing: %s: %s", broken,
                            str(exc).removeprefix(f"{path}: ") or type(exc).__name__)
                sidecar.unlink(missing_ok=True)
        for stale in (path, sidecar):  # temporary files of a process killed while writing them
            remove_stale_temps(stale)
        feats = encode_texts(model, texts, batch_size, precision)
        meta = write_verified_arrays(path, features=feats)
        atomic_write_json(sidecar, {**meta, "model": model.name, "model_identity": model.identity,
                                    "texts_sha256": digest, "n_texts": len(texts), "precision": precision,
                                    "schema": TEXT_STORE_SCHEMA})
    return feats
