"""Calibration of a classifier's probabilities: expected calibration error, NLL and Brier score.

Definitions (``p`` [N, C] probabilities, ``y`` [N] labels, confidence ``c_i = max_k p_ik``, correct
``a_i = [argmax_k p_ik == y_i]``, ties to the lower class as everywhere in clipbench):

* **ECE** (Guo et al. 2017, "On Calibration of Modern Neural Networks"): 15 equal-width bins
  ``((m-1)/15, m/15]`` over the confidence (a confidence of 0 falls in the first bin);
  ``ECE = sum_m |B_m|/N * |acc(B_m) - conf(B_m)| = sum_m |sum_{i in B_m} (a_i - c_i)| / N``, in percent.
* **Adaptive ECE** (equal-mass bins; Nixon et al. 2019, Roelofs et al. 2022): the same sum over 15
  bins that each hold N/15 samples (``numpy.array_split`` of the samples sorted by confidence,
  a stable sort), in percent.
* **NLL**: the mean of ``-log p_iy`` in nats; from logits it is ``logsumexp(z_i) - z_iy`` (exact), from
  probabilities ``p_iy`` is clipped at ``EPS`` first (a probe that gives a test label 0).
* **Brier** (Brier 1950, the multi-class form): the mean over samples of ``sum_k (p_ik - [k == y_i])^2``,
  from 0 (perfect) to 2.

Zero-shot logits are scored at the model's own learned scale (``exp(logit_scale)``, the
temperature CLIP was trained with) when the model has one: the softmax, and so every value here,
depends on it, unlike accuracy. ``scale`` and ``scale_source`` in the record say which was used.
A temperature fitted on another split (``fit_temperature``) is a separate, named variant.
Intervals are percentile bootstraps over test samples from the one engine (``scoring.resample``);
the equal-width bins of a sample do not depend on the resample, so ECE's interval is exact for
them; the adaptive variant gets no interval (its bins move with every resample).
"""

from __future__ import annotations

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.resample import percentile_interval, resample
from clipbench.scoring.similarity import LOGIT_SCALE, as_numpy

N_BINS = 15
#: the smallest probability NLL takes the log of (scikit-learn's former ``log_loss`` default)
EPS = 1e-15
#: the temperatures ``fit_temperature`` searches between
TEMPERATURE_BOUNDS = (0.01, 100.0)


def log_softmax(logits) -> np.ndarray:
    """float64 [N, C] log-probabilities of logits, computed stably."""
    z = as_numpy(logits).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _check(probs: np.ndarray, labels: np.ndarray) -> None:
    if probs.ndim != 2 or labels.ndim != 1 or probs.shape[0] != labels.shape[0] or labels.size == 0:
        raise ClipbenchError(f"calibration needs probabilities [N, C] and labels [N] with N > 0, got "
                             f"{probs.shape} and {labels.shape}")
    if not np.isfinite(probs).all():
        raise ClipbenchError("probabilities contain NaN or Inf; refusing to compute calibration from them")
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ClipbenchError(f"labels must lie in [0, {probs.shape[1]}) for calibration")


def confidence_and_correct(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's top probability and whether its argmax (ties to the lower class) is the label."""
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)


def equal_width_bins(confidence: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Int [N]: each confidence's bin, bin m (0-based) holding (m/B, (m+1)/B]; 0 goes to bin 0."""
    interior = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    return np.searchsorted(interior, confidence, side="left")


def equal_mass_bins(confidence: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Int [N]: bins of (nearly) equal size over the samples sorted by confidence (stable sort)."""
    order = np.argsort(confidence, kind="stable")
    bins = np.empty(len(confidence), dtype=np.int64)
    for m, members in enumerate(np.array_split(order, n_bins)):
        bins[members] = m
    return bins


def binned_ece(confidence, correct, bins: np.ndarray, n_bins: int = N_BINS) -> float:
    """sum_m |sum_{i in B_m} (a_i - c_i)| / N, in percent."""
    gap = np.bincount(bins, weights=np.asarray(correct, float) - np.asarray(confidence, float), minlength=n_bins)
    return float(100.0 * np.abs(gap).sum() / len(confidence))


def reliability(confidence, correct, n_bins: int = N_BINS) -> list[dict]:
    """The reliability diagram's equal-width bins: lower and upper edge, count, accuracy and mean confidence
    (percent; None in an empty bin)."""
    bins = equal_width_bins(confidence, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    hits = np.bincount(bins, weights=correct, minlength=n_bins)
    conf = np.bincount(bins, weights=confidence, minlength=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return [{"low": float(edges[m]), "high": float(edges[m + 1]), "count": int(count[m]),
             "accuracy": float(100.0 * hits[m] / count[m]) if count[m] else None,
             "confidence": float(100.0 * conf[m] / count[m]) if count[m] else None} for m in range(n_bins)]


def calibration(probs, labels, log_probs=None, n_bootstrap: int = 0, seed: int = 0,
                n_bins: int = N_BINS) -> dict:
    """ECE, adaptive ECE (percent), NLL (nats) and Brier of probabilities [N, C] (``log_probs``: their exact
    logs, when they come from logits), with 95% bootstrap intervals of ece, nll and brier
    (``n_bootstrap`` resamples; 0 for none) and the reliability bins."""
    probs, labels = np.asarray(as_numpy(probs), dtype=np.float64), np.asarray(as_numpy(labels), dtype=np.int64)
    _check(probs, labels)
    n = len(labels)
    rows = np.arange(n)
    confidence, correct = confidence_and_correct(probs, labels)
    log_p = (np.asarray(log_probs, dtype=np.float64)[rows, labels] if log_probs is not None
             else np.log(np.clip(probs[rows, labels], EPS, None)))
    onehot = np.zeros_like(probs)
    onehot[rows, labels] = 1.0
    brier = ((probs - onehot) ** 2).sum(axis=1)
    bins = equal_width_bins(confidence, n_bins)
    out = {"ece": binned_ece(confidence, correct, bins, n_bins),
           "ece_adaptive": binned_ece(confidence, correct, equal_mass_bins(confidence, n_bins), n_bins),
           "nll": float(-log_p.mean()), "brier": float(brier.mean()), "n_bins": n_bins}
    if n_bootstrap > 0:
        gaps = np.zeros((n, n_bins))
        gaps[rows, bins] = correct - confidence

        def statistic(d):
            counts = d.counts
            return {"ece": 100.0 * np.abs(counts @ gaps).sum(axis=1) / n,
                    "nll": -(counts @ log_p) / n, "brier": (counts @ brier) / n}

        values = resample(statistic, n, n_bootstrap, seed)
        out["ci95"] = {name: dict(zip(("low", "high"), percentile_interval(v), strict=True))
                       for name, v in values.items()}
    out["reliability"] = reliability(confidence, correct, n_bins)
    return out


def fit_temperature(logits, labels) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) on (validation) ``logits``, searched on
    log T within ``TEMPERATURE_BOUNDS`` (Guo et al. 2017's temperature scaling)."""
    from scipy.optimize import minimize_scalar

    z, labels = as_numpy(logits).astype(np.float64), np.asarray(as_numpy(labels), dtype=np.int64)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-log_softmax(z / np.exp(log_t))[rows, labels].mean())

    low, high = np.log(TEMPERATURE_BOUNDS)
    return float(np.exp(minimize_scalar(nll, bounds=(low, high), method="bounded",
                                        options={"xatol": 1e-6}).x))


def logit_calibration(logits, labels, scale: float | None, n_bootstrap: int = 0, seed: int = 0,
                      computed_at: float = LOGIT_SCALE, temperature: float | None = None) -> dict:
    """Calibration of zero-shot ``logits`` computed at ``computed_at`` x cosine, rescaled to the model's
    learned ``scale`` (CLIP's fixed ``LOGIT_SCALE`` when the model has none), then divided by ``temperature``
    (a fitted variant) when one is given. The record says which scale was used and where it came from."""
    usable = isinstance(scale, (int, float)) and not isinstance(scale, bool) and bool(np.isfinite(scale)) and scale > 0
    used = float(scale) if usable else float(computed_at)
    z = as_numpy(logits).astype(np.float64) * (used / computed_at)
    if temperature is not None:
        z = z / temperature
    log_p = log_softmax(z)
    out = calibration(np.exp(log_p), labels, log_p, n_bootstrap, seed)
    out = {"scale": used, "scale_source": "model" if usable else f"fixed {computed_at:g} (the model has no "
           "learned logit scale)", **out}
    if temperature is not None:
        out["temperature"] = float(temperature)
    return out
