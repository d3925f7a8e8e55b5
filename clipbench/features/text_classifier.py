"""Zero-shot class weights (the CLIP paper's prompt ensemble) from the text-feature store.

Each prompt is encoded (all classes' prompts batched together, by token length;
``clipbench.features.text_store``) and L2-normalised; a class's embeddings are averaged and the mean
renormalised. The prompts' features are cached in the one text store, keyed by model identity,
the exact prompts and precision, so a classifier is never a cache entry of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import numpy as np

from clipbench.features.text_store import encode_texts, text_features
from clipbench.foundations.errors import ClipbenchError
from clipbench.models.base import ImageTextModel
from clipbench.scoring.similarity import l2_normalise


def prompt_hash(class_prompts: Sequence[Sequence[str]]) -> str:
    """Stable hash of the ordered per-class prompt lists (goes into result records)."""
    payload = json.dumps([list(p) for p in class_prompts], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _flat(class_prompts: Sequence[Sequence[str]]) -> list[str]:
    if not class_prompts or any(len(p) == 0 for p in class_prompts):
        raise ClipbenchError("every class needs at least one prompt")
    return [p for prompts in class_prompts for p in prompts]


def class_weights(prompt_features, class_prompts: Sequence[Sequence[str]]) -> np.ndarray:
    """[C, D] float32 unit-norm means of each class's L2-normalised prompt features (rows in prompt order).

    numpy, so that scoring from the caches needs no torch; a class's prompts are consecutive rows.
    """
    emb = np.asarray(prompt_features, dtype=np.float32)
    counts = np.array([len(p) for p in class_prompts])
    if emb.ndim != 2 or len(emb) != counts.sum():
        raise ClipbenchError(f"{len(emb)} prompt features for {counts.sum()} prompts")
    emb = l2_normalise(emb, reject_zero=True)  # a zero prompt feature would silently score 0
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.add.reduceat(emb, starts, axis=0) / counts[:, None].astype(np.float32)
    return l2_normalise(means, reject_zero=True)


def build_text_classifier(
    model: ImageTextModel,
    class_prompts: Sequence[Sequence[str]],
    batch_size: int = 256,
    precision: str = "fp32",
) -> np.ndarray:
    """[C, D] float32 unit-norm class weights (no cache)."""
    return class_weights(encode_texts(model, _flat(class_prompts), batch_size, precision), class_prompts)


def text_classifier(
    model: ImageTextModel,
    class_prompts: Sequence[Sequence[str]],
    text_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    precision: str = "fp32",
) -> np.ndarray:
    """``build_text_classifier`` over prompt features cached in the text store (none when ``text_dir`` is None)."""
    features = text_features(model, _flat(class_prompts), text_dir, batch_size, precision)
    return class_weights(features, class_prompts)
