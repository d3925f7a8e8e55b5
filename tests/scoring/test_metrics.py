"""Metrics against hand-computed values and a brute-force bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.classification import (
    bootstrap_ci,
    classification_metrics,
    per_class_table,
    score_classification,
    topk_accuracy,
)

# 6 samples, 5 classes; rows are scores
SCORES = np.array([
    [0.9, 0.1, 0.0, 0.0, 0.0],  # label 0: rank 1
    [0.5, 0.4, 0.3, 0.2, 0.1],  # label 1: rank 2
    [0.1, 0.2, 0.3, 0.4, 0.5],  # label 2: rank 3
    [0.0, 0.0, 0.0, 0.0, 1.0],  # label 3: rank 2 (ties with 0,1,2 broken by index -> rank 5)
    [0.2, 0.1, 0.1, 0.1, 0.9],  # label 4: rank 1
    [0.3, 0.6, 0.1, 0.0, 0.0],  # label 0: rank 2
])
LABELS = np.array([0, 1, 2, 3, 4, 0])


def test_topk_by_hand():
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(100 * 2 / 6)
    # top-2: samples 0,1,4,5 -> 4/6 ; sample 3 ties with lower-indexed classes so it ranks last
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(100 * 4 / 6)
    assert topk_accuracy(SCORES, LABELS, 3) == pytest.approx(100 * 5 / 6)
    assert topk_accuracy(SCORES, LABELS, 5) == pytest.approx(100.0)


def test_classification_metrics_by_hand():
    m = classification_metrics(SCORES, LABELS)
    # predictions: 0, 0, 4, 4, 4, 1 -> per-class recall: c0 1/2, c1 0, c2 0, c3 0, c4 1
    assert m["top1"] == pytest.approx(100 * 2 / 6)
    assert m["top5"] == pytest.approx(100.0)
    assert m["mean_per_class_recall"] == pytest.approx(100 * (0.5 + 0 + 0 + 0 + 1) / 5)


def test_top5_omitted_below_five_classes_and_absent_classes_ignored():
    scores = np.array([[2.0, 1, 0, 0], [0, 2.0, 1, 0], [0, 2.0, 1, 0]])
    labels = np.array([0, 1, 2])  # class 3 absent: not part of the mean
    m = classification_metrics(scores, labels)
    assert "top5" not in m
    assert m["mean_per_class_recall"] == pytest.approx(100 * (1 + 1 + 0) / 3)
    table = per_class_table(scores.argmax(1), labels, ["a", "b", "c", "d"])
    assert table[3] == {"class": "d", "support": 0, "recall": None}
    assert table[2] == {"class": "c", "support": 1, "recall": 0.0}


def _brute_bootstrap(pred, labels, metric, num_classes, n, seed, chunk):
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, n, chunk):
        idx_block = rng.integers(0, len(labels), size=(min(chunk, n - start), len(labels)))
        for idx in idx_block:
            p, y = pred[idx], labels[idx]
            if metric == "top1":
                values.append(100 * (p == y).mean())
            else:
                recalls = [100 * (p[y == c] == c).mean() for c in range(num_classes) if (y == c).any()]
                values.append(np.mean(recalls))
    return np.quantile(values, [0.025, 0.975])


@pytest.mark.parametrize("metric", ["top1", "mean_per_class_recall"])
def test_bootstrap_matches_loop_and_is_seeded(metric):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 50)
    pred = np.where(rng.random(50) < 0.7, labels, rng.integers(0, 4, 50))
    low, high = bootstrap_ci(pred, labels, metric, 4, n_resamples=200, seed=5)
    ref = _brute_bootstrap(pred, labels, metric, 4, 200, 5, 64)
    assert (low, high) == pytest.approx(tuple(ref))
    assert bootstrap_ci(pred, labels, metric, 4, n_resamples=200, seed=5) == (low, high)
    assert low < 100 * (pred == labels).mean() < high


def test_score_classification_and_errors():
    res = score_classification(SCORES, LABELS, "mean_per_class_recall", n_bootstrap=100, seed=0)
    assert res.primary == pytest.approx(30.0)
    assert res.ci95["low"] <= res.ci95["high"]
    assert res.n_samples == 6
    with pytest.raises(ClipbenchError, match="unknown primary metric"):
        score_classification(SCORES, LABELS, "top3")
    bad = SCORES.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ClipbenchError, match="NaN"):
        classification_metrics(bad, LABELS)
