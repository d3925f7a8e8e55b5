"""Zero-shot classification from cached image features and a text classifier (CLIP paper, section 3.1).

Logits are 100 x (L2-normalised image features) @ (unit-norm class weights)^T, 100 being CLIP's
learned temperature cap; the argmax (and thus every metric) does not depend on that scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from clipbench.errors import ClipbenchError
from clipbench.metrics import DEFAULT_BOOTSTRAP, ClassificationResult, score_classification

LOGIT_SCALE = 100.0


def zeroshot_logits(image_features: np.ndarray | torch.Tensor, class_weights: torch.Tensor,
                    chunk: int = 65536) -> torch.Tensor:
    """[N, C] float32 logits; features are normalised here (the store keeps them raw)."""
    feats = torch.as_tensor(image_features, dtype=torch.float32)
    weights = torch.as_tensor(class_weights, dtype=torch.float32)
    if feats.ndim != 2 or weights.ndim != 2 or feats.shape[1] != weights.shape[1]:
        raise ClipbenchError(f"image features {tuple(feats.shape)} and class weights {tuple(weights.shape)} do not "
                             "share an embedding dimension (zero-shot needs projected features)")
    out = []
    for start in range(0, feats.shape[0], chunk):
        block = feats[start:start + chunk]
        out.append(LOGIT_SCALE * (block / block.norm(dim=-1, keepdim=True)) @ weights.T)
    return torch.cat(out)


def zeroshot(
    image_features: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    class_weights: torch.Tensor,
    primary_metric: str = "top1",
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    classnames: Sequence[str] | None = None,
) -> ClassificationResult:
    """Score zero-shot predictions: metrics in percent, bootstrap CI on the primary metric."""
    logits = zeroshot_logits(image_features, class_weights)
    return score_classification(logits.numpy(), labels, primary_metric, n_bootstrap, seed, classnames)
