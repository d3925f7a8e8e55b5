"""Zero-shot classification from cached image features and a text classifier (CLIP paper, section 3.1).

Logits are 100 x (L2-normalised image features) @ (unit-norm class weights)^T, 100 being CLIP's
learned temperature cap (``clipbench.scoring.similarity.zeroshot_logits``, which ``clipbench
predict`` uses too); the argmax (and thus every metric) does not depend on that scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from clipbench.tasks.base import SampleTable, Task, TaskContext, TaskResult, classification_samples
from clipbench.tasks.calibration_hook import CALIBRATION_OPTIONS, validation_split, zeroshot_calibration

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
    metrics = ("top1", "top5", "mean_per_class_recall", "mean_average_precision_11pt", "mean_average_precision",
               "roc_auc", "mean_top1_top5", "worst_group_top1", "worst_group_top5", "macro_f1")
    inputs = "evaluation split; projected image features; class-prompt text features"
    uses_text = True
    summary_columns = ("top1", "top5")
    classification_view = "zero-shot"
    legacy_fields = ("per_class",)
    options = CALIBRATION_OPTIONS

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        from clipbench.features.text_classifier import prompt_hash
        from clipbench.scoring.classification import score_classification
        from clipbench.scoring.similarity import zeroshot_logits

        o = ctx.options
        split = ctx.evaluation_split(adapter)
        val, _ = validation_split(ctx, adapter, split)  # --calibration-temperature's: every rank extracts it
        feats = ctx.features(model, split) if val is None else ctx.features(model, split, also=(val,))
        prompts = adapter.class_prompts()
        weights = ctx.text_classifier(model, prompts)
        logits = zeroshot_logits(feats.features, weights)
        if _needs_targets(adapter, split):
            return _score_targets(ctx, adapter, split, logits, feats.labels, core={"prompt_hash": prompt_hash(prompts)})
        result = score_classification(logits, feats.labels, adapter.primary_metric, o.bootstrap, o.seed,
                                      adapter.classnames if o.per_class else None)
        block = {} if result.per_class is None else {"per_class": result.per_class}
        calibration, notes = zeroshot_calibration(ctx, model, adapter, split, logits, feats.labels, weights)
        block.update(calibration)
        return TaskResult(split, result.metrics, {adapter.primary_metric: result.ci95}, block=block, notes=notes,
                          samples=classification_samples(logits, feats.labels, "logits", adapter.classnames),
                          core={"prompt_hash": prompt_hash(prompts)})


def _needs_targets(adapter, split) -> bool:
    """Whether the set is scored through ``clipbench.scoring.targets``: a metric beyond top-1 and mean
    per-class recall, multi-label targets or named groups."""
    from clipbench.datasets.base import TARGET_METRICS

    return adapter.primary_metric in TARGET_METRICS or split.multilabel is not None or bool(split.sample_groups)


def _score_targets(ctx: TaskContext, adapter, split, logits, labels, core: dict) -> TaskResult:
    """Every metric the split's targets determine, the primary metric's bootstrap CI, the group tables
    (or per-class AP) in the block, and the ``targets`` per-sample table."""
    from clipbench.scoring.samples.targets import targets_meta
    from clipbench.scoring.targets import ScoredTargets

    o = ctx.options
    targets = ScoredTargets.from_scores(logits, labels, split.multilabel, split.sample_groups,
                                        getattr(adapter, "group_by", ""), getattr(adapter, "group_excluded", ()))
    metrics = targets.metrics()
    primary = adapter.primary_metric
    if primary not in metrics:
        from clipbench.foundations.errors import DataError

        raise DataError(f"{adapter.name}: its metric {primary} does not apply to split {split.split} "
                        f"(it gives: {', '.join(metrics)})")
    block: dict = {"scored_by": "clipbench.scoring.targets"}
    if targets.multilabel:
        block["per_class_ap"] = targets.per_class_ap(adapter.classnames)
        block["classes_scored"] = int(sum(r["positives"] > 0 for r in block["per_class_ap"]))
    if targets.groups:
        block["groups"] = targets.group_tables()
        if targets.group_by:
            block["group_by"], block["group_excluded"] = targets.group_by, list(targets.group_excluded)
    samples = SampleTable("targets", len(targets), {"targets": targets}, targets_meta(targets, adapter.classnames))
    return TaskResult(split, metrics, {primary: targets.interval(primary, o.bootstrap, o.seed)}, block=block,
                      samples=samples, core=core)
