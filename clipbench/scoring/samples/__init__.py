"""Per-sample table kinds: what each task's per-sample file holds, and its paired test.

A kind is a class with ``from_table(table, meta)``, ``same_samples``, ``supports(metric)``,
``paired(metric, new, n_resamples, seed)`` (the regression gate's test) and ``describe(record)``
(``clipbench samples``), plus a ``build_*`` function that makes the table a task logs. Files name
their kind in their metadata; ``clipbench.results.samples`` reads and writes them.

* ``classification`` (zero-shot, linear probe, k-NN): top-5 classes, label rank, confidence;
* ``retrieval`` (zero-shot retrieval): each image's and caption's rank of its correct item;
  resampled by image;
* ``outcomes`` (image-caption selection; image retrieval, one row per query): the outcomes
  the metrics average (correct, AP@R, hit@k).
"""

from __future__ import annotations

import importlib

#: per-sample kinds and the class that reads each ("module:Class"; imported on first use)
KINDS = {
    "classification": "clipbench.scoring.samples.classification:SampleLog",
    "retrieval": "clipbench.scoring.samples.retrieval:RetrievalSamples",
    "outcomes": "clipbench.scoring.samples.outcomes:OutcomeSamples",
}


def kind_class(kind: str):
    """The class that reads per-sample files of ``kind``."""
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)
