"""One record per task result, built the same way for every task.

The engine, not the task, writes the record: the core fields (``clipbench.results.schema``), the
primary metric's CI and the per-metric CIs, the task's block under ``record[task.name]``, its
notes, the extraction provenance, the cost, and the per-sample file the record references.
"""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import uuid

from clipbench.datasets.base import DatasetAdapter
from clipbench.engine.context import RunContext
from clipbench.engine.model_facts import model_facts
from clipbench.engine.prompt_files import prompts_block
from clipbench.features.image_pipeline import image_pipeline
from clipbench.foundations import torch_env
from clipbench.models.base import ImageTextModel
from clipbench.results.schema import CORE_NAMES, RESULT_SCHEMA, core_record
from clipbench.tasks.base import TASK_CORE_FIELDS, Task, TaskResult

log = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    import numpy as np

    import clipbench

    return {"clipbench": clipbench.__version__, "torch": torch_env.version(), "numpy": np.__version__,
            "python": platform.python_version()}


def build_record(ctx: RunContext, model: ImageTextModel, adapter: DatasetAdapter, task: Task, result: TaskResult,
                 run_s: float) -> dict:
    """The record of ``result``; ``run_s``: the seconds ``task.run`` took (features included)."""
    unknown = sorted(set(result.core) - set(TASK_CORE_FIELDS))
    if unknown:
        raise TypeError(f"task {task.name} set core fields {unknown}; a task may set only {list(TASK_CORE_FIELDS)}")
    o, split = ctx.options, result.split
    provenance, limited, served_s, lite = ctx.take_record_state()
    primary = task.primary_metric(adapter)
    ci = result.ci or {}
    core = dict(
        schema_version=RESULT_SCHEMA, record_id=uuid.uuid4().hex,
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        model=model.name, model_identity=model.identity, model_family=model.family,
        weights_sha256=model.weights_sha256, preprocess_id=image_pipeline(model, o.decode).preprocess_id,
        dataset=adapter.name, split=split.split, dataset_fingerprint=split.fingerprint,
        n_samples=len(split), task=result.record_task or task.name, primary_metric=primary,
        metrics=result.metrics, ci95=ci.get(primary), C=None, sweep=None, prompt_hash=None,
        suite=ctx.suite.name, suite_version=ctx.suite.version, seed=o.seed,
        precision=o.precision, device=o.device, limit=o.limit if limited else None,
        batch_size=o.batch_size, torch_threads=torch_env.intra_op_threads(),
        versions=versions(), time_extract_s=round(served_s, 4), time_task_s=round(max(0.0, run_s - served_s), 4),
        verify_data=o.verify_data, data_identity=split.fingerprint_inputs,
        tag=o.get("tag"), git=ctx.meter.git(), cost=ctx.meter.record_cost(model.name),
        language=adapter.language if task.uses_text else None,
    )
    core.update(result.core)
    record = core_record(**core)
    if set(ci) - {primary}:  # CIs of more than the primary metric
        record["metric_ci95"] = ci
    if lite:  # scored on a lite suite's subset: its own variant, never a full-set number
        record["lite"] = lite
    record[task.name] = result.block
    prompts = prompts_block(adapter) if task.uses_text else None
    if prompts is not None:  # a user's prompt file: its own variant
        record["prompts"] = prompts
    record["model_facts"] = model_facts(model)
    if result.notes:
        record["notes"] = list(result.notes)
        for note in result.notes:
            log.warning("%s on %s (%s): %s", model.name, adapter.name, record["task"], note)
    if provenance:  # the settings the scored features were actually extracted with
        from clipbench.features import merge_provenance

        record["extraction"] = merge_provenance(provenance)
    return record


def language_mean_record(records: list[dict]) -> dict:
    """The mean over languages of one (model, dataset, task)'s per-language records: each metric averaged over
    the languages (no CI: the languages are not a sample), ``language`` "mean", and the block of the first
    language plus ``languages`` and ``per_language`` (each language's primary metric)."""
    import hashlib

    first, primary = records[0], records[0]["primary_metric"]
    names = [m for m in first["metrics"] if all(isinstance(r["metrics"].get(m), (int, float)) for r in records)]
    metrics = {m: sum(float(r["metrics"][m]) for r in records) / len(records) for m in names}
    languages = [r["language"] for r in records]
    block = dict(first.get(first["task"]) or {})  # the text tasks write their block under their record name
    block.update(languages=languages, per_language={r["language"]: r["metrics"].get(primary) for r in records})
    hashes = "|".join(str(r.get("prompt_hash")) for r in records)
    core = {f: first.get(f) for f in CORE_NAMES}
    core.update(record_id=uuid.uuid4().hex, timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                metrics=metrics, ci95=None, language="mean", cost=None,
                prompt_hash=hashlib.sha256(hashes.encode()).hexdigest()[:32],
                time_extract_s=round(sum(r.get("time_extract_s") or 0 for r in records), 4),
                time_task_s=round(sum(r.get("time_task_s") or 0 for r in records), 4))
    record = core_record(**core)
    for key in ("model_facts", "extraction"):
        if key in first:
            record[key] = first[key]
    record[first["task"]] = block
    return record


def write_sample_file(ctx: RunContext, record: dict, result: TaskResult) -> None:
    """The result's per-sample table beside the results, referenced from ``record`` (when results are
    written and ``--log-samples`` asks for a split of this size)."""
    from clipbench.results.samples import should_log, write_sample_table
    from clipbench.scoring.samples import build_kind_table
    from clipbench.scoring.samples.table import with_items

    table = result.samples
    if table is None or not ctx.write or not should_log(ctx.options.get("log_samples", "auto"), int(table.n)):
        return
    names = result.split.sample_names() if (table.meta or {}).get("index_is_sample", True) else None
    rows = with_items(build_kind_table(table.kind, table.data), names)
    record["samples"] = write_sample_table(ctx.paths.results_dir, record, rows, table.kind, table.meta)
