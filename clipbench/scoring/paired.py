"""Paired tests of new against baseline on the same samples: what the regression gate decides with.

* accuracy-type outcomes (``top1``, ``top5``, selection ``accuracy``, image retrieval's
  ``recall_at_k``): exact McNemar test, i.e. a two-sided binomial test with p = 1/2 on the
  discordant pairs (b samples right before and wrong now, c the reverse):
  p = min(1, 2 P[X <= min(b, c)]), X ~ Binomial(b + c, 1/2); p = 1 when b + c = 0;
* other metrics (``mean_per_class_recall``, ``map_at_r``, retrieval's ``mean_recall`` and
  recalls): paired bootstrap of the difference, the same resampled units on both sides (for
  text-image retrieval the same images, each drawn with all its captions), two-sided p-value by
  the shift method (``clipbench.scoring.resample.paired``).

Either way the 95% interval of the difference is the percentile interval of the paired bootstrap,
drawn by the one resampling engine, so a record's own interval and the gate's test see the same draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.classification import resampled_recall
from clipbench.scoring.resample import Draws, paired

#: Resamples of a paired test unless the caller asks otherwise (``clipbench compare --resamples``).
PAIRED_RESAMPLES = 2000
#: Metrics judged by McNemar on per-sample correctness, with the k of their top-k.
ACCURACY_METRICS = {"top1": 1, "top5": 5}


def _log_binom_pmf(k: int, n: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2.0)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n, m = b + c, min(b, c)
    if n == 0 or b == c:
        return 1.0
    terms = [_log_binom_pmf(k, n) for k in range(m + 1)]
    top = max(terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in terms)
    return min(1.0, 2.0 * tail)


def discordant(base_correct: np.ndarray, new_correct: np.ndarray) -> tuple[int, int]:
    """(b, c): samples right in the baseline and wrong now, and wrong in the baseline and right now."""
    base_correct, new_correct = np.asarray(base_correct, bool), np.asarray(new_correct, bool)
    return int((base_correct & ~new_correct).sum()), int((~base_correct & new_correct).sum())


def metric_value(metric: str, labels: np.ndarray, correct: np.ndarray, num_classes: int) -> float:
    """``metric`` (percent) of one whole split from its per-sample correctness."""
    if metric in ACCURACY_METRICS:
        return float(100.0 * correct.mean())
    if metric == "mean_per_class_recall":
        index = Draws.whole(len(labels)).index
        return float(resampled_recall(index, labels, correct.astype(np.float64), num_classes)[0])
    raise ClipbenchError(f"no paired test for metric {metric!r}")


@dataclass(frozen=True)
class PairedResult:
    """new - baseline of one metric on the same samples (points), its 95% interval and two-sided p-value."""

    metric: str
    test: str  # "mcnemar" or "bootstrap"
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    discordant: tuple[int, int] | None = None  # (b, c) for McNemar


def paired_bootstrap(metric: str, labels: np.ndarray, base_correct: np.ndarray, new_correct: np.ndarray,
                     num_classes: int | None = None, n_resamples: int = PAIRED_RESAMPLES, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of new - baseline ``metric`` over the same resampled samples (points).

    ``*_correct`` are per-sample booleans for the metric (top-k correctness).
    """
    labels = np.asarray(labels, dtype=np.int64)
    cb, cn = np.asarray(base_correct, np.float64), np.asarray(new_correct, np.float64)
    n = labels.shape[0]
    if n == 0 or cb.shape != (n,) or cn.shape != (n,):
        raise ValueError("labels and both correctness vectors must be non-empty and of one length")
    num_classes = num_classes or int(labels.max()) + 1
    d = metric_value(metric, labels, cn, num_classes) - metric_value(metric, labels, cb, num_classes)
    if metric in ACCURACY_METRICS:
        def difference(draws: Draws) -> np.ndarray:
            return 100.0 * (cn - cb)[draws.index].mean(axis=1)
    else:
        def difference(draws: Draws) -> np.ndarray:
            return (resampled_recall(draws.index, labels, cn, num_classes)
                    - resampled_recall(draws.index, labels, cb, num_classes))
    return paired(difference, d, n, n_resamples, seed, level)


def paired_bootstrap_units(base_metric, new_metric, n_units: int, n_resamples: int = PAIRED_RESAMPLES,
                           seed: int = 0, level: float = 0.95) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of ``new_metric - base_metric`` over the same resampled units (points).

    For metrics that are not a mean over samples (retrieval: images drawn with all their captions).
    ``*_metric(counts)`` maps draw counts [B, n_units] (how often each unit is drawn; all ones is
    the split itself) to the metric of each draw [B].
    """
    ones = Draws.whole(n_units).counts
    d = float(new_metric(ones)[0] - base_metric(ones)[0])
    return paired(lambda draws: new_metric(draws.counts) - base_metric(draws.counts), d, n_units, n_resamples,
                  seed, level)


def paired_outcomes(metric: str, base: np.ndarray, new: np.ndarray, n_resamples: int = PAIRED_RESAMPLES,
                    seed: int = 0) -> PairedResult:
    """A metric that is 100 x the mean of one outcome per sample: McNemar when the outcomes are
    right/wrong, a paired bootstrap otherwise (e.g. AP per query); the CI from the bootstrap either way."""
    base, new = np.asarray(base), np.asarray(new)
    n = base.shape[0]
    if n == 0 or new.shape != (n,):
        raise ValueError("both outcome vectors must be non-empty and of one length")
    b64, n64 = base.astype(np.float64), new.astype(np.float64)
    d, low, high, p = paired_bootstrap_units(lambda c: 100.0 * (c @ b64) / n, lambda c: 100.0 * (c @ n64) / n,
                                             n, n_resamples, seed)
    if base.dtype == bool and new.dtype == bool:
        b, c = discordant(base, new)
        return PairedResult(metric, "mcnemar", d, low, high, mcnemar_exact(b, c), n, (b, c))
    return PairedResult(metric, "bootstrap", d, low, high, p, n)


def paired_test(metric: str, base, new, num_classes: int | None = None, n_resamples: int = PAIRED_RESAMPLES,
                seed: int = 0) -> PairedResult:
    """Classification logs (``clipbench.scoring.samples.classification``): McNemar for accuracy-type metrics,
    paired bootstrap otherwise; both with a bootstrap 95% CI."""
    k = ACCURACY_METRICS.get(metric, 1)
    cb, cn = base.correct_at(k), new.correct_at(k)
    num_classes = num_classes or int(max(base.label.max(), base.top5.max(), new.top5.max())) + 1
    d, low, high, p = paired_bootstrap(metric, base.label, cb, cn, num_classes, n_resamples, seed)
    if metric in ACCURACY_METRICS:
        b, c = discordant(cb, cn)
        return PairedResult(metric, "mcnemar", d, low, high, mcnemar_exact(b, c), len(base), (b, c))
    return PairedResult(metric, "bootstrap", d, low, high, p, len(base))
