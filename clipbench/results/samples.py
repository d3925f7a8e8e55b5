"""Per-sample predictions: one Parquet file per record, beside the results, referenced by path and SHA-256.

What a paired significance test (``clipbench.results.significance``) and an error analysis
(``clipbench samples``) need, and nothing more: for each sample of the scored split, its position
in the split (the split's fingerprint names exactly which samples those are), its label, the
top-5 predicted classes with their scores, the rank of the true class and whether top-1 was
right. Scores are the task's own (zero-shot: logits = 100 x cosine; linear probe: softmax
probabilities); ``confidence`` is the softmax probability of the top-1 class either way.

The file is ``<results-dir>/samples/<record_id>.parquet``, written atomically (temporary name,
fsync, rename) before the record that references it is appended, so a record never points at a
half-written file; a crash in between leaves at most an unreferenced file. The record carries
``samples = {"path": "samples/<record_id>.parquet", "sha256": ..., "n": ..., "bytes": ...}``
(path relative to the results directory). Readers verify size, hash, row count, the record id
and the split fingerprint stored in the file, and raise ``SampleFileError`` on any mismatch.

Kinds (``kind`` in the file's metadata; each has its own reader and paired test):

* ``classification`` (zero-shot, linear probe, k-NN): the columns above;
* ``retrieval`` (zero-shot retrieval; ``clipbench.results.samples_retrieval``): one row per query, each
  image and each caption, with the rank of its correct item; resampled by image;
* ``outcomes`` (image-caption selection, image retrieval; ``clipbench.results.samples_outcomes``): one
  row per item or query with the outcomes its metrics average (correct, AP@R, hit@k).

Every kind's log offers ``same_samples``, ``supports(metric)``, ``paired(metric, new)`` (the
regression gate's test) and ``describe(record)`` (``clipbench samples``).

``--log-samples``: ``auto`` (default) logs records of at most ``AUTO_MAX_SAMPLES`` samples
(50,000: ImageNet's validation set and everything smaller), ``always`` logs every record,
``never`` none (booleans in a suite mean always/never). Few-shot probe records are not logged:
their metric is a mean over seeds, each seed a different classifier, so no single prediction per
sample exists; compare falls back to the fixed-threshold rule for them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import atomic_write_bytes, sha256_bytes

log = logging.getLogger(__name__)

SAMPLES_DIR = "samples"
SAMPLES_FORMAT = "clipbench-samples-v1"
#: ``--log-samples auto`` logs a record when its split has at most this many samples.
AUTO_MAX_SAMPLES = 50_000
LOG_SAMPLES_CHOICES = ("auto", "always", "never")
TOPK = 5


class SampleFileError(ClipbenchError):
    """A record's per-sample file is missing, damaged or does not belong to it."""


def valid_log_samples(value) -> bool:
    return isinstance(value, bool) or value in LOG_SAMPLES_CHOICES


def should_log(setting, n_samples: int) -> bool:
    """Whether ``--log-samples`` (auto/always/never or a bool) asks for a file for a split of ``n_samples``."""
    if setting is True or setting == "always":
        return True
    if setting is False or setting == "never":
        return False
    return n_samples <= AUTO_MAX_SAMPLES


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
        from clipbench.results.significance import ACCURACY_METRICS

        return metric in ACCURACY_METRICS or metric == "mean_per_class_recall"

    def paired(self, metric: str, new: SampleLog, n_resamples: int, seed: int):
        """McNemar (accuracies) or paired bootstrap (mean per-class recall) of ``new`` against this baseline."""
        from clipbench.results.significance import paired_test

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
        rows = [("index", "label", "predicted", "confidence", "label rank")]
        rows += [(str(e["index"]), name(e["label"]), name(e["predicted"]), f"{e['confidence']:.3f}",
                  str(e["label_rank"] + 1)) for e in confident_errors(self, top)]
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
            confidence=column_array(cols["confidence"], np.float32), meta=meta)


def column_array(column, dtype) -> np.ndarray:
    return column.to_numpy().astype(dtype)


def fixed_width(column) -> np.ndarray:
    """A FixedSizeList column as a [rows, width] array."""
    flat = column.combine_chunks()
    return flat.flatten().to_numpy(zero_copy_only=False).reshape(-1, flat.type.list_size)


def top_k(scores: np.ndarray, k: int, rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best classes per row [N, k] and their scores, by descending score, ties to the lower class index
    (the order of ``clipbench.tasks.metrics.topk_correct``); a partition per row, not a sort of [N, C]."""
    n, c = scores.shape
    best = np.empty((n, k), dtype=np.int64)
    for a in range(0, n, rows):
        block = scores[a:a + rows]
        kth = np.partition(block, c - k, axis=1)[:, c - k, None]  # the k-th highest score of each row
        above, tied = block > kth, block == kth
        room = k - above.sum(axis=1, keepdims=True)  # how many of the tied classes fit, lowest index first
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
        best[a:a + rows] = np.nonzero(chosen)[1].reshape(-1, k)  # ascending class index within each row
    best_scores = np.take_along_axis(scores, best, axis=1)
    within = np.lexsort((best, -best_scores), axis=1)
    return np.take_along_axis(best, within, axis=1), np.take_along_axis(best_scores, within, axis=1)


def arrow_column(values: np.ndarray):
    """A pyarrow array of a 1-D int64, float32 or bool numpy array, built on its buffer.

    ``pa.array`` would do the same, but pyarrow 26 checks its input against pandas' types and so
    imports pandas (0.3-0.6 s), which nothing else in a run needs.
    """
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        data = pa.py_buffer(np.packbits(values, bitorder="little"))
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, data])
    types = {np.dtype(np.int64): pa.int64(), np.dtype(np.float32): pa.float32()}
    return pa.Array.from_buffers(types[values.dtype], len(values), [None, pa.py_buffer(values)])


def build_table(scores: np.ndarray, labels: np.ndarray, score_kind: str):
    """The pyarrow table of one split's predictions (``score_kind``: logits or probabilities)."""
    import pyarrow as pa

    from clipbench.tasks.metrics import label_rank

    scores = np.ascontiguousarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"expected scores [N, C] and labels [N], got {scores.shape} and {labels.shape}")
    n, c = scores.shape
    k = min(TOPK, c)
    order, top_scores = top_k(scores, k)
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


def write_samples(results_dir: str | os.PathLike, record: dict, scores: np.ndarray, labels: np.ndarray,
                  score_kind: str = "logits", classnames: list[str] | None = None) -> dict:
    """Write ``record``'s classification predictions atomically; returns the reference for ``record["samples"]``."""
    return write_sample_table(results_dir, record, build_table(scores, labels, score_kind), "classification",
                              {"score_kind": score_kind,
                               "classnames": list(classnames) if classnames is not None else None})


def write_sample_table(results_dir: str | os.PathLike, record: dict, table, kind: str, meta: dict | None = None) -> dict:
    """Write one per-sample table of ``kind`` for ``record`` (atomically; zstd Parquet); returns its reference."""
    import pyarrow.parquet as pq

    if kind not in _KINDS:
        raise ValueError(f"unknown per-sample kind {kind!r}")
    full = {"format": SAMPLES_FORMAT, "kind": kind, "record_id": record["record_id"], "model": record.get("model"),
            "dataset": record.get("dataset"), "task": record.get("task"),
            "dataset_fingerprint": record.get("dataset_fingerprint"), **(meta or {})}
    table = table.replace_schema_metadata({"clipbench": json.dumps(full, sort_keys=True)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    rel = f"{SAMPLES_DIR}/{record['record_id']}.parquet"
    atomic_write_bytes(Path(results_dir) / rel, data)
    return {"path": rel, "sha256": sha256_bytes(data), "n": int(table.num_rows), "bytes": len(data)}


#: per-sample kinds and the class that reads each ("module:Class"; imported on first use)
_KINDS = {
    "classification": "clipbench.results.samples:SampleLog",
    "retrieval": "clipbench.results.samples_retrieval:RetrievalSamples",
    "outcomes": "clipbench.results.samples_outcomes:OutcomeSamples",
}


def _kind_class(kind: str):
    import importlib

    module, name = _KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def samples_path(results_dir: str | os.PathLike, record: dict) -> Path | None:
    ref = record.get("samples")
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
        return None
    return Path(results_dir) / ref["path"]


def read_samples(results_dir: str | os.PathLike, record: dict):
    """The record's per-sample log (``SampleLog`` or another kind's), verified against its reference;
    ``SampleFileError`` otherwise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    where = f"{record.get('model')}/{record.get('dataset')}/{record.get('task')}"
    path = samples_path(results_dir, record)
    if path is None:
        raise SampleFileError(f"{where}: the record has no per-sample file")
    ref = record["samples"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SampleFileError(f"{where}: per-sample file {path} unreadable ({exc.strerror or exc})") from exc
    if sha256_bytes(data) != ref.get("sha256"):
        raise SampleFileError(f"{where}: per-sample file {path} does not match the SHA-256 in its record "
                              "(damaged or replaced)")
    try:
        table = pq.read_table(pa.BufferReader(data))
        meta = json.loads((table.schema.metadata or {}).get(b"clipbench", b"{}"))
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise SampleFileError(f"{where}: per-sample file {path} is not a clipbench sample file ({exc})") from exc
    if meta.get("format") != SAMPLES_FORMAT or meta.get("record_id") != record.get("record_id"):
        raise SampleFileError(f"{where}: per-sample file {path} belongs to another record")
    if meta.get("dataset_fingerprint") != record.get("dataset_fingerprint") or table.num_rows != ref.get("n"):
        raise SampleFileError(f"{where}: per-sample file {path} is for other samples than its record")
    kind = meta.get("kind", "classification")  # files written before kinds existed are classification
    if kind not in _KINDS:
        raise SampleFileError(f"{where}: per-sample file {path} has an unknown kind {kind!r}")
    try:
        return _kind_class(kind).from_table(table, meta)
    except (pa.ArrowException, KeyError, ValueError) as exc:
        raise SampleFileError(f"{where}: per-sample file {path} lacks the columns of a {kind} file ({exc})") from exc


# ---------------------------------------------------------------------------------------------
# error analysis for `clipbench samples`


def confident_errors(log_: SampleLog, n: int = 10) -> list[dict]:
    """The ``n`` wrong top-1 predictions with the highest confidence, most confident first."""
    wrong = np.flatnonzero(~log_.correct)
    order = wrong[np.argsort(-log_.confidence[wrong], kind="stable")][:n]
    return [{"index": int(log_.index[i]), "label": int(log_.label[i]), "predicted": int(log_.top5[i, 0]),
             "confidence": float(log_.confidence[i]), "label_rank": int(log_.label_rank[i])} for i in order]


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


def find_record(source: str | os.PathLike, result_id: str) -> tuple[Path, dict]:
    """(results dir, record) of the record whose id is or starts with ``result_id`` (unique)."""
    from clipbench.results.records import RESULTS_FILE, read_records

    path = Path(source).expanduser()
    results_dir, file = (path, path / RESULTS_FILE) if path.is_dir() else (path.parent, path)
    if not file.is_file():
        raise ClipbenchError(f"results not found: {file}")
    matches = [r for r in read_records(file) if str(r.get("record_id", "")).startswith(result_id)]
    if not result_id or not matches:
        raise ClipbenchError(f"no record with id {result_id!r} in {file}")
    if len({r["record_id"] for r in matches}) > 1:
        raise ClipbenchError(f"record id prefix {result_id!r} is ambiguous in {file} ({len(matches)} records)")
    return results_dir, matches[-1]


def describe_record(source: str | os.PathLike, result_id: str, top: int = 10) -> str:
    """Plain text for ``clipbench samples``: the record, then its log's own error analysis."""
    results_dir, record = find_record(source, result_id)
    samples = read_samples(results_dir, record)
    lines = [f"{record['model']} / {record['dataset']} / {record['task']} (record {record['record_id']}, "
             f"split {record.get('split')}, fingerprint {record.get('dataset_fingerprint')})"]
    return "\n".join(lines + samples.describe(record, top))


def text_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Aligned, indented plain-text rows (the first is the header; ``clipbench.foundations.tables``)."""
    from clipbench.foundations.tables import render

    header, body = rows[0], rows[1:]
    if not body:
        return ["  (none)"]
    return ["  " + line for line in render([dict(zip(header, r, strict=True)) for r in body], "table").splitlines()]


def discard_samples(results_dir: str | os.PathLike, record: dict) -> None:
    """Remove the per-sample file of a record that was never stored (its append failed)."""
    path = samples_path(results_dir, record)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
