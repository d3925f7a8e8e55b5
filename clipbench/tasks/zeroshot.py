"""Zero-shot classification from cached image features and a text classifier (CLIP paper, section 3.1).

Logits are 100 x (L2-normalised image features) @ (unit-norm class weights)^T, 100 being CLIP's
learned temperature cap (``clipbench.scoring.similarity.zeroshot_logits``, which ``clipbench
predict`` uses too); the argmax (and thus every metric) does not depend on that scale.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from clipbench.tasks.base import Task, TaskContext

if TYPE_CHECKING:  # torch and numpy load when a task runs, not when the CLI builds its parser
    import numpy as np
    import torch

    from clipbench.scoring.classification import ClassificationResult

#: The bootstrap resamples default (``clipbench.scoring.classification.DEFAULT_BOOTSTRAP``; not imported to keep numpy lazy).
DEFAULT_BOOTSTRAP = 1000


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
    from clipbench.scoring.classification import score_classification
    from clipbench.scoring.similarity import zeroshot_logits

    logits = zeroshot_logits(image_features, class_weights)
    return score_classification(logits, labels, primary_metric, n_bootstrap, seed, classnames)


class ZeroShotTask(Task):
    """CLIP zero-shot classification: the dataset's prompt ensemble against its evaluation split."""

    name = "zeroshot"
    title = "Zero-shot classification"
    metrics = ("top1", "top5", "mean_per_class_recall")
    inputs = "evaluation split; projected image features; class-prompt text features"

    def run(self, ctx: TaskContext, model, adapter) -> dict | None:
        from clipbench.features.text_classifier import prompt_hash
        from clipbench.scoring.classification import score_classification
        from clipbench.scoring.similarity import zeroshot_logits

        o = ctx.options
        split = ctx.evaluation_split(adapter)
        t0 = time.perf_counter()
        feats = ctx.features(model, split)
        if feats is None:  # not rank 0 of a torchrun: rank 0 scores the task
            return None
        t1 = time.perf_counter()
        prompts = adapter.class_prompts()
        weights = ctx.text_classifier(model, prompts)
        logits = zeroshot_logits(feats.features, weights)
        result = score_classification(logits, feats.labels, adapter.primary_metric, o.bootstrap, o.seed,
                                      adapter.classnames if o.per_class else None)
        record = ctx.record(model, adapter, split, self.name, metrics=result.metrics, ci95=result.ci95,
                            prompt_hash=prompt_hash(prompts), time_extract_s=round(t1 - t0, 4),
                            time_task_s=round(time.perf_counter() - t1, 4))
        if result.per_class is not None:
            record["per_class"] = result.per_class
        if hasattr(ctx, "log_samples"):  # a TaskContext without per-sample logs (e.g. a test double) skips it
            ctx.log_samples(record, logits, feats.labels, "logits", adapter.classnames)
        return record
