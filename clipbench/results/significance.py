"""A regression gate that knows noise: paired tests on per-sample predictions.

A fixed ``--max-drop`` is too strict on small test sets (4 samples of 797 are 0.5 points, well
inside the noise of a retrained model) and too loose on large ones (0.4 points of ImageNet's 50k
is real). When both sides of a row have per-sample files (``clipbench.results.samples``) for the same
split fingerprint, the row is judged by a paired test on the same samples. The tests themselves
(exact McNemar for right/wrong outcomes, a paired bootstrap otherwise, both with a bootstrap 95%
interval of the difference) live in ``clipbench.scoring.paired``, and which one a row gets is its
per-sample kind's choice (``supports`` / ``paired`` in ``clipbench.scoring.samples``); this module
reads the two sides, picks the tolerance and words the verdict.

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

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import markdown_text
from clipbench.results.comparison import (
    Comparison,
    ComparisonRow,
    PrimaryValue,
    Row,
    _at_common_precision,
    compare,
)
from clipbench.results.records import latest_records, record_key
from clipbench.results.samples import SampleFileError, read_samples
from clipbench.results.source import ResultSet, load_result_set
from clipbench.scoring.paired import PAIRED_RESAMPLES, PairedResult

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.05
DEFAULT_RESAMPLES = PAIRED_RESAMPLES


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


def _records_of(result_set: ResultSet) -> tuple[Path | None, dict[Row, dict], str]:
    """(results dir, latest record per row, why there are none) of a compare input."""
    if result_set.records is None:
        return None, {}, f"a leaderboard CSV ({result_set.path.name}) without per-sample references"
    return result_set.results_dir, {record_key(r): r for r in latest_records(result_set.records)}, ""


@dataclass
class SignificanceJudge:
    """The ``comparison.compare`` judge: paired test where both rows have sample files, fixed rule otherwise."""

    new: ResultSet
    baseline: ResultSet
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

    def _samples(self, side: str, key: Row) -> tuple[object | None, dict | None, str]:
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

    def _failed_as(self, row: ComparisonRow | None) -> str:
        """A DROP row judged by a paired test is a significant drop; one without per-sample files fell back to
        the fixed rule (``None``: the noun for a count of zero)."""
        if row is None or (row.model, row.dataset, row.task, row.variant) in self.tests:
            return "significant drop"
        return "fixed-rule drop"

    def _why_passed(self, row: ComparisonRow) -> str:
        test = self.tests.get((row.model, row.dataset, row.task, row.variant))
        if test is not None and test.p_value >= self.alpha:
            return f"not significant at alpha {self.alpha:g}"
        return "within the row's tolerance"

    def to_markdown(self) -> str:
        lines = [self.comparison.to_markdown(self._failed_as, self._why_passed), ""]
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
    # each side is parsed once, for the rows and for the per-sample references
    base_set = load_result_set(baseline, strict=True)
    new_set = load_result_set(new, strict=True)
    judge = SignificanceJudge(new_set, base_set, max_drop, float(alpha), tolerances, n_resamples, seed)
    result = compare(new_set, base_set, max_drop, allow_mismatch=allow_mismatch, judge=judge)
    return GatedComparison(result, float(alpha), tolerances, judge.tests, judge.warnings)
