"""A regression gate that knows noise: paired tests on per-sample predictions.

A fixed ``--max-drop`` is too strict on small test sets (4 samples of 797 are 0.5 points, well
inside the noise of a retrained model) and too loose on large ones (0.4 points of ImageNet's 50k
is real). When both sides of a row have per-sample files (``clipbench.results.samples``) for the same
split fingerprint, the row is judged by a paired test on the same samples:

* accuracy-type metrics (``top1``, ``top5``, selection ``accuracy``, image retrieval's
  ``recall_at_k``): exact McNemar test, i.e. a two-sided binomial test with p = 1/2 on the
  discordant pairs (b samples right before and wrong now, c the reverse):
  p = min(1, 2 P[X <= min(b, c)]), X ~ Binomial(b + c, 1/2); p = 1 when b + c = 0;
* other metrics (``mean_per_class_recall``, ``map_at_r``, retrieval's ``mean_recall`` and
  recalls): paired bootstrap of the difference (the same resampled samples on both sides; for
  text-image retrieval the same images, each drawn with all its captions), two-sided p-value by
  the shift method: (1 + #{|d* - d| >= |d|}) / (B + 1).

Which test a row gets is its per-sample log's choice (``supports`` / ``paired`` of each kind in
``clipbench.results.samples``).

Either way the 95% interval of the difference is the percentile interval of the paired bootstrap.
A row is a regression when its drop is larger than its ``max_drop`` AND significant at ``alpha``.
A row without usable per-sample files (a leaderboard CSV, an old record, a few-shot record,
different split fingerprints, a missing or damaged file: warned about, never fatal) falls back to
the fixed rule, and its verdict says so.

Tolerance file (``--tolerances FILE.yaml``): per-dataset and per-task ``max_drop`` in points::

    default: 0.5                 # optional; otherwise --max-drop
    datasets:
      digits: 1.0                # every task on digits
      imagenet1k: {zeroshot: 0.2, linear_probe: 0.3}
    tasks:
      linear_probe: 0.5          # every dataset (also matches linear_probe_<K>shot)

Precedence: dataset+task, dataset, task, default, ``--max-drop``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import markdown_text
from clipbench.results.comparison import Comparison, PrimaryValue, Row, _at_common_precision, compare
from clipbench.results.records import RESULTS_FILE, latest_records, read_records, record_key
from clipbench.results.samples import SampleFileError, SampleLog, read_samples

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.05
DEFAULT_RESAMPLES = 2000
#: Metrics judged by McNemar on per-sample correctness, with the k of their top-k.
ACCURACY_METRICS = {"top1": 1, "top5": 5}


# ---------------------------------------------------------------------------------------------
# the tests


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


def _mean_per_class_recall(idx: np.ndarray, labels: np.ndarray, correct: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean per-class recall (percent) of each resample (rows of ``idx``), over the classes it contains."""
    b = idx.shape[0]
    offset = (np.arange(b)[:, None] * num_classes + labels[idx]).ravel()
    support = np.bincount(offset, minlength=b * num_classes).reshape(b, num_classes)
    hits = np.bincount(offset, weights=correct[idx].ravel(), minlength=b * num_classes).reshape(b, num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    return 100.0 * np.nanmean(recall, axis=1)


def metric_value(metric: str, labels: np.ndarray, correct: np.ndarray, num_classes: int) -> float:
    """``metric`` (percent) of one whole split from its per-sample correctness."""
    idx = np.arange(len(labels))[None, :]
    if metric in ACCURACY_METRICS:
        return float(100.0 * correct.mean())
    if metric == "mean_per_class_recall":
        return float(_mean_per_class_recall(idx, labels, correct.astype(np.float64), num_classes)[0])
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
                     num_classes: int | None = None, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                     level: float = 0.95, chunk: int = 64) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of new - baseline ``metric`` over the same resampled samples (points).

    ``*_correct`` are per-sample booleans for the metric (top-k correctness). Resamples come from one
    seeded generator in a fixed order: a pure function of its inputs.
    """
    labels = np.asarray(labels, dtype=np.int64)
    cb, cn = np.asarray(base_correct, np.float64), np.asarray(new_correct, np.float64)
    n = labels.shape[0]
    if n == 0 or cb.shape != (n,) or cn.shape != (n,):
        raise ValueError("labels and both correctness vectors must be non-empty and of one length")
    num_classes = num_classes or int(labels.max()) + 1
    d = metric_value(metric, labels, cn, num_classes) - metric_value(metric, labels, cb, num_classes)
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        if metric in ACCURACY_METRICS:
            values[start:start + size] = 100.0 * (cn - cb)[idx].mean(axis=1)
        else:
            values[start:start + size] = (_mean_per_class_recall(idx, labels, cn, num_classes)
                                          - _mean_per_class_recall(idx, labels, cb, num_classes))
    return _interval_and_p(float(d), values, level)


def _interval_and_p(d: float, values: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """(d, percentile interval of the resampled differences, two-sided shift-method p-value)."""
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    p = 1.0 if abs(d) < 1e-12 else float((1 + np.sum(np.abs(values - d) >= abs(d) - 1e-12)) / (len(values) + 1))
    return float(d), float(low), float(high), min(1.0, p)


def paired_bootstrap_units(base_metric, new_metric, n_units: int, n_resamples: int = DEFAULT_RESAMPLES,
                           seed: int = 0, level: float = 0.95, chunk: int = 64) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of ``new_metric - base_metric`` over the same resampled units (points).

    For metrics that are not a mean over samples (retrieval: images drawn with all their captions).
    ``*_metric(counts)`` maps draw counts [B, n_units] (how often each unit is drawn; all ones is
    the split itself) to the metric of each draw [B]. Draws come from one seeded generator.
    """
    ones = np.ones((1, n_units))
    d = float(new_metric(ones)[0] - base_metric(ones)[0])
    rng = np.random.default_rng(seed)
    uniform = np.full(n_units, 1.0 / n_units)
    values = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        counts = rng.multinomial(n_units, uniform, size=size).astype(np.float64)
        values[start:start + size] = new_metric(counts) - base_metric(counts)
    return _interval_and_p(d, values, level)


def paired_outcomes(metric: str, base: np.ndarray, new: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES,
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


def paired_test(metric: str, base: SampleLog, new: SampleLog, num_classes: int | None = None,
                n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> PairedResult:
    """McNemar for accuracy-type metrics, paired bootstrap otherwise; both with a bootstrap 95% CI."""
    k = ACCURACY_METRICS.get(metric, 1)
    cb, cn = base.correct_at(k), new.correct_at(k)
    num_classes = num_classes or int(max(base.label.max(), base.top5.max(), new.top5.max())) + 1
    d, low, high, p = paired_bootstrap(metric, base.label, cb, cn, num_classes, n_resamples, seed)
    if metric in ACCURACY_METRICS:
        b, c = discordant(cb, cn)
        return PairedResult(metric, "mcnemar", d, low, high, mcnemar_exact(b, c), len(base), (b, c))
    return PairedResult(metric, "bootstrap", d, low, high, p, len(base))


# ---------------------------------------------------------------------------------------------
# tolerances


def _points(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ClipbenchError(f"{where} must be a non-negative number of points, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Tolerances:
    """Per-dataset / per-task ``max_drop`` (points); see the module docstring for the file format."""

    default: float | None = None
    datasets: Mapping[str, float | Mapping[str, float]] = field(default_factory=dict)
    tasks: Mapping[str, float] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tolerances:
        import yaml

        path = Path(path).expanduser()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ClipbenchError(f"cannot read tolerance file {path}: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ClipbenchError(f"tolerance file {path} is not valid YAML: {exc}") from exc
        return cls.parse(data if data is not None else {}, str(path))

    @classmethod
    def parse(cls, data, source: str = "tolerances") -> Tolerances:
        if not isinstance(data, dict):
            raise ClipbenchError(f"{source}: expected a mapping with default, datasets and/or tasks")
        unknown = sorted(set(data) - {"default", "datasets", "tasks"})
        if unknown:
            raise ClipbenchError(f"{source}: unknown key {unknown[0]!r} (expected default, datasets, tasks)")
        if not isinstance(data.get("datasets") or {}, dict) or not isinstance(data.get("tasks") or {}, dict):
            raise ClipbenchError(f"{source}: datasets and tasks must be mappings")
        default = None if data.get("default") is None else _points(data["default"], f"{source}: default")
        datasets: dict[str, float | dict[str, float]] = {}
        for name, value in (data.get("datasets") or {}).items():
            if isinstance(value, dict):
                datasets[str(name)] = {str(t): _points(v, f"{source}: datasets.{name}.{t}") for t, v in value.items()}
            else:
                datasets[str(name)] = _points(value, f"{source}: datasets.{name}")
        tasks = {str(t): _points(v, f"{source}: tasks.{t}") for t, v in (data.get("tasks") or {}).items()}
        return cls(default, datasets, tasks, source)

    def max_drop(self, dataset: str, task: str, fallback: float) -> float:
        from clipbench.tasks.registry import task_for_record

        owner = task_for_record(task)
        names = [task] + ([owner.name] if owner is not None and owner.name != task else [])
        per_dataset = self.datasets.get(dataset)
        if isinstance(per_dataset, Mapping):
            for name in names:
                if name in per_dataset:
                    return per_dataset[name]
        elif per_dataset is not None:
            return per_dataset
        for name in names:
            if name in self.tasks:
                return self.tasks[name]
        return self.default if self.default is not None else fallback


# ---------------------------------------------------------------------------------------------
# the gate


def _records_of(source: str | os.PathLike) -> tuple[Path | None, dict[Row, dict], str]:
    """(results dir, latest record per row, why there are none) of a compare input."""
    path = Path(source).expanduser()
    if path.is_dir():
        results_dir, file = path, path / RESULTS_FILE
    elif path.suffix == ".jsonl":
        results_dir, file = path.parent, path
    else:
        return None, {}, f"a leaderboard CSV ({path.name}) without per-sample references"
    records = latest_records(read_records(file))
    return results_dir, {record_key(r): r for r in records}, ""


@dataclass
class SignificanceJudge:
    """The ``comparison.compare`` judge: paired test where both rows have sample files, fixed rule otherwise."""

    new: str | os.PathLike
    baseline: str | os.PathLike
    max_drop: float = 0.0
    alpha: float = DEFAULT_ALPHA
    tolerances: Tolerances | None = None
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    tests: dict[Row, PairedResult] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sides = None

    def _load(self):
        if self._sides is None:
            self._sides = (_records_of(self.baseline), _records_of(self.new))
        return self._sides

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)

    def _samples(self, side: str, key: Row) -> tuple[SampleLog | None, dict | None, str]:
        results_dir, records, why = self._load()[0 if side == "baseline" else 1]
        if results_dir is None:
            return None, None, f"the {side} is {why}"
        record = records.get(key)
        if record is None or not record.get("samples"):
            return None, record, f"the {side} record has no per-sample file"
        try:
            return read_samples(results_dir, record), record, ""
        except SampleFileError as exc:
            self._warn(f"{exc}; falling back to the fixed rule for this row")
            return None, record, f"the {side} per-sample file is unusable ({exc})"

    def __call__(self, key: Row, base: PrimaryValue, new: PrimaryValue, status: str) -> tuple[str, str]:
        model, dataset, task, _ = key
        tol = self.tolerances.max_drop(dataset, task, self.max_drop) if self.tolerances else self.max_drop
        b_value, n_value = _at_common_precision(base, new)  # like with like: a rounded CSV side rounds both
        delta = n_value - b_value
        if not (math.isfinite(delta)):  # leave non-numbers to the fixed rule's own handling
            return status, ""
        reason = ""
        base_log, base_rec, reason = self._samples("baseline", key)
        new_log = None
        if base_log is not None:
            new_log, new_rec, reason = self._samples("new", key)
        if base_log is not None and new_log is not None:
            if base_rec.get("dataset_fingerprint") != new_rec.get("dataset_fingerprint"):
                reason = "the split fingerprints differ (not the same samples)"
            elif not base_log.same_samples(new_log):
                reason = "the per-sample files list different samples"
            elif base.metric != new.metric or not base_log.supports(base.metric):
                reason = f"no paired test for metric {base.metric!r}"
        if reason or base_log is None or new_log is None:
            return self._fixed_rule(delta, tol, reason)
        result = base_log.paired(base.metric, new_log, self.n_resamples, self.seed)
        self.tests[key] = result
        return self._verdict(delta, tol, result)

    def _fixed_rule(self, delta: float, tol: float, reason: str) -> tuple[str, str]:
        dropped = delta < -tol - 1e-9
        status = "DROP" if dropped else "improved" if delta > 1e-9 else "ok"
        words = (f"drop of {-delta:.2f}" if delta <= -0.005 else f"gain of {delta:.2f}" if delta >= 0.005
                 else "no change")
        rule = f"> max-drop {tol:g}: regression" if dropped else f"within max-drop {tol:g}"
        return status, f"{words}, {rule} (fixed rule: {reason})"

    def _verdict(self, delta: float, tol: float, r: PairedResult) -> tuple[str, str]:
        significant = r.p_value < self.alpha
        test = f"McNemar {r.discordant[0]} vs {r.discordant[1]} discordant" if r.discordant else "paired bootstrap"
        p = f"p = {r.p_value:.3g}" if r.p_value >= 0.001 else "p < 0.001"
        if delta < 0:
            words = f"drop of {-delta:.2f} [{-r.ci_high:.2f}, {-r.ci_low:.2f}], {p}"
        else:
            words = f"gain of {delta:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}], {p}"
        if delta < -tol - 1e-9 and significant:
            return "DROP", f"{words}: regression ({test})"
        if delta < -1e-9:
            why = (f"not significant at alpha {self.alpha:g}" if not significant
                   else f"significant but within max-drop {tol:g}")
            return "ok", f"{words}: {why}, passes ({test})"
        if delta > 1e-9:
            return "improved", f"{words}: {'significant improvement' if significant else 'within noise'} ({test})"
        return "ok", f"no change, {p} ({test})"


@dataclass(frozen=True)
class GatedComparison:
    """The comparison table plus one verdict in words per row; exit 1 if ``failed``."""

    comparison: Comparison
    alpha: float
    tolerances: Tolerances | None
    tests: dict[Row, PairedResult]
    warnings: list[str]

    @property
    def rows(self):
        return self.comparison.rows

    @property
    def failed(self) -> bool:
        return self.comparison.failed

    def row_dicts(self) -> list[dict]:
        return self.comparison.row_dicts()

    def to_markdown(self) -> str:
        lines = [self.comparison.to_markdown(), ""]
        tol = f"; tolerances from {self.tolerances.source}" if self.tolerances else ""
        lines.append(f"Verdicts (paired tests on per-sample predictions where both sides have them, "
                     f"alpha = {self.alpha:g}{tol}):")
        lines.append("")
        for r in self.comparison.rows:
            label = f"{r.model} / {r.dataset} / {r.task}" + (f" [{r.variant}]" if r.variant else "")
            if r.status == "MISSING":
                note = "missing from the new results: regression"
            elif r.status == "new":
                note = "only in the new results"
            else:
                note = r.note or r.status
            lines.append(f"- {markdown_text(label)} ({markdown_text(r.metric)}): {markdown_text(note)}")
        if self.warnings:
            lines.append("")
            lines.extend(f"Warning: {markdown_text(w)}" for w in self.warnings)
        return "\n".join(lines)


def gated_compare(new: str | os.PathLike, baseline: str | os.PathLike, max_drop: float = 0.0,
                  alpha: float = DEFAULT_ALPHA, tolerances: str | os.PathLike | Tolerances | None = None,
                  n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                  allow_mismatch: bool = False) -> GatedComparison:
    """``comparison.compare`` with each row judged by a paired test where possible (see the module docstring)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ClipbenchError(f"--alpha must be a number between 0 and 1, got {alpha!r}")
    if tolerances is not None and not isinstance(tolerances, Tolerances):
        tolerances = Tolerances.load(tolerances)
    judge = SignificanceJudge(new, baseline, max_drop, float(alpha), tolerances, n_resamples, seed)
    result = compare(new, baseline, max_drop, allow_mismatch=allow_mismatch, judge=judge)
    return GatedComparison(result, float(alpha), tolerances, judge.tests, judge.warnings)
