"""Text features of exact texts (class prompts and captions), in the verified, resumable feature store.

The one text cache: zero-shot classifiers (``clipbench.features.text_classifier``: the class prompts'
features, normalised and averaged per class) and retrieval / selection captions are both served
from here. ``text_features(model, texts)`` returns float32 [len(texts), D] embeddings, *not*
normalised (the tasks normalise, as the image store keeps raw image features).

Storage is the image features' ``FeatureStore`` (under ``Paths.text_dir / "texts"``): an entry's
key is the model's identity, its tokenizer (``ImageTextModel.tokenizer_id``), the SHA-256 of the exact ordered texts (as the "split fingerprint"),
their count, the precision, batch size and device type; its shards of ``SHARD_TEXTS`` texts are
written atomically with verified sidecars, so a killed run resumes at its first missing shard and
a damaged shard is recomputed instead of scored. Within each shard, texts are batched by token
length (``length_order``): the text tower stops each batch at its longest end-of-text token, so
sorted batches skip the padding the given order would run through. Cached and uncached encodings
batch identically, so they are equal bit for bit. Duplicate texts are encoded once each
occurrence (no dedup: order and count are part of the key).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipbench.features.extraction import autocast_context, shard_ranges
from clipbench.features.store import FeatureKey, FeatureStore
from clipbench.foundations.errors import ClipbenchError
from clipbench.models.base import ImageTextModel

if TYPE_CHECKING:  # torch loads only to encode: cached texts are served without it
    import torch

#: 3: texts live in the feature store, batched by length within shards of SHARD_TEXTS
TEXT_STORE_SCHEMA = 3
#: texts per shard: the unit of resume and of length-sorted batching
SHARD_TEXTS = 8192


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 of the ordered texts (what the cache key and the record carry)."""
    payload = json.dumps(list(texts), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def length_order(tokens: torch.Tensor) -> torch.Tensor:
    """Text indices sorted by end-of-text position (stable), so each batch holds texts of one length.

    CLIP's end-of-text token has the largest id, so ``argmax`` (first maximum) finds it; for a
    tokenizer where it does not, the order is merely less useful: the output never depends on it.
    """
    import torch

    return torch.sort(tokens.argmax(dim=-1), stable=True).indices


def _encode_chunk(model: ImageTextModel, texts: Sequence[str], batch_size: int, precision: str) -> np.ndarray:
    """[N, D] float32 embeddings of ``texts`` (one shard), batched by token length, in the given order."""
    import torch

    tokens = model.tokenize(list(texts))
    order = length_order(tokens)
    out = None
    with torch.inference_mode(), autocast_context(model.device, precision):
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            emb = model.encode_text(tokens[rows]).float().cpu()
            if out is None:
                out = torch.empty(len(texts), emb.shape[1])
            out[rows] = emb
    if not torch.isfinite(out).all():
        raise ClipbenchError(f"{model.name} produced NaN/Inf text embeddings at precision {precision}")
    return out.numpy()


def encode_texts(model: ImageTextModel, texts: Sequence[str], batch_size: int = 256,
                 precision: str = "fp32") -> np.ndarray:
    """[N, D] float32 text embeddings (unnormalised) in the order of ``texts``, without the cache."""
    if not texts:
        raise ClipbenchError("no texts to encode")
    texts = list(texts)
    return np.concatenate([_encode_chunk(model, texts[a:b], batch_size, precision)
                           for a, b in shard_ranges(0, len(texts), SHARD_TEXTS)])


def text_key(model: ImageTextModel, texts: Sequence[str], batch_size: int = 256, precision: str = "fp32") -> FeatureKey:
    return FeatureKey(model_identity=model.identity, features="text",
                      preprocess_id=f"text-v{TEXT_STORE_SCHEMA}|tokenizer={model.tokenizer_id}",
                      dataset="texts", split="texts", split_fingerprint=texts_hash(texts), n_samples=len(texts),
                      precision=precision, batch_size=batch_size, device=model.device_type)


def text_store(text_dir: str | os.PathLike) -> FeatureStore:
    return FeatureStore(Path(text_dir) / "texts")


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
    if not texts:
        raise ClipbenchError("no texts to encode")
    store, key = text_store(text_dir), text_key(model, texts, batch_size, precision)

    def fill() -> None:
        for a, b in (r for gap in store.plan(key, verify=True)[1] for r in shard_ranges(*gap, SHARD_TEXTS)):
            store.write_shard(key, a, b, _encode_chunk(model, texts[a:b], batch_size, precision),
                              about={"model": model.name})

    return store.load_or_fill(key, None, fill, what="text features").features
