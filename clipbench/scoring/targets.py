"""Metrics of classifiers on sets whose targets the label vector cannot hold: multi-label sets, binary
sets scored by ROC AUC, and sets with named groups of samples (regions, income groups, demographics).

``ScoredTargets`` keeps per-sample columns from which each of these metrics follows for the split
and for any resample of it (``statistic(metric)``, a ``clipbench.scoring.resample`` statistic):
the true class's rank and the predicted class (single-label), the score margin of class 1 over
class 0 (binary), the scores and positives of every class (multi-label), and the group codes of
each group variable. The zero-shot task scores through it, and the ``targets`` per-sample kind
(``clipbench.scoring.samples.targets``) stores exactly these columns, so the regression gate's
paired bootstrap recomputes the record's own metric on the same draws of both sides.

Definitions and their sources: ``clipbench.scoring.multilabel`` (AP, 11-point AP, ROC AUC) and
``clipbench.scoring.groups`` (worst group, macro F1, mean of top-1 and top-5, Jaccard).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring import groups as G
from clipbench.scoring import multilabel as M
from clipbench.scoring.resample import Draws, Statistic, interval, mean_statistic

MAP_11PT = "mean_average_precision_11pt"
MAP = "mean_average_precision"
ROC_AUC = "roc_auc"
MEAN_TOP1_TOP5 = "mean_top1_top5"
WORST_GROUP_TOP1 = "worst_group_top1"
WORST_GROUP_TOP5 = "worst_group_top5"
MACRO_F1 = "macro_f1"
JACCARD = "jaccard"
#: the metrics this module adds (``jaccard`` is a mean of per-item values: the ``outcomes`` per-sample kind)
EXTENDED_METRICS = (MAP_11PT, MAP, ROC_AUC, MEAN_TOP1_TOP5, WORST_GROUP_TOP1, WORST_GROUP_TOP5, MACRO_F1, JACCARD)
#: metrics of a multi-label split
MULTILABEL_METRICS = (MAP_11PT, MAP)


@dataclass
class ScoredTargets:
    """Per-sample outcomes of one scored split (see the module docstring)."""

    labels: np.ndarray  # int64 [N]: the label vector (the lowest positive class of a multi-label sample)
    label_rank: np.ndarray | None  # int64 [N]: 0 = the true class scored highest (single-label only)
    predicted: np.ndarray | None  # int64 [N]: the top-1 class (ties to the lower index)
    n_classes: int
    margin: np.ndarray | None = None  # float32 [N]: score of class 1 - score of class 0 (binary sets)
    scores: np.ndarray | None = None  # float32 [N, C] (multi-label sets)
    positives: np.ndarray | None = None  # bool [N, C] (multi-label sets)
    groups: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)
    group_by: str = ""  # the group variable of the worst-group metrics
    group_excluded: tuple[str, ...] = ()  # its groups that never count as the worst

    @classmethod
    def from_scores(cls, scores, labels, multilabel=None, groups=None, group_by: str = "",
                    group_excluded=()) -> ScoredTargets:
        """From a classifier's scores [N, C], the labels [N], and the split's optional multi-label
        indicators [N, C] and groups ``{variable: (codes [N], names)}``."""
        from clipbench.scoring.classification import _check, label_rank
        from clipbench.scoring.similarity import as_numpy, top_k

        scores, labels = as_numpy(scores).astype(np.float32), as_numpy(labels).astype(np.int64)
        _check(scores, labels)
        n, c = scores.shape
        groups = {k: (np.asarray(codes, np.int64), list(names)) for k, (codes, names) in (groups or {}).items()}
        for name, (codes, names) in groups.items():
            if codes.shape != (n,) or (n and (codes.min() < 0 or codes.max() >= len(names))):
                raise ClipbenchError(f"group variable {name!r} needs one code in [0, {len(names)}) per sample")
        if group_by and group_by not in groups:
            raise ClipbenchError(f"the worst-group metric groups by {group_by!r}, which the split does not have "
                                 f"(it has: {', '.join(groups) or 'no groups'})")
        if multilabel is not None:
            positives = np.asarray(multilabel, bool)
            if positives.shape != (n, c):
                raise ClipbenchError(f"multi-label targets {positives.shape} do not match the scores {(n, c)}")
            return cls(labels, None, None, c, scores=scores, positives=positives, groups=groups,
                       group_by=group_by, group_excluded=tuple(group_excluded))
        margin = (scores[:, 1] - scores[:, 0]).astype(np.float32) if c == 2 else None
        return cls(labels, label_rank(scores, labels).astype(np.int64), top_k(scores, 1, rows=4096)[:, 0], c,
                   margin=margin, groups=groups, group_by=group_by, group_excluded=tuple(group_excluded))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def multilabel(self) -> bool:
        return self.positives is not None

    def available(self) -> tuple[str, ...]:
        """The metrics these outcomes determine, in report order."""
        if self.multilabel:
            return MULTILABEL_METRICS
        out = ["top1"] + (["top5", MEAN_TOP1_TOP5] if self.n_classes >= 5 else []) + ["mean_per_class_recall",
                                                                                      MACRO_F1]
        if self.margin is not None:
            out.append(ROC_AUC)
        if self.group_by:
            out += [WORST_GROUP_TOP1] + ([WORST_GROUP_TOP5] if self.n_classes >= 5 else [])
        return tuple(out)

    def correct_at(self, k: int) -> np.ndarray:
        return self.label_rank < k

    def statistic(self, metric: str) -> Statistic:
        """``metric`` (percent) of each resample: a function of ``Draws``."""
        if metric not in self.available():
            raise ClipbenchError(f"metric {metric!r} does not apply to this split (it has: {', '.join(self.available())})")
        if metric in MULTILABEL_METRICS:
            return lambda d: M.mean_average_precision(self.scores, self.positives, d.counts, metric == MAP_11PT)
        if metric in ("top1", "top5"):
            return mean_statistic(self.correct_at(1 if metric == "top1" else 5))
        if metric == MEAN_TOP1_TOP5:
            return mean_statistic(G.mean_top1_top5(self.label_rank))
        if metric == "mean_per_class_recall":
            correct = self.correct_at(1).astype(np.float64)
            return lambda d: _recall(d, self.labels, correct, self.n_classes)
        if metric == MACRO_F1:
            return lambda d: G.macro_f1(self.labels, self.predicted, self.n_classes, d.counts)
        if metric == ROC_AUC:
            return lambda d: M.roc_auc(self.margin, self.labels == 1, d.counts)
        codes, names = self.groups[self.group_by]
        correct = self.correct_at(1 if metric == WORST_GROUP_TOP1 else 5)
        return lambda d: G.worst_group(correct, codes, names, d.counts, self.group_excluded)

    def value(self, metric: str) -> float:
        return float(self.statistic(metric)(Draws.whole(len(self)))[0])

    def metrics(self) -> dict[str, float]:
        return {m: self.value(m) for m in self.available()}

    def interval(self, metric: str, n_resamples: int, seed: int = 0) -> dict[str, float] | None:
        """The percentile bootstrap interval of ``metric`` over resampled samples (None with 0 resamples)."""
        return interval(self.statistic(metric), len(self), n_resamples, seed)

    def group_tables(self) -> dict:
        """Accuracy (top-1, and top-5 with 5 classes or more) per group of every group variable."""
        if self.multilabel or not self.groups:
            return {}
        correct = {"top1": self.correct_at(1)}
        if self.n_classes >= 5:
            correct["top5"] = self.correct_at(5)
        return G.group_tables(correct, self.groups)

    def per_class_ap(self, classnames) -> list[dict]:
        """Multi-label sets: one row per class with its positives, AP and 11-point AP (None without positives)."""
        ap, ap11 = (M.per_class_average_precision(self.scores, self.positives, e) for e in (False, True))
        support = self.positives.sum(axis=0)
        return [{"class": name, "positives": int(support[i]), MAP: None if np.isnan(ap[i]) else float(ap[i]),
                 MAP_11PT: None if np.isnan(ap11[i]) else float(ap11[i])} for i, name in enumerate(classnames)]


def _recall(d: Draws, labels: np.ndarray, correct: np.ndarray, n_classes: int) -> np.ndarray:
    from clipbench.scoring.classification import resampled_recall

    return resampled_recall(d.index, labels, correct, n_classes)
