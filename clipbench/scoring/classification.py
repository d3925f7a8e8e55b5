"""Classification metrics as the CLIP paper reports them: percentages, top-1/top-5, mean per-class recall.

Everything takes plain arrays (logits or scores [N, C], integer labels [N]) so zero-shot, k-NN and
the linear probe score identically. Confidence intervals are percentile bootstraps over test
samples from the one resampling engine (``clipbench.scoring.resample``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.resample import DEFAULT_RESAMPLES, mean_statistic, percentile_interval, resample
from clipbench.scoring.similarity import as_numpy

if TYPE_CHECKING:
    import torch

METRICS = ("top1", "top5", "mean_per_class_recall")
PRIMARY_METRICS = ("top1", "mean_per_class_recall")

#: Number of bootstrap resamples for the 95% interval unless a suite/caller asks otherwise.
DEFAULT_BOOTSTRAP = DEFAULT_RESAMPLES


def _check(scores: np.ndarray, labels: np.ndarray) -> None:
    if scores.ndim != 2 or labels.ndim != 1 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"expected scores [N, C] and labels [N], got {scores.shape} and {labels.shape}")
    if labels.size == 0:
        raise ClipbenchError("cannot score an empty split (0 samples)")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got [{labels.min()}, {labels.max()}]")
    if not np.isfinite(scores).all():
        raise ClipbenchError("scores contain NaN or Inf; refusing to compute metrics from them")


def label_rank(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Int [N]: the true class's 0-based rank, i.e. the classes scoring strictly higher plus earlier-indexed ties."""
    true_score = scores[np.arange(len(labels)), labels]
    higher = (scores > true_score[:, None]).sum(axis=1)
    ties_before = ((scores == true_score[:, None]) & (np.arange(scores.shape[1])[None, :] < labels[:, None])).sum(axis=1)
    return higher + ties_before


def topk_correct(scores: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, k: int) -> np.ndarray:
    """Boolean [N]: whether the true label is among the ``k`` highest scores (ties broken by index)."""
    scores, labels = as_numpy(scores), as_numpy(labels).astype(np.int64)
    _check(scores, labels)
    return label_rank(scores, labels) < min(k, scores.shape[1])


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Percentage of samples whose label is in the top ``k``."""
    return float(100.0 * topk_correct(scores, labels, k).mean())


def per_class_recall(predictions: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Recall (percent) of each class, NaN for classes absent from ``labels``."""
    predictions, labels = np.asarray(predictions, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if num_classes is None:
        num_classes = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
    support = np.bincount(labels, minlength=num_classes).astype(np.float64)
    hits = np.bincount(labels[predictions == labels], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, 100.0 * hits / support, np.nan)


def mean_per_class_recall(predictions, labels, num_classes: int | None = None) -> float:
    """Mean over the classes present in ``labels`` of each class's recall (percent)."""
    return float(np.nanmean(per_class_recall(predictions, labels, num_classes)))


def classification_metrics(scores, labels) -> dict[str, float]:
    """top1, top5 (only with at least 5 classes) and mean_per_class_recall, in percent."""
    scores, labels = as_numpy(scores), as_numpy(labels).astype(np.int64)
    _check(scores, labels)
    num_classes = scores.shape[1]
    predictions = scores.argmax(axis=1)
    out = {"top1": topk_accuracy(scores, labels, 1)}
    if num_classes >= 5:
        out["top5"] = topk_accuracy(scores, labels, 5)
    out["mean_per_class_recall"] = mean_per_class_recall(predictions, labels, num_classes)
    return out


def resampled_recall(index: np.ndarray, labels: np.ndarray, correct: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean per-class recall (percent) of each resample (rows of ``index``), over the classes it contains."""
    b = index.shape[0]
    # per (resample, class): support and hits via one bincount over offset class ids
    offset = (np.arange(b)[:, None] * num_classes + labels[index]).ravel()
    support = np.bincount(offset, minlength=b * num_classes).reshape(b, num_classes)
    hits = np.bincount(offset, weights=correct[index].ravel(), minlength=b * num_classes).reshape(b, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return 100.0 * np.nanmean(recall, axis=1)


def metric_statistic(metric: str, labels: np.ndarray, correct: np.ndarray, num_classes: int):
    """The resampling statistic of a primary metric from per-sample correctness (``clipbench.scoring.resample``)."""
    if metric not in PRIMARY_METRICS:
        raise ClipbenchError(f"no bootstrap for metric {metric!r}; expected one of {', '.join(PRIMARY_METRICS)}")
    correct = np.asarray(correct, dtype=np.float64)
    if metric == "top1":
        return mean_statistic(correct)
    labels = np.asarray(labels, dtype=np.int64)
    return lambda d: resampled_recall(d.index, labels, correct, num_classes)


def bootstrap_ci(
    predictions: np.ndarray,
    labels: np.ndarray,
    metric: str,
    num_classes: int,
    n_resamples: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval (percent) of ``metric`` over resampled test sets (the one engine,
    ``clipbench.scoring.resample``): a pure function of (predictions, labels, metric, n_resamples, seed)."""
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    statistic = metric_statistic(metric, labels, predictions == labels, num_classes)
    return percentile_interval(resample(statistic, labels.shape[0], n_resamples, seed), level)


@dataclass
class ClassificationResult:
    """Scores of one task on one split: metrics (percent), the primary metric and its CI."""

    metrics: dict[str, float]
    primary_metric: str
    ci95: dict[str, float] | None
    n_samples: int
    per_class: list[dict] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def primary(self) -> float:
        return self.metrics[self.primary_metric]


def per_class_table(predictions, labels, classnames: Sequence[str]) -> list[dict]:
    """One row per class: name, support, recall (percent; None when the class has no samples)."""
    labels = np.asarray(labels, dtype=np.int64)
    recall = per_class_recall(predictions, labels, len(classnames))
    support = np.bincount(labels, minlength=len(classnames))
    return [
        {"class": name, "support": int(support[i]), "recall": None if np.isnan(recall[i]) else float(recall[i])}
        for i, name in enumerate(classnames)
    ]


def score_classification(
    scores,
    labels,
    primary_metric: str = "top1",
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    classnames: Sequence[str] | None = None,
) -> ClassificationResult:
    """All metrics, the primary metric's 95% bootstrap CI (``n_bootstrap=0`` skips it) and per-class rows."""
    if primary_metric not in PRIMARY_METRICS:
        raise ClipbenchError(f"unknown primary metric {primary_metric!r}; expected one of {', '.join(PRIMARY_METRICS)}")
    scores, labels = as_numpy(scores), as_numpy(labels).astype(np.int64)
    metrics = classification_metrics(scores, labels)
    predictions = scores.argmax(axis=1)
    ci = None
    if n_bootstrap > 0:
        low, high = bootstrap_ci(predictions, labels, primary_metric, scores.shape[1], n_bootstrap, seed)
        ci = {"low": low, "high": high}
    table = per_class_table(predictions, labels, classnames) if classnames is not None else None
    return ClassificationResult(metrics, primary_metric, ci, int(labels.shape[0]), table)
