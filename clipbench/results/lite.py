"""``clipbench lite``: a subset of each dataset, chosen from the per-sample files of models already run, that
ranks those models as the full sets do, with the rank agreement measured rather than claimed.

Why a subset can rank models: a sample every model gets right (or every model gets wrong) adds the same to
every score and carries no ranking information. The subset keeps only the samples the models disagree on
and draws at most ``budget`` of them, stratified by difficulty (the fraction of models right, in
``DIFFICULTY_BINS`` equal bins, each its proportional share by largest remainder, at least one where the budget
allows: ``--limit``'s seeded draw, ``datasets.splits.limit_indices``), so hard and easy disagreements keep their
shares. A model's lite score is its plain accuracy on the subset: its ranking, not its level, is the point.

The agreement is measured leave-one-model-out: for each model, the subset is chosen from the *other* models'
files and the model is scored on it, so its lite rank is the rank of a model the subset was not chosen on
(MIEB-lite says it "maintains relative model rankings" without a number; this is the number). Spearman's rho
and Kendall's tau between those held-out lite scores and the full scores get 95% bootstrap intervals over
models (``clipbench.scoring.resample``); each model's full rank gets an interval over samples, so a held-out
lite rank can be read against it. Per-sample correctness: top-1 for classification files, the primary
metric's outcome for outcome files (selection, image retrieval); retrieval files are not used.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipbench.datasets.splits import limit_indices
from clipbench.foundations.errors import ClipbenchError
from clipbench.results.records import latest_records, read_records, record_variant
from clipbench.results.samples import SampleFileError, read_samples
from clipbench.scoring.resample import draws, percentile_interval, resample

log = logging.getLogger(__name__)

DIFFICULTY_BINS = 10
#: fewest models a dataset needs for a ranking to be measured (leave-one-out leaves one fewer to choose on)
MIN_MODELS = 3


@dataclass
class Outcomes:
    """Per-sample correctness of several models on one (dataset, task) split: ``correct`` [models, samples]."""

    dataset: str
    task: str
    split: str
    fingerprint: str
    models: list[str]
    correct: np.ndarray

    @property
    def full_scores(self) -> np.ndarray:
        return 100.0 * self.correct.mean(axis=1)


def _correctness(log_, record: dict) -> np.ndarray | None:
    if hasattr(log_, "correct") and hasattr(log_, "label"):  # classification: top-1
        return np.asarray(log_.correct, dtype=bool)
    columns = getattr(log_, "columns", None)
    metric = (log_.meta.get("metrics") or {}).get(record.get("primary_metric")) if columns is not None else None
    if metric is not None and np.asarray(columns[metric]).dtype == bool:
        return np.asarray(columns[metric], dtype=bool)
    return None


def collect_outcomes(results: str | os.PathLike) -> list[Outcomes]:
    """Every (dataset, task) with per-sample files of at least ``MIN_MODELS`` models on one split fingerprint
    (the newest default-variant record per model); what is left out is logged with the reason."""
    path = Path(results).expanduser()
    results_dir = path if path.is_dir() else path.parent
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in latest_records(read_records(path)):
        if not record_variant(record) and isinstance(record.get("samples"), dict):
            groups.setdefault((record["dataset"], record["task"]), []).append(record)
    out = []
    for (dataset, task), records in sorted(groups.items()):
        by_fp: dict[str, list[dict]] = {}
        for r in records:
            by_fp.setdefault(str(r.get("dataset_fingerprint")), []).append(r)
        fingerprint, chosen = max(by_fp.items(), key=lambda kv: len(kv[1]))
        if len(by_fp) > 1:
            log.warning("%s/%s: models were run on %d copies of the data; using the %d on %s", dataset, task,
                        len(by_fp), len(chosen), fingerprint)
        rows, models = [], []
        for r in chosen:
            try:
                values = _correctness(read_samples(results_dir, r), r)
            except SampleFileError as exc:
                log.warning("%s; left out of the lite choice", exc)
                continue
            if values is not None:
                rows.append(values)
                models.append(r["model"])
        if len(rows) < MIN_MODELS:
            log.warning("%s/%s: %d model(s) with usable per-sample files; lite needs %d", dataset, task,
                        len(rows), MIN_MODELS)
            continue
        out.append(Outcomes(dataset, task, chosen[0]["split"], fingerprint, models, np.stack(rows)))
    return out


def choose_subset(correct: np.ndarray, budget: int, seed: int = 0) -> np.ndarray:
    """Sorted sample indices: at most ``budget`` of the samples the models of ``correct`` [models, samples]
    disagree on, stratified by the fraction of models right (see the module docstring)."""
    share = correct.mean(axis=0)
    informative = np.flatnonzero((share > 0) & (share < 1))
    if len(informative) <= budget:
        return informative
    bins = np.minimum((share[informative] * DIFFICULTY_BINS).astype(int), DIFFICULTY_BINS - 1)
    return informative[limit_indices(bins, budget, seed)]  # the one stratified draw (``datasets.splits``)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1 = best; ties share their mean rank (as Spearman's rho ranks)."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(scores), method="average", axis=-1)


def _correlations(lite: np.ndarray, full: np.ndarray) -> tuple[float, float]:
    from scipy.stats import kendalltau, spearmanr

    if np.ptp(lite) == 0 or np.ptp(full) == 0:
        return float("nan"), float("nan")
    return float(spearmanr(lite, full).statistic), float(kendalltau(lite, full).statistic)


@dataclass
class Agreement:
    """How the held-out lite scores rank the models against their full scores."""

    models: list[str]
    full: np.ndarray
    lite_held_out: np.ndarray
    spearman: float
    kendall: float
    spearman_ci: tuple[float, float]
    kendall_ci: tuple[float, float]
    full_rank_ci: np.ndarray  # [models, 2]
    subset_sizes: list[int] = field(default_factory=list)

    def rows(self) -> list[dict]:
        full_rank, lite_rank = _ranks(self.full), _ranks(self.lite_held_out)
        return [{"model": m, "full": round(float(f), 2), "lite_held_out": round(float(s), 2),
                 "full_rank": float(fr), "full_rank_ci": f"[{lo:g}, {hi:g}]", "lite_rank": float(lr),
                 "within_ci": bool(lo <= lr <= hi)}
                for m, f, s, fr, lr, (lo, hi) in zip(self.models, self.full, self.lite_held_out, full_rank, lite_rank,
                                                     self.full_rank_ci, strict=True)]


def agreement(full: np.ndarray, lite: np.ndarray, models: list[str], full_rank_ci: np.ndarray,
              n_resamples: int = 1000, seed: int = 0, sizes: list[int] | None = None) -> Agreement:
    """Spearman and Kendall of ``lite`` against ``full`` scores, with intervals from resampling models (a draw
    where either is undefined, all scores tied, is left out of the interval by ``percentile_interval``)."""
    rho, tau = _correlations(lite, full)

    def both(d) -> dict[str, np.ndarray]:
        pairs = np.array([_correlations(lite[i], full[i]) for i in d.index]).reshape(-1, 2)
        return {"rho": pairs[:, 0], "tau": pairs[:, 1]}

    drawn = resample(both, len(models), n_resamples, seed)
    return Agreement(models, full, lite, rho, tau, percentile_interval(drawn["rho"]), percentile_interval(drawn["tau"]),
                     full_rank_ci, sizes or [])


def full_rank_intervals(correct: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """[models, 2]: each model's rank on resampled full sets (samples drawn with replacement)."""
    ranks = np.concatenate([_ranks(correct[:, d.index].mean(axis=2).T)
                            for d in draws(correct.shape[1], n_resamples, seed)])
    return np.array([percentile_interval(ranks[:, m]) for m in range(ranks.shape[1])])


def held_out_scores(correct: np.ndarray, budget: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Each model's lite score on the subset chosen without it, and those subsets' sizes."""
    scores, sizes = [], []
    for m in range(correct.shape[0]):
        others = np.delete(correct, m, axis=0)
        subset = choose_subset(others, budget, seed)
        sizes.append(int(len(subset)))
        scores.append(100.0 * correct[m, subset].mean() if len(subset) else float("nan"))
    return np.asarray(scores), sizes


def subset_digest(indices: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def check_budget(budget) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ClipbenchError(f"--budget must be a positive number of samples, got {budget!r}")
    return budget
