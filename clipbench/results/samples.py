"""Per-sample files: one Parquet file per record, beside the results, referenced by path and SHA-256.

What a paired significance test (``clipbench.results.significance``) and an error analysis
(``clipbench samples``) need: the per-sample table of the record's kind. The kinds themselves (what
their rows hold, their paired tests, their error analysis) live in ``clipbench.scoring.samples``;
this module writes, finds and verifies the files.

The file is ``<results-dir>/samples/<record_id>.parquet``, written atomically (temporary name,
fsync, rename) before the record that references it is appended, so a record never points at a
half-written file; a crash in between leaves at most an unreferenced file. The record carries
``samples = {"path": "samples/<record_id>.parquet", "sha256": ..., "n": ..., "bytes": ...}``
(path relative to the results directory). Readers verify size, hash, row count, the record id
and the split fingerprint stored in the file, and raise ``SampleFileError`` on any mismatch.

Each file names its ``kind`` in its metadata (``clipbench.scoring.samples.KINDS``); files written
before kinds existed are ``classification``.

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
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import plain_text
from clipbench.foundations.fileio import atomic_write_bytes, sha256_bytes
from clipbench.scoring.samples import KINDS, kind_class

log = logging.getLogger(__name__)

SAMPLES_DIR = "samples"
SAMPLES_FORMAT = "clipbench-samples-v1"
#: ``--log-samples auto`` logs a record when its split has at most this many samples.
AUTO_MAX_SAMPLES = 50_000
LOG_SAMPLES_CHOICES = ("auto", "always", "never")


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


def write_sample_table(results_dir: str | os.PathLike, record: dict, table, kind: str, meta: dict | None = None) -> dict:
    """Write one per-sample table of ``kind`` for ``record`` (atomically; zstd Parquet); returns its reference."""
    import pyarrow.parquet as pq

    if kind not in KINDS:
        raise ValueError(f"unknown per-sample kind {kind!r}")
    full = {"format": SAMPLES_FORMAT, "kind": kind, "record_id": record["record_id"], "model": record.get("model"),
            "dataset": record.get("dataset"), "task": record.get("task"),
            "dataset_fingerprint": record.get("dataset_fingerprint"), **(meta or {})}
    table = table.replace_schema_metadata({"clipbench": json.dumps(full, sort_keys=True)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    rel = f"{SAMPLES_DIR}/{record['record_id']}.parquet"
    atomic_write_bytes(Path(results_dir) / rel, data, within=results_dir)  # a symlinked samples/ is refused
    return {"path": rel, "sha256": sha256_bytes(data), "n": int(table.num_rows), "bytes": len(data)}


def samples_path(results_dir: str | os.PathLike, record: dict) -> Path | None:
    """The per-sample file a record references; None when it references none. A reference is untrusted: only a
    plain file name under ``samples/`` (what ``write_sample_table`` writes) is followed, never ``..``, an absolute
    path or a control character."""
    ref = record.get("samples")
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
        return None
    rel = ref["path"]
    folder, _, name = rel.partition("/")
    if (folder != SAMPLES_DIR or not name.endswith(".parquet") or "/" in name or name.startswith(".")
            or any(ord(ch) < 32 or ch == "\x7f" for ch in name)):
        where = f"{record.get('model')}/{record.get('dataset')}/{record.get('task')}"
        raise SampleFileError(f"{plain_text(where)}: the record's per-sample reference {plain_text(rel)!r} is not a file "
                              f"under {SAMPLES_DIR}/ (a damaged or hand-edited record)")
    return Path(results_dir) / SAMPLES_DIR / name


def read_samples(results_dir: str | os.PathLike, record: dict):
    """The record's per-sample log (``SampleLog`` or another kind's), verified against its reference;
    ``SampleFileError`` otherwise."""
    import pyarrow as pa

    table, meta, kind, where, path = _verified_table(results_dir, record)
    try:
        return kind_class(kind).from_table(table, meta)
    except (pa.ArrowException, KeyError, ValueError) as exc:
        raise SampleFileError(f"{where}: per-sample file {path} lacks the columns of a {kind} file ({exc})") from exc


def _verified_table(results_dir: str | os.PathLike, record: dict):
    """(arrow table, metadata, kind, where, path) of the record's per-sample file, checked against its reference
    (size, SHA-256, record id, split fingerprint, row count, a known kind)."""
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
    if kind not in KINDS:
        raise SampleFileError(f"{where}: per-sample file {path} has an unknown kind {kind!r}")
    return table, meta, kind, where, path


def verified_table(results_dir: str | os.PathLike, record: dict):
    """(arrow table, kind) of the record's per-sample file, verified as ``read_samples`` does (``clipbench publish``
    copies the rows as stored)."""
    table, _, kind, _, _ = _verified_table(results_dir, record)
    return table, kind


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


def sample_rows(source: str | os.PathLike, result_id: str) -> list[dict]:
    """Every row of one record's per-sample file as stored (verified first), for ``clipbench samples --format
    json|csv``: what a script needs to redo any analysis, one dict per sample in split order."""
    results_dir, record = find_record(source, result_id)
    table, *_ = _verified_table(results_dir, record)
    return table.to_pylist()


def discard_samples(results_dir: str | os.PathLike, record: dict) -> None:
    """Remove the per-sample file of a record that was never stored (its append failed)."""
    path = samples_path(results_dir, record)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
