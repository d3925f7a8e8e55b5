"""The result record, defined in code: the core fields every record carries, with their types.

A record is one JSON object per (model, dataset, task) in ``results.jsonl``. Its core fields are
declared here once (``CORE_FIELDS``); the engine (``clipbench.engine.record``) builds every record
through ``core_record``, which refuses a missing, unknown or mistyped core field, so a record can
never be written half filled. Readers (``clipbench.results.records.read_records``) check the fields
marked ``checked_on_read``, the ones compare, report and leaderboards rely on, and see every record
in today's shape (``upgrade_record``). docs/ARCHITECTURE.md shows an example record.

Schema versions:

* 1: the task's own fields were partly at the top level (retrieval's ``recall_k``, ``chance``, ...;
  selection's ``per_subset``, ...; the probe's ``convergence``, few-shot ``per_seed``, ...) and partly
  in a block (``probe``, ``knn``, ``image_retrieval``); ``primary_metric`` could be missing (top-1).
* 2: the task's fields are all in ``record[<task name>]`` (the task's ``TaskResult.block``; the
  linear probe's, few-shot included, under ``linear_probe``); the engine adds ``metric_ci95`` (the CI
  of every metric, where the task gives more than the primary's), ``model_facts`` (architecture,
  family, params, image_gflops, resolution, from the loaded model), ``notes``, ``samples`` and
  ``extraction``.
"""

from __future__ import annotations

from dataclasses import dataclass

RESULT_SCHEMA = 2
#: The primary metric of a schema-1 record written before records named theirs.
LEGACY_PRIMARY_METRIC = "top1"


@dataclass(frozen=True)
class RecordField:
    """One core field: its JSON types (None is allowed unless ``required``), and what it means."""

    name: str
    types: tuple[type, ...]
    doc: str
    required: bool = False  # readers refuse a record without it
    checked_on_read: bool = False  # readers refuse a record where it has another type


_NUM = (int, float)
CORE_FIELDS: tuple[RecordField, ...] = (
    RecordField("schema_version", (int,), "record schema (absent: 1); a newer one is refused by older readers",
                False, True),
    RecordField("record_id", (str,), "uuid4 hex; names the per-sample file"),
    RecordField("timestamp", (str,), "ISO-8601 UTC, seconds"),
    RecordField("model", (str,), "model name as given (or its registry name)", True, True),
    RecordField("model_identity", (str,), "hash of the weights and architecture: what compare matches", False, True),
    RecordField("model_family", (str,), "ViT, ResNet, ..."),
    RecordField("weights_sha256", (str,), "SHA-256 of the checkpoint file, where there is one"),
    RecordField("preprocess_id", (str,), "names the exact image preprocessing"),
    RecordField("dataset", (str,), "dataset name or spec", True, True),
    RecordField("split", (str,), "the scored split"),
    RecordField("dataset_fingerprint", (str,), "hash of the scored samples' data and subset", False, True),
    RecordField("n_samples", (int,), "samples (images or items) scored", False, True),
    RecordField("task", (str,), "the record's task name (linear_probe_<K>shot for few-shot)", True, True),
    RecordField("primary_metric", (str,), "the metric leaderboards, compare and report use", False, True),
    RecordField("metrics", (dict,), "metric name -> number (percent for accuracies and recalls)", True, True),
    RecordField("ci95", (dict,), "{low, high}: bootstrap 95% interval of the primary metric", False, True),
    RecordField("C", _NUM, "the linear probe's chosen inverse regularisation"),
    RecordField("sweep", (list,), "the probe's validation curve [[C, val score], ...]"),
    RecordField("prompt_hash", (str,), "hash of the exact class prompts or captions encoded"),
    RecordField("suite", (str,), "the suite's name"),
    RecordField("suite_version", (int,), "the suite's version"),
    RecordField("seed", (int,), "seed of carving, --limit, bootstrap and the probe"),
    RecordField("precision", (str,), "fp32, fp16 or bf16 (autocast)", False, True),
    RecordField("device", (str,), "the --device asked for"),
    RecordField("limit", (int,), "--limit when it cut a split, else null", False, True),
    RecordField("batch_size", (int,), "images per forward pass"),
    RecordField("torch_threads", (int,), "torch intra-op threads of the run; null when torch was not loaded"),
    RecordField("versions", (dict,), "clipbench, torch, numpy and python versions"),
    RecordField("time_extract_s", _NUM, "seconds to obtain the features (cache hits are fast)"),
    RecordField("time_task_s", _NUM, "seconds to score the task"),
    RecordField("verify_data", (bool,), "whether the fingerprint hashed file contents"),
    RecordField("data_identity", (dict,), "what the fingerprint hashed (files, manifest, content hash)"),
    RecordField("tag", (str,), "--tag"),
    RecordField("git", (dict,), "{commit, dirty} of the working directory, or null"),
    RecordField("cost", (dict,), "images/s, seconds per phase, peak memory, device name"),
    RecordField("language", (str,), "language of the prompts or captions (en, zh, ...; mean: the mean over the "
                "run's languages); null for tasks that encode no text and records from before languages", False, True),
)
CORE_NAMES = frozenset(f.name for f in CORE_FIELDS)
#: optional, engine-added fields readers rely on when present
READ_CHECKED_EXTRAS: dict[str, tuple[type, ...]] = {"probe": (dict,), "variant": (str,), "model_facts": (dict,),
                                                     "metric_ci95": (dict,), "prompts": (dict,)}


def primary_metric(record: dict) -> str:
    """The metric a record is ranked, gated and reported by."""
    return record.get("primary_metric") or LEGACY_PRIMARY_METRIC


def upgrade_record(record: dict) -> dict:
    """``record`` in today's shape (see the schema versions above); a current record is returned as is.

    Each task declares where its schema-1 fields were (``Task.legacy_block``, ``Task.legacy_fields``),
    so this names no task; a record of a task no longer registered keeps its fields where they are.
    """
    if record.get("schema_version", 1) >= RESULT_SCHEMA:
        return record
    from clipbench.tasks.registry import task_for_record

    out = dict(record, primary_metric=primary_metric(record))
    task = task_for_record(str(record.get("task", "")))
    if task is not None:
        block = dict(out.pop(task.legacy_block, None) or {}) if task.legacy_block else dict(out.get(task.name) or {})
        for name in task.legacy_fields:
            if name in out:
                block[name] = out.pop(name)
        out[task.name] = block
    return out


def type_problem(name: str, value, types: tuple[type, ...]) -> str | None:
    """Why ``value`` is not one of ``types`` (bools are not numbers), or None."""
    if value is None or (isinstance(value, types) and not (isinstance(value, bool) and bool not in types)):
        return None
    kind = "null" if value is None else type(value).__name__
    return f"{name!r} is {kind}, expected {' or '.join(t.__name__ for t in types)}"


def core_record(**values) -> dict:
    """A record holding exactly the core fields, each of its declared type (``TypeError`` otherwise)."""
    unknown = sorted(set(values) - CORE_NAMES)
    missing = [f.name for f in CORE_FIELDS if f.name not in values]
    if unknown or missing:
        raise TypeError(f"core record fields: unknown {unknown}, missing {missing}")
    for field in CORE_FIELDS:
        problem = type_problem(field.name, values[field.name], field.types)
        if problem or (field.required and values[field.name] is None):
            raise TypeError(f"core record field {problem or field.name + ' is required'}")
    return {f.name: values[f.name] for f in CORE_FIELDS}
