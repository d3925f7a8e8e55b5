"""Zero-shot class weights (the CLIP paper's prompt ensemble), cached on disk.

Each prompt is encoded (all classes' prompts batched together, by token length), L2-normalised; a class's
embeddings are averaged and the mean renormalised. The result [C, D] is cached under
``Paths.text_dir`` keyed by model identity, the exact prompts, precision and a schema version,
with a recorded size and SHA-256 checked on every read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from clipbench.errors import CacheCorruptError, ClipbenchError
from clipbench.features.extraction import autocast_context
from clipbench.features.store import read_verified_arrays, write_verified_arrays
from clipbench.fileio import atomic_write_json, file_lock, remove_stale_temps
from clipbench.models.base import ImageTextModel

log = logging.getLogger(__name__)

TEXT_SCHEMA = 1


def prompt_hash(class_prompts: Sequence[Sequence[str]]) -> str:
    """Stable hash of the ordered per-class prompt lists (goes into cache keys and result records)."""
    payload = json.dumps([list(p) for p in class_prompts], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def length_order(tokens: torch.Tensor) -> torch.Tensor:
    """Prompt indices sorted by end-of-text position (stable), so each batch holds prompts of one length.

    CLIP's end-of-text token has the largest id, so ``argmax`` (first maximum) finds it; for a
    tokenizer where it does not, the order is merely less useful: the output never depends on it.
    """
    return torch.sort(tokens.argmax(dim=-1), stable=True).indices


@torch.inference_mode()
def build_text_classifier(
    model: ImageTextModel,
    class_prompts: Sequence[Sequence[str]],
    batch_size: int = 256,
    precision: str = "fp32",
) -> torch.Tensor:
    """[C, D] float32 unit-norm class weights on CPU.

    Prompts are encoded in order of token length: the text tower stops each batch at its longest
    end-of-text token (``CLIP.encode_text``), so sorted batches skip the padding that file order
    would run through. Embeddings go back to their prompt's place before the per-class means.
    """
    if not class_prompts or any(len(p) == 0 for p in class_prompts):
        raise ClipbenchError("every class needs at least one prompt")
    flat = [p for prompts in class_prompts for p in prompts]
    owner = torch.tensor([c for c, prompts in enumerate(class_prompts) for _ in prompts])
    tokens = model.tokenize(flat)
    order = length_order(tokens)
    embeddings = None
    with autocast_context(model.device, precision):
        for start in range(0, len(flat), batch_size):
            rows = order[start:start + batch_size]
            emb = model.encode_text(tokens[rows]).float().cpu()
            if embeddings is None:
                embeddings = torch.empty(len(flat), emb.shape[1])
            embeddings[rows] = emb / emb.norm(dim=-1, keepdim=True)
    if not torch.isfinite(embeddings).all():
        raise ClipbenchError(f"{model.name} produced NaN/Inf text embeddings at precision {precision}")
    sums = torch.zeros(len(class_prompts), embeddings.shape[1]).index_add_(0, owner, embeddings)
    means = sums / torch.bincount(owner, minlength=len(class_prompts)).unsqueeze(1).float()
    return means / means.norm(dim=-1, keepdim=True)


def _cache_path(text_dir: Path, model: ImageTextModel, prompts_digest: str, precision: str) -> Path:
    key = json.dumps({"model": model.identity, "prompts": prompts_digest, "precision": precision,
                      "schema": TEXT_SCHEMA}, sort_keys=True)
    return Path(text_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def text_classifier(
    model: ImageTextModel,
    class_prompts: Sequence[Sequence[str]],
    text_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    precision: str = "fp32",
) -> torch.Tensor:
    """Cached ``build_text_classifier`` (no caching when ``text_dir`` is None)."""
    if text_dir is None:
        return build_text_classifier(model, class_prompts, batch_size, precision)
    digest = prompt_hash(class_prompts)
    path = _cache_path(Path(text_dir), model, digest, precision)
    sidecar = path.with_suffix(".json")
    with file_lock(path):
        if sidecar.is_file() and path.is_file():
            try:
                meta = json.loads(sidecar.read_text(encoding="utf-8"))
                weights = read_verified_arrays(path, meta["size"], meta["sha256"])["weights"]
                if weights.shape[0] == len(class_prompts):
                    return torch.from_numpy(weights)
                raise CacheCorruptError(f"{path}: {weights.shape[0]} classes, expected {len(class_prompts)}")
            except (CacheCorruptError, ValueError, KeyError) as exc:
                broken = path if isinstance(exc, CacheCorruptError) else sidecar  # JSON or field errors: the sidecar
                log.warning("cached text classifier damaged, recomputing: %s: %s", broken,
                            str(exc).removeprefix(f"{path}: ") or type(exc).__name__)
                sidecar.unlink(missing_ok=True)
        for stale in (path, sidecar):  # temporary files of a process killed while writing them
            remove_stale_temps(stale)
        weights = build_text_classifier(model, class_prompts, batch_size, precision)
        meta = write_verified_arrays(path, weights=weights.numpy())
        atomic_write_json(sidecar, {**meta, "model": model.name, "model_identity": model.identity,
                                    "prompt_hash": digest, "n_classes": len(class_prompts), "precision": precision})
    return weights
