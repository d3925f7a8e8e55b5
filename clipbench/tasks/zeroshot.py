"""Zero-shot classification from cached image features and a text classifier (CLIP paper, section 3.1).

Logits are 100 x (L2-normalised image features) @ (unit-norm class weights)^T, 100 being CLIP's
learned temperature cap; the argmax (and thus every metric) does not depend on that scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from clipbench.foundations.errors import ClipbenchError
from clipbench.tasks.base import Task, TaskContext, TaskResult, classification_samples

if TYPE_CHECKING:  # torch and numpy load when a task runs, not when the CLI builds its parser
    import numpy as np
    import torch

    from clipbench.tasks.metrics import ClassificationResult

#: The bootstrap resamples default (``clipbench.tasks.metrics.DEFAULT_BOOTSTRAP``; not imported to keep torch lazy).
DEFAULT_BOOTSTRAP = 1000

LOGIT_SCALE = 100.0


def zeroshot_logits(image_features: np.ndarray | torch.Tensor, class_weights: np.ndarray | torch.Tensor,
                    chunk: int = 65536) -> np.ndarray:
    """[N, C] float32 logits; features are normalised here (the store keeps them raw).

    numpy, as are the class weights: a run served from the caches scores without loading torch,
    and cold and warm runs score with the same code.
    """
    import numpy as np

    from clipbench.tasks.metrics import as_numpy

    feats = as_numpy(image_features).astype(np.float32, copy=False)  # tensors too, on any device
    weights = as_numpy(class_weights).astype(np.float32, copy=False)
    if feats.ndim != 2 or weights.ndim != 2 or feats.shape[1] != weights.shape[1]:
        raise ClipbenchError(f"image features {tuple(feats.shape)} and class weights {tuple(weights.shape)} do not "
                             "share an embedding dimension (zero-shot needs projected features)")
    out = np.empty((feats.shape[0], weights.shape[0]), dtype=np.float32)
    for start in range(0, feats.shape[0], chunk):
        block = feats[start:start + chunk]
        out[start:start + chunk] = LOGIT_SCALE * (block / np.linalg.norm(block, axis=-1, keepdims=True)) @ weights.T
    return out


def zeroshot(
    image_features: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    class_weights: np.ndarray | torch.Tensor,
    primary_metric: str = "top1",
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    classnames: Sequence[str] | None = None,
) -> ClassificationResult:
    """Score zero-shot predictions: metrics in percent, bootstrap CI on the primary metric."""
    from clipbench.tasks.metrics import score_classification

    logits = zeroshot_logits(image_features, class_weights)
    return score_classification(logits, labels, primary_metric, n_bootstrap, seed, classnames)


class ZeroShotTask(Task):
    """CLIP zero-shot classification: the dataset's prompt ensemble against its evaluation split."""

    name = "zeroshot"
    title = "Zero-shot classification"
    metrics = ("top1", "top5", "mean_per_class_recall")
    inputs = "evaluation split; projected image features; class-prompt text features"
    summary_columns = ("top1", "top5")
    classification_view = "zero-shot"
    legacy_fields = ("per_class",)

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        from clipbench.features.text_classifier import prompt_hash
        from clipbench.tasks.metrics import score_classification

        o = ctx.options
        split = ctx.evaluation_split(adapter)
        feats = ctx.features(model, split)
        prompts = adapter.class_prompts()
        weights = ctx.text_classifier(model, prompts)
        logits = zeroshot_logits(feats.features, weights)
        result = score_classification(logits, feats.labels, adapter.primary_metric, o.bootstrap, o.seed,
                                      adapter.classnames if o.per_class else None)
        return TaskResult(split, result.metrics, {adapter.primary_metric: result.ci95},
                          block={} if result.per_class is None else {"per_class": result.per_class},
                          samples=classification_samples(logits, feats.labels, "logits", adapter.classnames),
                          core={"prompt_hash": prompt_hash(prompts)})
