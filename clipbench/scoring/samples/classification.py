"""The ``classification`` per-sample kind (zero-shot, linear probe, k-NN): one row per test sample.

Each row holds the sample's position in the split (the split's fingerprint names exactly which
samples those are), its label, the top-5 predicted classes with their scores (ties to the lower
class index, ``clipbench.scoring.similarity.top_k``), the rank of the true class and whether
top-1 was right. Scores are the task's own (zero-shot: logits = 100 x cosine; linear probe and
k-NN: probabilities); ``confidence`` is the softmax probability of the top-1 class either way.
The paired test is McNemar for top-1/top-5, a paired bootstrap for mean per-class recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipbench.foundations.escaping import plain_text
from clipbench.scoring.samples.table import arrow_column, column_array, fixed_width, item_names, text_table

TOPK = 5


@dataclass
class SampleLog:
    """The per-sample predictions of one record (arrays of length n; top5 arrays [n, k])."""

    index: np.ndarray  # int64 position within the split (the record's dataset_fingerprint)
    label: np.ndarray  # int64
    top5: np.ndarray  # int64 [n, k], best first; k = min(5, classes)
    top5_scores: np.ndarray  # float32 [n, k]
    label_rank: np.ndarray  # int64, 0 = the true class scored highest
    confidence: np.ndarray  # float32, softmax probability of the top-1 class
    meta: dict
    item: list[str | None] | None = None  # each sample's file (``with_items``), where the split names one

    @property
    def correct(self) -> np.ndarray:
        return self.label_rank == 0

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def correct_at(self, k: int) -> np.ndarray:
        return self.label_rank < k

    def same_samples(self, other) -> bool:
        return (isinstance(other, SampleLog) and np.array_equal(self.index, other.index)
                and np.array_equal(self.label, other.label))

    def supports(self, metric: str) -> bool:
        from clipbench.scoring.paired import ACCURACY_METRICS

        return metric in ACCURACY_METRICS or metric == "mean_per_class_recall"

    def paired(self, metric: str, new: SampleLog, n_resamples: int, seed: int):
        """McNemar (accuracies) or paired bootstrap (mean per-class recall) of ``new`` against this baseline."""
        from clipbench.scoring.paired import paired_test

        classnames = self.meta.get("classnames")
        return paired_test(metric, self, new, len(classnames) if classnames else None, n_resamples, seed)

    def describe(self, record: dict, top: int = 10) -> list[str]:
        """Summary, the most confident errors and the top confusion pairs."""
        names = self.meta.get("classnames") or []

        def name(c: int) -> str:
            return f"{names[c]} ({c})" if 0 <= c < len(names) else str(c)

        n, right = len(self), int(self.correct.sum())
        lines = [f"{n} samples, {right} right at top-1 ({100.0 * right / max(n, 1):.2f}%), "
                 f"{int(self.correct_at(5).sum())} within the top 5", "", "Most confident errors:"]
        rows = [("index", "label", "predicted", "confidence", "label rank", *(("item",) if self.item else ()))]
        rows += [(str(e["index"]), name(e["label"]), name(e["predicted"]), f"{e['confidence']:.3f}",
                  str(e["label_rank"] + 1), *((plain_text(str(e["item"])),) if self.item else ()))
                 for e in confident_errors(self, top)]
        lines += text_table(rows)
        lines += ["", "Top confusion pairs (true -> predicted):"]
        rows = [("label", "predicted", "count", "% of class")]
        rows += [(name(p["label"]), name(p["predicted"]), str(p["count"]), f"{p['share_of_class']:.1f}")
                 for p in confusion_pairs(self, top)]
        lines += text_table(rows)
        return lines

    @classmethod
    def from_table(cls, table, meta: dict) -> SampleLog:
        cols = {name: table.column(name) for name in
                ("index", "label", "top5", "top5_scores", "label_rank", "confidence")}
        return cls(
            index=column_array(cols["index"], np.int64), label=column_array(cols["label"], np.int64),
            top5=fixed_width(cols["top5"]).astype(np.int64), top5_scores=fixed_width(cols["top5_scores"]).astype(np.float32),
            label_rank=column_array(cols["label_rank"], np.int64),
            confidence=column_array(cols["confidence"], np.float32), meta=meta, item=item_names(table))


def build_table(scores: np.ndarray, labels: np.ndarray, score_kind: str):
    """The pyarrow table of one split's predictions (``score_kind``: logits or probabilities)."""
    import pyarrow as pa

    from clipbench.scoring.classification import label_rank
    from clipbench.scoring.similarity import top_k

    scores = np.ascontiguousarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"expected scores [N, C] and labels [N], got {scores.shape} and {labels.shape}")
    n, c = scores.shape
    k = min(TOPK, c)
    order = top_k(scores, k, rows=4096)
    top_scores = np.take_along_axis(scores, order, axis=1)
    rank = label_rank(scores, labels)
    if score_kind == "probabilities":
        confidence = top_scores[:, 0].astype(np.float32)
    elif score_kind == "logits":  # softmax of the top-1 class: exp(max - logsumexp), the max being top-1
        top = top_scores[:, 0]
        confidence = (1.0 / np.exp(scores - top[:, None]).sum(axis=1)).astype(np.float32)
    else:
        raise ValueError(f"unknown score kind {score_kind!r}")
    columns = {
        "index": arrow_column(np.arange(n, dtype=np.int64)),
        "label": arrow_column(labels),
        "top5": pa.FixedSizeListArray.from_arrays(arrow_column(order.ravel()), k),
        "top5_scores": pa.FixedSizeListArray.from_arrays(arrow_column(top_scores.ravel()), k),
        "label_rank": arrow_column(rank.astype(np.int64)),
        "correct": arrow_column(rank == 0),
        "confidence": arrow_column(confidence),
    }
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def confident_errors(log_: SampleLog, n: int = 10) -> list[dict]:
    """The ``n`` wrong top-1 predictions with the highest confidence, most confident first."""
    wrong = np.flatnonzero(~log_.correct)
    order = wrong[np.argsort(-log_.confidence[wrong], kind="stable")][:n]
    return [{"index": int(log_.index[i]), "label": int(log_.label[i]), "predicted": int(log_.top5[i, 0]),
             "confidence": float(log_.confidence[i]), "label_rank": int(log_.label_rank[i]),
             **({"item": log_.item[i]} if log_.item else {})} for i in order]


def confusion_pairs(log_: SampleLog, n: int = 10) -> list[dict]:
    """The ``n`` most frequent (true class, predicted class) pairs among the errors."""
    wrong = ~log_.correct
    pairs: dict[tuple[int, int], int] = {}
    for t, p in zip(log_.label[wrong].tolist(), log_.top5[wrong, 0].tolist(), strict=True):
        pairs[(t, p)] = pairs.get((t, p), 0) + 1
    support = np.bincount(log_.label)
    ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [{"label": t, "predicted": p, "count": c, "share_of_class": 100.0 * c / support[t]}
            for (t, p), c in ranked]
