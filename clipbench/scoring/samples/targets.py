"""The ``targets`` per-sample kind: zero-shot records of multi-label, binary (ROC AUC) and grouped sets.

One row per test sample: its position in the split (``index``), its label, and the columns of
``clipbench.scoring.targets.ScoredTargets``: ``label_rank`` and ``predicted`` (single-label),
``margin`` (binary sets: score of class 1 - score of class 0), ``scores`` and ``positives``
(multi-label sets: one value per class), and one ``group:<variable>`` column of group codes per
group variable. The metadata names the classes, each variable's group names, the worst-group
variable (``group_by``) and its excluded groups, so every metric of the record, and of any
resample, follows from the file.

The paired test (the regression gate) is a paired bootstrap of the metric over the same
resampled samples of both sides (``clipbench.scoring.resample.paired``); McNemar for top-1/top-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipbench.scoring.samples.table import arrow_column, column_array, fixed_width, item_names, text_table

GROUP_PREFIX = "group:"


def build_targets_table(targets):
    """The pyarrow table of one split's ``ScoredTargets``."""
    import pyarrow as pa

    n = len(targets)
    columns = {"index": arrow_column(np.arange(n, dtype=np.int64)), "label": arrow_column(targets.labels)}
    if targets.multilabel:
        c = targets.n_classes
        columns["scores"] = pa.FixedSizeListArray.from_arrays(
            arrow_column(np.ascontiguousarray(targets.scores, np.float32).ravel()), c)
        columns["positives"] = pa.FixedSizeListArray.from_arrays(arrow_column(targets.positives.ravel()), c)
    else:
        columns["label_rank"] = arrow_column(targets.label_rank)
        columns["predicted"] = arrow_column(np.asarray(targets.predicted, np.int64))
        columns["correct"] = arrow_column(targets.label_rank == 0)
        if targets.margin is not None:
            columns["margin"] = arrow_column(np.asarray(targets.margin, np.float32))
    for variable, (codes, _) in targets.groups.items():
        columns[GROUP_PREFIX + variable] = arrow_column(np.asarray(codes, np.int64))
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def targets_meta(targets, classnames) -> dict:
    """The file metadata that, with the table, rebuilds ``targets``."""
    return {"classnames": list(classnames), "n_classes": targets.n_classes, "multilabel": targets.multilabel,
            "groups": {k: list(names) for k, (_, names) in targets.groups.items()},
            "group_by": targets.group_by, "group_excluded": list(targets.group_excluded)}


@dataclass
class TargetSamples:
    """The per-sample outcomes of one record, as ``ScoredTargets`` (``targets``) plus the split positions."""

    index: np.ndarray
    targets: object  # clipbench.scoring.targets.ScoredTargets
    meta: dict
    item: list[str | None] | None = None  # each sample's file (``table.with_items``), where the split names one

    @classmethod
    def from_table(cls, table, meta: dict) -> TargetSamples:
        from clipbench.scoring.targets import ScoredTargets

        names = set(table.column_names)
        groups = {}
        for variable, group_names in (meta.get("groups") or {}).items():
            if GROUP_PREFIX + variable not in names:
                raise ValueError(f"missing group column {GROUP_PREFIX + variable!r}")
            groups[variable] = (column_array(table.column(GROUP_PREFIX + variable), np.int64), list(group_names))
        n_classes = int(meta["n_classes"])
        labels = column_array(table.column("label"), np.int64)
        common = dict(groups=groups, group_by=meta.get("group_by") or "",
                      group_excluded=tuple(meta.get("group_excluded") or ()))
        if meta.get("multilabel"):
            targets = ScoredTargets(labels, None, None, n_classes, scores=fixed_width(table.column("scores")),
                                    positives=fixed_width(table.column("positives")).astype(bool), **common)
        else:
            margin = column_array(table.column("margin"), np.float32) if "margin" in names else None
            targets = ScoredTargets(labels, column_array(table.column("label_rank"), np.int64),
                                    column_array(table.column("predicted"), np.int64), n_classes, margin=margin,
                                    **common)
        return cls(column_array(table.column("index"), np.int64), targets, meta, item_names(table))

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def same_samples(self, other) -> bool:
        if not isinstance(other, TargetSamples) or not np.array_equal(self.index, other.index):
            return False
        a, b = self.targets, other.targets
        same_groups = a.groups.keys() == b.groups.keys() and all(
            np.array_equal(a.groups[k][0], b.groups[k][0]) and a.groups[k][1] == b.groups[k][1] for k in a.groups)
        same_positives = (a.positives is None) == (b.positives is None) and (
            a.positives is None or np.array_equal(a.positives, b.positives))
        return np.array_equal(a.labels, b.labels) and same_groups and same_positives

    def supports(self, metric: str) -> bool:
        return metric in self.targets.available()

    def paired(self, metric: str, new: TargetSamples, n_resamples: int, seed: int):
        """Paired bootstrap of ``new`` against this baseline on the same draws; McNemar for top-1/top-5."""
        from clipbench.scoring.paired import ACCURACY_METRICS, PairedResult, discordant, mcnemar_exact
        from clipbench.scoring.resample import paired

        base_stat, new_stat = self.targets.statistic(metric), new.targets.statistic(metric)
        d = new.targets.value(metric) - self.targets.value(metric)
        d, low, high, p = paired(lambda draws: new_stat(draws) - base_stat(draws), d, len(self), n_resamples, seed)
        if metric in ACCURACY_METRICS:
            k = ACCURACY_METRICS[metric]
            b, c = discordant(self.targets.correct_at(k), new.targets.correct_at(k))
            return PairedResult(metric, "mcnemar", d, low, high, mcnemar_exact(b, c), len(self), (b, c))
        return PairedResult(metric, "bootstrap", d, low, high, p, len(self))

    def describe(self, record: dict, top: int = 10) -> list[str]:
        """Every metric, then the group tables (or the per-class AP of a multi-label set)."""
        t = self.targets
        summary = ", ".join(f"{m} {v:.2f}" for m, v in t.metrics().items())
        lines = [f"{len(self)} samples: {summary}"]
        if t.multilabel:
            lines += ["", "Average precision per class:"]
            rows = [("class", "positives", "AP", "11-point AP")]
            rows += [(r["class"], str(r["positives"]), _pct(r["mean_average_precision"]),
                      _pct(r["mean_average_precision_11pt"])) for r in t.per_class_ap(self.classnames())]
            return lines + text_table(rows)
        for variable, table in t.group_tables().items():
            lines += ["", f"Accuracy per {variable}" + (" (the worst-group variable):" if variable == t.group_by
                                                       else ":")]
            metrics = [k for k in ("top1", "top5") if k in table[0]] if table else []
            rows = [("group", "n", *metrics)]
            rows += [(r["group"], str(r["n"]), *(_pct(r[m]) for m in metrics)) for r in table]
            lines += text_table(rows)
        return lines

    def classnames(self) -> list[str]:
        """One name per class (the file's, else the class number)."""
        names = self.meta.get("classnames") or []
        return [names[i] if i < len(names) else str(i) for i in range(self.targets.n_classes)]


def _pct(value) -> str:
    return "–" if value is None else f"{value:.2f}"
