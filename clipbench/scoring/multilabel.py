"""Ranking metrics of scores against binary targets: average precision (plain and 11-point) and ROC AUC.

Every function takes per-draw sample weights ``counts`` [B, N] (how often a resample drew each
sample; one row of ones is the split itself, ``clipbench.scoring.resample.Draws``), so a point
value, a bootstrap interval and a paired test are one computation. A sample drawn twice counts
twice, exactly as if the split held it twice.

* **Average precision** of one class (``average_precision``): equal scores form one threshold
  (scikit-learn's ``average_precision_score``), and AP = sum over thresholds of
  (R_t - R_{t-1}) x P_t. Without ties this is CLIP_benchmark's VOC mAP (its
  ``average_precision_per_class``: the mean over positives of the precision at their rank).
* **11-point interpolated AP** (``average_precision_11pt``; PASCAL VOC 2007's devkit, the CLIP
  paper's metric for VOC2007): the mean over r = 0, 0.1, ..., 1 of the highest precision at any
  threshold whose recall is at least r (0 when none). Recall >= r is compared exactly
  (10 x TP >= i x P), not as floats (the devkit's ``rec >= 0.3`` misses a recall of exactly 3/10).
* **A class with no positives** has no AP (precision-recall is undefined): it is left out of the
  mean over classes (``mean_over_classes``), and a split or resample with none is NaN.
  scikit-learn and CLIP_benchmark count such a class as AP 0; on a full VOC2007 test split every
  class has positives and the definitions agree.
* **ROC AUC** (``roc_auc``; scikit-learn's ``roc_auc_score``): the probability that a positive
  scores above a negative, ties counting one half; NaN without a positive or a negative.
"""

from __future__ import annotations

import numpy as np

#: recall levels of the 11-point interpolated AP, as tenths
ELEVEN_POINTS = np.arange(11)


def _threshold_groups(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, group): samples by descending score, and the threshold (distinct score) each one falls in."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    group = np.concatenate([[0], np.cumsum(ranked[1:] != ranked[:-1])])
    return order, group


def _weighted_by_group(counts: np.ndarray, values: np.ndarray, order: np.ndarray, group: np.ndarray) -> np.ndarray:
    """[B, thresholds]: per draw, the summed ``counts x values`` of the samples at each threshold."""
    b, n_groups = counts.shape[0], int(group[-1]) + 1
    weighted = counts[:, order] * values[order][None, :]
    offset = (np.arange(b)[:, None] * n_groups + group[None, :]).ravel()
    return np.bincount(offset, weights=weighted.ravel(), minlength=b * n_groups).reshape(b, n_groups)


def _precision_recall(scores: np.ndarray, positive: np.ndarray, counts: np.ndarray):
    """(tp, precision, positives) at each threshold [B, T] per draw: cumulative true positives, the
    precision there and each draw's number of positives [B, 1]."""
    order, group = _threshold_groups(scores)
    pos = positive.astype(np.float64)
    tp = np.cumsum(_weighted_by_group(counts, pos, order, group), axis=1)
    fp = np.cumsum(_weighted_by_group(counts, 1.0 - pos, order, group), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
    return tp, precision, tp[:, -1:]


def average_precision(scores: np.ndarray, positive: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AP (0-1) of one class per draw [B]: scores [N], positive bool [N], counts [B, N]; NaN without positives."""
    tp, precision, n_pos = _precision_recall(np.asarray(scores), np.asarray(positive, bool), counts)
    gained = np.diff(tp, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pos[:, 0] > 0, (gained * precision).sum(axis=1) / n_pos[:, 0], np.nan)


def average_precision_11pt(scores: np.ndarray, positive: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """11-point interpolated AP (0-1) of one class per draw [B]; NaN without positives."""
    tp, precision, n_pos = _precision_recall(np.asarray(scores), np.asarray(positive, bool), counts)
    # the best precision at this threshold or any later one (recall only grows with the threshold index)
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # the first threshold reaching recall i/10 (exact on integral counts: 10 TP >= i P); recall only grows, so
    # it is the number of thresholds below it [B, 11]
    first = (10.0 * tp[:, :, None] < ELEVEN_POINTS[None, None, :] * n_pos[:, :, None]).sum(axis=1)
    last = tp.shape[1] - 1
    best = np.take_along_axis(envelope, np.minimum(first, last), axis=1)
    total = np.where(first <= last, best, 0.0).sum(axis=1)
    return np.where(n_pos[:, 0] > 0, total / len(ELEVEN_POINTS), np.nan)


def mean_over_classes(per_class: np.ndarray) -> np.ndarray:
    """Mean over classes (axis 0) of per-class values [C, B], leaving out NaN (classes without positives)."""
    present = ~np.isnan(per_class)
    total = np.where(present, per_class, 0.0).sum(axis=0)
    n = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def mean_average_precision(scores: np.ndarray, targets: np.ndarray, counts: np.ndarray,
                           eleven_point: bool = False) -> np.ndarray:
    """Mean AP (percent) over the classes with positives, per draw [B]: scores [N, C], targets bool [N, C]."""
    ap = average_precision_11pt if eleven_point else average_precision
    per_class = np.stack([ap(scores[:, c], targets[:, c], counts) for c in range(scores.shape[1])])
    return 100.0 * mean_over_classes(per_class)


def per_class_average_precision(scores: np.ndarray, targets: np.ndarray, eleven_point: bool = False) -> np.ndarray:
    """AP (percent) of each class on the split itself [C]; NaN for a class without positives."""
    ap = average_precision_11pt if eleven_point else average_precision
    ones = np.ones((1, scores.shape[0]))
    return np.array([100.0 * ap(scores[:, c], targets[:, c], ones)[0] for c in range(scores.shape[1])])


def roc_auc(scores: np.ndarray, positive: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """ROC AUC (percent) per draw [B]: P(a positive scores above a negative) + 1/2 P(tie); NaN without both."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    order, group = _threshold_groups(-scores)  # ascending scores: group 0 is the lowest
    neg = _weighted_by_group(counts, (~positive).astype(np.float64), order, group)
    pos = _weighted_by_group(counts, positive.astype(np.float64), order, group)
    below = np.cumsum(neg, axis=1) - neg  # negatives strictly below each threshold
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), 100.0 * wins / np.maximum(n_pos * n_neg, 1e-300), np.nan)
