"""The one seeded resampling engine: every bootstrap interval and every paired test draws here.

A resample draws ``n`` units with replacement. A unit is whatever a metric averages over and the
protocol resamples: a test sample (classification), an image with all its captions (text-image
retrieval), an item or a group (selection), a query (image retrieval). The draws come from
``numpy.random.default_rng(seed)``, ``CHUNK`` resamples at a time, as
``integers(0, n, size=(chunk, n))``: one order, so an interval or a p-value is a pure function of
(statistic, n, resamples, seed), and the same seed and unit count give every caller the same draws.

A statistic sees each chunk as ``Draws``: the drawn unit indices [b, n], and how often each unit
was drawn [b, n] (``counts``, for metrics that weight per-unit outcomes, such as retrieval's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Resamples drawn per generator call; part of the draw (numpy's bounded integers are generated per call).
CHUNK = 64
#: Resamples of a 95% interval unless a suite or caller asks otherwise.
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


@dataclass
class Draws:
    """One chunk of resamples: ``index[b, j]`` is the unit drawn j-th in resample b."""

    index: np.ndarray  # int64 [b, n]
    n_units: int

    @cached_property
    def counts(self) -> np.ndarray:
        """float64 [b, n]: how often resample b drew each unit (all ones for the split itself)."""
        b = self.index.shape[0]
        offset = (np.arange(b)[:, None] * self.n_units + self.index).ravel()
        return np.bincount(offset, minlength=b * self.n_units).reshape(b, self.n_units).astype(np.float64)

    @classmethod
    def whole(cls, n_units: int) -> Draws:
        """The split itself as one 'resample' (every unit once, in order): a statistic's point value."""
        return cls(np.arange(n_units, dtype=np.int64)[None, :], n_units)


Statistic = Callable[[Draws], "np.ndarray | Mapping[str, np.ndarray]"]


def draws(n_units: int, n_resamples: int, seed: int = 0) -> Iterator[Draws]:
    """The resamples of ``n_units`` units, chunk by chunk, from one generator seeded with ``seed``."""
    if n_units < 1:
        raise ValueError("resampling needs at least one unit")
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, CHUNK):
        b = min(CHUNK, n_resamples - start)
        yield Draws(rng.integers(0, n_units, size=(b, n_units)), n_units)


def resample(statistic: Statistic, n_units: int, n_resamples: int, seed: int = 0):
    """``statistic`` of every resample: float64 [B], or a dict of them when it returns a mapping per chunk."""
    parts = [statistic(d) for d in draws(n_units, n_resamples, seed)]
    if parts and isinstance(parts[0], Mapping):
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of resampled values; resamples where the statistic is
    undefined (NaN: a ROC AUC drawn without a positive) are left out, and (NaN, NaN) when all are."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def interval(statistic: Statistic, n_units: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
             level: float = LEVEL) -> dict[str, float] | None:
    """``{"low", "high"}``: percentile bootstrap interval of a statistic; None without resamples or units."""
    if n_resamples <= 0 or n_units == 0:
        return None
    low, high = percentile_interval(resample(statistic, n_units, n_resamples, seed), level)
    return None if np.isnan(low) else {"low": low, "high": high}


def mean_statistic(values: np.ndarray, scale: float = 100.0) -> Statistic:
    """``scale`` x the mean of one value per unit, per resample (accuracy, AP@R, hit@k)."""
    values = np.asarray(values, dtype=np.float64)
    return lambda d: scale * values[d.index].mean(axis=1)


def paired(difference: Statistic, d: float, n_units: int, n_resamples: int, seed: int = 0,
           level: float = LEVEL) -> tuple[float, float, float, float]:
    """(d, low, high, p) of a paired comparison: ``difference`` (new - baseline) on the same draws of both
    sides; the percentile interval, and the two-sided p-value by the shift method,
    (1 + #{|d* - d| >= |d|}) / (B + 1) (1 when d is 0)."""
    values = resample(difference, n_units, n_resamples, seed)
    values = values[np.isfinite(values)]
    low, high = percentile_interval(values, level)
    p = 1.0 if abs(d) < 1e-12 else float((1 + np.sum(np.abs(values - d) >= abs(d) - 1e-12)) / (len(values) + 1))
    return float(d), low, high, min(1.0, p)
