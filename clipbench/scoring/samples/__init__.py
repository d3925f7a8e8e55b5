"""Per-sample table kinds: what each task's per-sample file holds, and its paired test.

A kind is a class with ``from_table(table, meta)``, ``same_samples``, ``supports(metric)``,
``paired(metric, new, n_resamples, seed)`` (the regression gate's test) and ``describe(record)``
(``clipbench samples``), plus a ``build_*`` function that makes the table a task logs. Files name
their kind in their metadata; ``clipbench.results.samples`` reads and writes them.

* ``classification`` (zero-shot, linear probe, k-NN): top-5 classes, label rank, confidence;
* ``retrieval`` (zero-shot retrieval): each image's and caption's rank of its correct item;
  resampled by image;
* ``outcomes`` (image-caption selection; image retrieval, one row per query): the outcomes
  the metrics average (correct, AP@R, hit@k);
* ``targets`` (zero-shot on multi-label, binary and grouped sets): the columns every metric of
  ``clipbench.scoring.targets`` follows from (scores and positives, label rank, group codes).
"""

from __future__ import annotations

import importlib

#: per-sample kinds and the class that reads each ("module:Class"; imported on first use)
KINDS = {
    "classification": "clipbench.scoring.samples.classification:SampleLog",
    "retrieval": "clipbench.scoring.samples.retrieval:RetrievalSamples",
    "outcomes": "clipbench.scoring.samples.outcomes:OutcomeSamples",
    "targets": "clipbench.scoring.samples.targets:TargetSamples",
}

#: the function that builds each kind's table from a task's columns (``TaskResult.samples.data``)
BUILDERS = {
    "classification": "clipbench.scoring.samples.classification:build_table",
    "retrieval": "clipbench.scoring.samples.retrieval:build_retrieval_table",
    "outcomes": "clipbench.scoring.samples.outcomes:build_outcome_table",
    "targets": "clipbench.scoring.samples.targets:build_targets_table",
}


def _resolve(table: dict[str, str], kind: str):
    if kind not in table:
        raise ValueError(f"unknown per-sample kind {kind!r} (known: {', '.join(table)})")
    module, name = table[kind].split(":")
    return getattr(importlib.import_module(module), name)


def kind_class(kind: str):
    """The class that reads per-sample files of ``kind``."""
    return _resolve(KINDS, kind)


def build_kind_table(kind: str, data: dict):
    """The pyarrow table of a per-sample ``kind`` from a task's columns (keyword arguments of its builder)."""
    return _resolve(BUILDERS, kind)(**data)
