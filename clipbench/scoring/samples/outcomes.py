"""Per-sample file of a task whose metrics are means of one outcome per item: selection, image retrieval.

One row per item (image-caption selection) or query (image retrieval): its position in the split
(``index``), optionally its ``subset`` and ``group``, and one column per outcome (booleans such
as ``correct`` or ``hit@5``, or numbers such as ``ap_at_r``). The file's metadata maps each
metric to its column (``metrics``: e.g. ``{"accuracy": "correct"}``, metric = 100 x the column's
mean) and names the column to sort errors by (``sort_column``, lowest first: the selection margin
or the query's AP) and the columns to show beside them (``show_columns``, e.g. the captions).
``index_is_sample: false`` says a row's ``index`` numbers the task's items (WinoGAViL's cues), not the
split's samples: such rows get no file name and no thumbnail.

The paired test is McNemar for right/wrong columns and a paired bootstrap otherwise
(``clipbench.scoring.paired.paired_outcomes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipbench.foundations.escaping import plain_text
from clipbench.scoring.samples.table import column_array, item_names, text_table


def build_outcome_table(index: np.ndarray, outcomes: dict[str, np.ndarray], subset=None, group=None):
    """The pyarrow table of per-item outcomes (``outcomes``: column name -> [N] values)."""
    import pyarrow as pa

    index = np.asarray(index, np.int64)
    columns = {"index": pa.array(index)}
    if subset is not None:
        columns["subset"] = pa.array([str(s) for s in subset], type=pa.string())
    if group is not None:
        columns["group"] = pa.array([None if g is None else str(g) for g in group], type=pa.string())
    for name, values in outcomes.items():
        values = np.asarray(values)
        if values.shape != index.shape:
            raise ValueError(f"outcome {name!r} has shape {values.shape}, expected {index.shape}")
        columns[name] = pa.array(values.tolist(), type=pa.string()) if values.dtype == object else pa.array(values)
    return pa.table(columns)


@dataclass
class OutcomeSamples:
    """Per-item outcomes of one record; ``columns`` holds every outcome column by name."""

    index: np.ndarray
    subset: list[str] | None
    group: list[str | None] | None
    columns: dict[str, np.ndarray]
    meta: dict
    item: list[str | None] | None = None  # each item's file (``table.with_items``), where the split names one

    @classmethod
    def from_table(cls, table, meta: dict) -> OutcomeSamples:
        names = set(table.column_names)
        metric_columns = dict(meta.get("metrics") or {})
        missing = sorted(set(metric_columns.values()) - names)
        if missing:
            raise ValueError(f"missing outcome column(s) {missing}")
        columns = {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names
                   if c not in ("index", "subset", "group", "item")}
        return cls(column_array(table.column("index"), np.int64),
                   table.column("subset").to_pylist() if "subset" in names else None,
                   table.column("group").to_pylist() if "group" in names else None, columns, meta, item_names(table))

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def _column(self, metric: str) -> np.ndarray:
        return self.columns[self.meta["metrics"][metric]]

    def same_samples(self, other) -> bool:
        return (isinstance(other, OutcomeSamples) and np.array_equal(self.index, other.index)
                and self.subset == other.subset and self.group == other.group)

    def supports(self, metric: str) -> bool:
        return metric in (self.meta.get("metrics") or {})

    def paired(self, metric: str, new: OutcomeSamples, n_resamples: int, seed: int):
        from clipbench.scoring.paired import paired_outcomes

        return paired_outcomes(metric, self._column(metric), new._column(metric), n_resamples, seed)

    def describe(self, record: dict, top: int = 10) -> list[str]:
        """Each metric, then the items with the lowest ``sort_column`` (the clearest failures)."""
        metrics = self.meta.get("metrics") or {}
        summary = ", ".join(f"{m} {100.0 * float(np.mean(self.columns[c])):.2f}" for m, c in metrics.items())
        lines = [f"{len(self)} {self.meta.get('unit', 'items')}: {summary}"]
        if self.subset is not None and len(set(self.subset)) > 1 and metrics:
            first = next(iter(metrics))
            values = self._column(first).astype(np.float64)
            subsets = np.asarray(self.subset, dtype=object)
            lines += ["", f"{first} per subset:"]
            rows = [("subset", "n", first)]
            rows += [(name, str(int((subsets == name).sum())), f"{100.0 * values[subsets == name].mean():.2f}")
                     for name in dict.fromkeys(self.subset)]
            lines += text_table(rows)
        sort = self.meta.get("sort_column")
        if sort in self.columns:
            worst = np.argsort(self.columns[sort].astype(np.float64), kind="stable")[:top]
            shown = [c for c in self.meta.get("show_columns") or [c for c in self.columns if c != sort][:4]
                     if c in self.columns]
            lines += ["", f"Lowest {sort}:"]
            rows = [("index", *(["subset"] if self.subset is not None else []), sort, *shown,
                     *(["item"] if self.item else []))]
            for i in worst:
                rows.append((str(int(self.index[i])), *([self.subset[i]] if self.subset is not None else []),
                             _cell(self.columns[sort][i]), *(_cell(self.columns[c][i]) for c in shown),
                             *([plain_text(str(self.item[i]))] if self.item else [])))
            lines += text_table(rows)
        return lines


def _cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)
