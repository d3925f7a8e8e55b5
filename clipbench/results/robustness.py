"""Effective robustness (Taori et al. 2020; Radford et al. 2021, section 3.3) from ImageNet and shift records.

A model's accuracy under a distribution shift is compared with what a standard ImageNet-trained model of
the same ImageNet accuracy gets: the linear trend, on logit-scaled axes (``logit(p) = ln(p / (100 - p))``
of a top-1 percentage), of the testbed's standard models (``clipbench/reference/robustness_testbed.csv``,
with its source), fitted here by least squares (``scipy.stats.linregress`` in the testbed's code, the same
estimate as ``numpy.polyfit(deg=1)``)::

    predicted(x) = expit(slope * logit(x) + intercept)        effective robustness = y - predicted(x)

in points, x the model's ImageNet top-1 and y its top-1 on the shift. The 95% interval resamples the
ImageNet and the shift test samples independently (two separate test sets; ``scoring.resample``, seeds
``seed`` and ``seed + 1``) from the records' per-sample files; a pair without them gets no interval. The
trend's own uncertainty is not in the interval.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from clipbench.foundations.errors import ClipbenchError

log = logging.getLogger(__name__)

IMAGENET = "imagenet1k"
#: The natural distribution shifts of the CLIP paper's Figure 13 that clipbench can score, in its order.
SHIFTS = ("imagenet_v2", "imagenet_sketch", "objectnet", "imagenet_r", "imagenet_a")
TREND_FILE = "robustness_testbed.csv"
TREND_SOURCE = ("Taori et al. 2020 (arXiv 2007.00644): standard ImageNet models of the robustness testbed, "
                "github.com/modestyachts/imagenet-testbed-website results.csv")
#: accuracies are clipped into [EDGE, 100 - EDGE] before the logit (0% and 100% have none)
EDGE = 1e-6


def logit(p):
    """ln(p / (100 - p)) of a percentage (numpy or float)."""
    p = np.clip(np.asarray(p, dtype=np.float64), EDGE, 100.0 - EDGE)
    return np.log(p / (100.0 - p))


def expit(z):
    """The percentage whose logit is ``z``."""
    return 100.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


@dataclass(frozen=True)
class Trend:
    """A linear fit on logit axes: logit(shift) = slope * logit(ImageNet) + intercept."""

    shift: str
    slope: float
    intercept: float
    points: tuple[tuple[float, float], ...] = ()  # the (ImageNet, shift) accuracies it was fitted to

    def predict(self, imagenet):
        return expit(self.slope * logit(imagenet) + self.intercept)


def fit_trend(shift: str, points: Iterable[tuple[float, float]]) -> Trend:
    """Least-squares line through ``points`` (ImageNet %, shift %) on logit axes."""
    pts = tuple((float(x), float(y)) for x, y in points)
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        raise ClipbenchError(f"a trend for {shift} needs at least two points with different ImageNet accuracies")
    x, y = logit([p[0] for p in pts]), logit([p[1] for p in pts])
    slope, intercept = np.polyfit(x, y, 1)
    return Trend(shift, float(slope), float(intercept), pts)


def reference_points(path: str | os.PathLike | None = None) -> dict[str, list[tuple[float, float]]]:
    """{shift: [(ImageNet %, shift %), ...]} of the standard models in the bundled testbed file (or ``path``)."""
    text = (Path(path).read_text(encoding="utf-8") if path is not None
            else resources.files("clipbench.reference").joinpath(TREND_FILE).read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO("".join(line for line in text.splitlines(True)
                                                   if not line.startswith("#")))))
    points: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for shift in SHIFTS:
            if row.get(shift) and row.get(IMAGENET):
                points.setdefault(shift, []).append((float(row[IMAGENET]), float(row[shift])))
    return points


def reference_trends(path: str | os.PathLike | None = None) -> dict[str, Trend]:
    return {shift: fit_trend(shift, pts) for shift, pts in reference_points(path).items()}


@dataclass
class Robustness:
    """One model under one shift."""

    model: str
    shift: str
    imagenet: float
    shift_accuracy: float
    predicted: float
    effective: float
    ci95: dict | None = None


def _top1(record: dict) -> float | None:
    value = (record.get("metrics") or {}).get("top1") if isinstance(record.get("metrics"), dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok and 0.0 <= value <= 100.0 else None


def _correct(results_dir: Path | None, record: dict):
    """The record's per-sample right/wrong at top-1, or None (no file, a damaged one: logged)."""
    if results_dir is None or not isinstance(record.get("samples"), dict):
        return None
    from clipbench.results.samples import read_samples

    try:
        samples = read_samples(results_dir, record)
    except ClipbenchError as exc:
        log.warning("no effective-robustness interval for %s on %s: %s", record.get("model"), record.get("dataset"),
                    exc)
        return None
    correct = getattr(samples, "correct", None)
    return None if correct is None else np.asarray(correct, dtype=np.float64)


def interval(trend: Trend, imagenet_correct, shift_correct, n_resamples: int = 1000,
             seed: int = 0) -> dict[str, float] | None:
    """95% interval of shift accuracy - trend(ImageNet accuracy), resampling both test sets independently."""
    from clipbench.scoring.resample import mean_statistic, percentile_interval, resample

    if n_resamples <= 0 or len(imagenet_correct) == 0 or len(shift_correct) == 0:
        return None
    x = resample(mean_statistic(imagenet_correct), len(imagenet_correct), n_resamples, seed)
    y = resample(mean_statistic(shift_correct), len(shift_correct), n_resamples, seed + 1)
    low, high = percentile_interval(y - trend.predict(x))
    return {"low": low, "high": high}


def effective_robustness(records: Iterable[dict], trends: dict[str, Trend] | None = None,
                         results_dir: str | os.PathLike | None = None, task: str = "zeroshot",
                         n_resamples: int = 1000, seed: int = 0) -> tuple[list[Robustness], dict[str, str]]:
    """Each model's effective robustness per shift from the latest ``task`` records (one per model and
    dataset), and {model: why it is not plotted} for models with shift records but no usable ImageNet row."""
    trends = reference_trends() if trends is None else trends
    by_model: dict[str, dict[str, dict]] = {}
    for r in records:
        if r.get("task") == task and isinstance(r.get("model"), str) and r.get("dataset") in (IMAGENET, *SHIFTS):
            by_model.setdefault(r["model"], {})[r["dataset"]] = r
    where = Path(results_dir) if results_dir is not None else None
    rows: list[Robustness] = []
    skipped: dict[str, str] = {}
    for model, datasets in by_model.items():
        shifts = [s for s in SHIFTS if s in datasets and s in trends]
        if not shifts:
            continue
        imagenet = _top1(datasets[IMAGENET]) if IMAGENET in datasets else None
        if IMAGENET not in datasets:
            skipped[model] = f"no {IMAGENET} {task} record (its ImageNet accuracy is the x axis)"
            continue
        if imagenet is None:
            skipped[model] = f"its {IMAGENET} record has no top-1 between 0 and 100"
            continue
        x_correct = _correct(where, datasets[IMAGENET])
        for shift in shifts:
            y = _top1(datasets[shift])
            if y is None:
                skipped[model] = f"its {shift} record has no top-1 between 0 and 100"
                continue
            trend = trends[shift]
            predicted = float(trend.predict(imagenet))
            y_correct = _correct(where, datasets[shift]) if x_correct is not None else None
            ci = interval(trend, x_correct, y_correct, n_resamples, seed) if y_correct is not None else None
            rows.append(Robustness(model, shift, imagenet, y, predicted, y - predicted, ci))
    return rows, skipped
