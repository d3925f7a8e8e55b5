"""Metrics over groups of samples and over sets of choices: the group and fairness metrics of DataComp.

Like ``clipbench.scoring.multilabel``, each resampled function takes per-draw sample weights
``counts`` [B, N] (``clipbench.scoring.resample.Draws.counts``; one row of ones is the split
itself) and answers one value per draw, in percent.

* **Accuracy per group** and **worst-group accuracy** (``worst_group``): top-k correctness averaged
  within each group of a group variable (FMoW's and GeoDE's region, Dollar Street's income group);
  the worst group is the lowest among the groups that have samples (a group without samples is
  left out: WILDS' ``Metric.compute_group_wise`` and ``standard_group_eval``, which DataComp's
  ``eval_utils/wilds_eval.py`` and ``fairness_eval.py`` call). ``excluded`` names groups that
  never count as the worst (DataComp's FMoW leaves out the region "Other").
* **Macro F1** (``macro_f1``; iWildCam's ``F1-macro_all``): scikit-learn's ``f1_score(average=
  "macro")`` over the label set WILDS passes, ``labels=torch.unique(y_true)``: the classes present
  in the (resampled) ground truth; a class that is only ever predicted adds to the other classes'
  false positives but gets no F1 of its own.
* **Mean of top-1 and top-5** (Kinetics-700's metric in the CLIP paper): per sample
  (top-1 correct + top-5 correct) / 2, so its mean is (top1 + top5) / 2.
* **Jaccard index of chosen candidates** (WinoGAViL; DataComp's ``eval_utils/wino_eval.py``): per
  item, the model chooses the k best-scoring candidates, k = the number of gold associations
  (ties to the lower candidate index, ``clipbench.scoring.similarity.top_k``), and scores
  |chosen & gold| / |chosen | gold| (scikit-learn's binary ``jaccard_score``); the metric is the mean
  over items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _by_code(counts: np.ndarray, values: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """[B, n_codes]: per draw, the sum of ``counts x values`` over the samples of each code."""
    b = counts.shape[0]
    offset = (np.arange(b)[:, None] * n_codes + codes[None, :]).ravel()
    weights = (counts * np.asarray(values, np.float64)[None, :]).ravel()
    return np.bincount(offset, weights=weights, minlength=b * n_codes).reshape(b, n_codes)


def group_accuracy(correct: np.ndarray, codes: np.ndarray, n_groups: int, counts: np.ndarray):
    """(accuracy [B, G] in percent, NaN for a group without samples; support [B, G])."""
    codes = np.asarray(codes, np.int64)
    support = _by_code(counts, np.ones(codes.shape[0]), codes, n_groups)
    hits = _by_code(counts, correct, codes, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, 100.0 * hits / np.maximum(support, 1e-300), np.nan), support


def worst_group(correct: np.ndarray, codes: np.ndarray, names: Sequence[str], counts: np.ndarray,
                excluded: Sequence[str] = ()) -> np.ndarray:
    """The lowest accuracy (percent) among the groups with samples, per draw [B]; NaN when none has any."""
    accuracy, _ = group_accuracy(correct, codes, len(names), counts)
    keep = np.array([name not in set(excluded) for name in names], bool)
    accuracy = np.where(keep[None, :], accuracy, np.nan)
    present = ~np.isnan(accuracy)
    lowest = np.where(present, accuracy, np.inf).min(axis=1)
    return np.where(present.any(axis=1), lowest, np.nan)


def macro_f1(labels: np.ndarray, predicted: np.ndarray, n_classes: int, counts: np.ndarray) -> np.ndarray:
    """Macro F1 (percent) over the classes present in the labels of each draw [B]."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    n = labels.shape[0]
    support = _by_code(counts, np.ones(n), labels, n_classes)
    predicted_count = _by_code(counts, np.ones(n), predicted, n_classes)
    true_positive = _by_code(counts, labels == predicted, labels, n_classes)
    present = support > 0
    # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted); support > 0 for every class counted
    f1 = np.where(present, 2.0 * true_positive / np.maximum(support + predicted_count, 1e-300), 0.0)
    return 100.0 * f1.sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def mean_top1_top5(label_rank: np.ndarray) -> np.ndarray:
    """Per sample (top-1 correct + top-5 correct) / 2: 1, 0.5 or 0; its mean is the mean of top-1 and top-5."""
    label_rank = np.asarray(label_rank)
    return ((label_rank < 1).astype(np.float64) + (label_rank < 5)) / 2.0


def jaccard_of_choices(scores: Sequence[np.ndarray], gold: Sequence[np.ndarray]) -> np.ndarray:
    """Per item: the Jaccard index (0-1) of the top-k candidates by score, k = its number of gold candidates.

    ``scores[i]``: the scores of item i's candidates; ``gold[i]``: bool per candidate (a gold association).
    """
    from clipbench.scoring.similarity import top_k

    out = np.empty(len(scores), dtype=np.float64)
    for i, (s, g) in enumerate(zip(scores, gold, strict=True)):
        s, g = np.asarray(s, np.float64), np.asarray(g, bool)
        if s.shape != g.shape or not g.any():
            raise ValueError(f"item {i}: need one gold flag per candidate and at least one gold candidate")
        chosen = np.zeros(g.shape, bool)
        chosen[top_k(s[None, :], int(g.sum()))[0]] = True
        out[i] = (chosen & g).sum() / (chosen | g).sum()
    return out


def group_tables(correct: dict[str, np.ndarray], groups: dict[str, tuple[np.ndarray, list[str]]]) -> dict:
    """``{variable: [{group, n, <metric>: percent or None}, ...]}`` of the split itself, one row per group name.

    ``correct``: per-sample correctness per metric name (e.g. ``{"top1": ..., "top5": ...}``).
    """
    tables = {}
    for variable, (codes, names) in groups.items():
        codes = np.asarray(codes, np.int64)
        ones = np.ones((1, codes.shape[0]))
        rows = [{"group": name, "n": int((codes == g).sum())} for g, name in enumerate(names)]
        for metric, values in correct.items():
            accuracy, _ = group_accuracy(values, codes, len(names), ones)
            for g, row in enumerate(rows):
                row[metric] = None if np.isnan(accuracy[0, g]) else float(accuracy[0, g])
        tables[variable] = rows
    return tables
