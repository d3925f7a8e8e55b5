"""The run loop: resolve options, plan models x datasets x tasks, score each through its task and
write its record.

The runner is the only place that loads models, and ``RunContext`` (``clipbench.engine.context``)
the only one that loads splits and features for tasks; the runner knows no task by name. A task
returns a ``TaskResult``; the runner does what is the same for every task: the torchrun rank
check (a non-scoring rank ends the task in ``ctx.features``), timing, cost, the record
(``clipbench.engine.record``), its per-sample file and the append. The leaderboards are
regenerated at the end, and a failed run keeps what completed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from clipbench.datasets.base import DatasetAdapter
from clipbench.datasets.counts import check_counts
from clipbench.datasets.languages import plan_languages
from clipbench.datasets.splits import limit_indices, limit_split  # noqa: F401  (the engine's --limit; api re-exports)
from clipbench.engine import distributed
from clipbench.engine.context import NotScoringRank, RunContext
from clipbench.engine.options import all_options
from clipbench.engine.plan import (
    RunRecords,
    adapter_of,
    check_results_dir,
    keep_completed,
    model_of,
    present_datasets,
    split_names,
)
from clipbench.engine.prompt_files import check_prompts_used, with_run_prompts
from clipbench.engine.record import build_record, language_mean_record, write_sample_file
from clipbench.features.image_pipeline import check_decode_device
from clipbench.foundations import torch_env
from clipbench.foundations.config import Paths, hf_offline
from clipbench.foundations.errors import ClipbenchError
from clipbench.models.base import ImageTextModel
from clipbench.results.records import append_record, write_leaderboards
from clipbench.suites import Suite, load_suite
from clipbench.tasks.base import Task
from clipbench.tasks.registry import get_task

log = logging.getLogger(__name__)


class RunOptions(Mapping):
    """The resolved options of one run (attribute or key access; read-only)."""

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("RunOptions is read-only")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RunOptions({self._values!r})"


def default_device() -> str:
    return torch_env.default_device()


def resolve_options(suite: Suite, overrides: dict[str, Any], device: str | None) -> RunOptions:
    """Caller arguments > suite options (per task, then shared) > declared defaults; bad values are one line."""
    table = all_options()
    unknown = sorted(set(overrides) - set(table))
    if unknown:
        raise ClipbenchError(f"unknown run option {unknown[0]!r}")
    merged = {name: o.default for name, o in table.items()}
    merged.update(suite.options)
    for task_options in suite.task_options.values():
        merged.update(task_options)
    given = {k: v for k, v in overrides.items() if v is not None and not (v is False and table[k].false_unsets)}
    merged.update(given)
    for key, value in merged.items():
        table[key].validate(value)
        merged[key] = table[key].resolved(value)
    owners = [table[key].owner for key in given if table[key].owner]
    for name in dict.fromkeys([*suite.tasks, *owners]):  # suite order, then owners of given options
        get_task(name).check_options(merged)
    for key in given:  # an option of a task the suite does not run is a mistake, not a no-op
        owner = table[key].owner
        if owner and owner not in suite.tasks:
            raise ClipbenchError(f"{table[key].flag} applies to the {get_task(owner).title.lower()}, but suite "
                                 f"{suite.name!r} runs only {', '.join(suite.tasks)}")
    device = torch_env.parse_device(device or default_device(), available=True)
    dev_type = torch_env.device_type(device)
    if merged["precision"] == "fp16" and dev_type != "cuda":
        raise ClipbenchError(f"--precision fp16 needs a CUDA device, but the device is {device}")
    check_decode_device(merged["decode"], dev_type)
    merged["device"] = device
    return RunOptions(merged)


def check_task_fits(tasks: Sequence[Task], adapters: Sequence[DatasetAdapter]) -> None:
    """Every (task, dataset) pair of the plan is one the task can score; fail before loading any model."""
    for task in tasks:
        for adapter in adapters:
            if not task.accepts(adapter):
                kind = getattr(adapter, "kind", "classification")
                if getattr(adapter, "multilabel", False) and kind in task.dataset_kinds:
                    raise ClipbenchError(f"task {task.name} does not apply to {adapter.name} (a multi-label set; "
                                         f"{task.name} scores one label per image: use zeroshot)")
                raise ClipbenchError(f"task {task.name} does not apply to {adapter.name} (a {kind} dataset; "
                                     f"{task.name} takes {', '.join(task.dataset_kinds)})")


def run_task(ctx: RunContext, task: Task, model: ImageTextModel, adapter: DatasetAdapter) -> dict | None:
    """``task`` on (``model``, ``adapter``) as one record with its per-sample file; None on a rank that
    does not score."""
    log.info("%s: %s on %s", task.name, model.name, adapter.name)
    t0 = time.perf_counter()
    try:
        result = task.run(ctx, model, adapter)
    except NotScoringRank:
        result = None
    if result is None:  # this rank extracted its share; rank 0 scores the task
        ctx.take_record_state()
        return None
    record = build_record(ctx, model, adapter, task, result, time.perf_counter() - t0)
    write_sample_file(ctx, record, result)
    return record


def run(model, suite: str | os.PathLike | Suite = "smoke", datasets=None, *, data_root=None, cache_dir=None,
        results_dir=None, device: str | None = None, progress: bool = True, write: bool = True,
        shard_jobs: bool = False, rank: int | None = None, world_size: int | None = None,
        **options: Any) -> RunRecords:
    """The loop behind ``clipbench.api.run`` (see its docstring for the arguments)."""
    from clipbench.engine.balance import job_costs, rank_units
    from clipbench.engine.job_array import array_context, rank_note
    from clipbench.foundations.threads import torch_threads
    from clipbench.results.samples import discard_samples

    array = array_context(rank, world_size)  # a job-array rank or its scoring step: bad values fail first
    if array is not None and array.array == "score" and shard_jobs:
        raise ClipbenchError("--shard-jobs ranks score their own jobs: there is no final step (give --rank)")
    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    run_options = resolve_options(suite_obj, options, device)
    models = [model] if isinstance(model, ImageTextModel) else split_names(model)
    models = models or list(suite_obj.models)
    if not models:
        raise ClipbenchError(f"suite {suite_obj.name!r} names no default model; pass --model")
    dataset_items = split_names(datasets) or list(suite_obj.datasets)
    paths = Paths.resolve(cache_dir=cache_dir, data_root=data_root, results_dir=results_dir,
                          offline=run_options.offline or None)
    if write:
        check_results_dir(paths.results_dir)  # fail before hours of work, not after
    with hf_offline(paths.offline):  # hf: datasets load here
        adapters = [adapter_of(d) for d in dataset_items]  # fail fast on unknown names, before loading models
    adapters = with_run_prompts(adapters, dataset_items, run_options.prompts)  # --prompts: bad files fail here
    task_plan = {id(a): [get_task(t) for t in suite_obj.tasks_for(d)] for a, d in zip(adapters, dataset_items, strict=True)}
    adapters = [a for a in adapters if task_plan[id(a)]]  # --task may leave a dataset with none of its own tasks
    if not adapters:
        raise ClipbenchError(f"none of suite {suite_obj.name!r}'s datasets runs {', '.join(suite_obj.tasks)}")
    if run_options.prompts:
        check_prompts_used(adapters, lambda a: task_plan[id(a)])
    adapters, skipped = present_datasets(adapters, paths.data_root, run_options.skip_missing)
    if not run_options.allow_count_mismatch:  # a wrong copy is one line before any model loads
        check_counts(adapters, paths.data_root)
    for adapter in adapters:  # each dataset's tasks (the suite's, or the dataset's own)
        check_task_fits(task_plan[id(adapter)], [adapter])
    scores = array is None or array.array == "score" or shard_jobs  # an extracting job-array rank logs nothing
    trackers = open_trackers(run_options, paths.results_dir, suite_obj.name) if scores else None  # before any model
    in_languages = {a.name: plan_languages(a, run_options.language, paths.data_root) for a in adapters
                    if any(t.uses_text for t in task_plan[id(a)])}  # a missing language fails here
    with (distributed.session(run_options.device, array) as dist, torch_threads(run_options.threads),
          hf_offline(paths.offline)):
        jobs = [(i, adapter) for i in range(len(models)) for adapter in adapters]
        if shard_jobs:  # the cost-balanced plan: this rank's whole jobs and pieces of big ones (engine.balance)
            costs = job_costs(models, adapters, paths.data_root, run_options)
            work = [(jobs[unit.job], extraction) for unit, extraction in rank_units(costs, dist)]
        else:  # every rank extracts a slice of every split; rank 0 scores
            work = [(job, dist) for job in jobs]
        shows = dist.is_main or dist.array == "rank"  # a job-array rank has its own log
        context = RunContext(suite_obj, paths, run_options, progress and shows, dist, write=write)
        records, loaded_index, loaded = [], None, None

        def keep(record: dict) -> None:
            if write:
                try:
                    append_record(paths.results_dir, record)
                except BaseException:  # no per-sample file without the record that references it
                    discard_samples(paths.results_dir, record)
                    raise
            records.append(record)
            if trackers is not None:  # after the append: a tracker's failure never costs the record
                trackers.log(record, paths.results_dir)

        try:
            for (index, adapter), extraction in work:
                context.dist = extraction
                if index != loaded_index:
                    loaded_index, loaded = index, None  # free the previous model before loading the next
                    load_start = time.perf_counter()
                    loaded = model_of(models[index], run_options.device, paths, verify_data=run_options.verify_data)
                    context.model_loaded(loaded, time.perf_counter() - load_start)
                for task in task_plan[id(adapter)]:
                    done = []
                    for lang_adapter in (in_languages[adapter.name] if task.uses_text else [adapter]):
                        record = run_task(context, task, loaded, lang_adapter)
                        if record is None:
                            continue
                        keep(record)
                        done.append(record)
                    if len(done) > 1:  # the mean over the run's languages, a record of its own
                        keep(language_mean_record(done))
        except BaseException as exc:  # failed or interrupted (Ctrl-C, SIGTERM): keep what completed
            if trackers is not None:
                trackers.close(None, failed=True)
            keep_completed(exc, records, paths.results_dir if write else None)
            raise
        if shard_jobs and dist.backend is not None:  # collective: every rank has appended its records after this
            gathered = dist.gather_to_main(records)
            records = [r for part in gathered for r in part] if gathered is not None else []
    if write and records:
        write_leaderboards(paths.results_dir)
    if trackers is not None:
        for record in records:  # other ranks' records under --shard-jobs (each record is logged once)
            trackers.log(record, paths.results_dir)
        trackers.close(paths.results_dir if write else None)
    out = RunRecords(records, skipped)
    if dist.array == "rank" and not shard_jobs:
        out.note = rank_note(dist, paths.features_dir)
        log.info("%s", out.note)
    return out


def open_trackers(options: RunOptions, results_dir, suite: str):
    """The ``--log-to`` trackers' runs (rank 0 only), or None; not installed or unreachable is one line, here,
    before any model loads."""
    if not options.get("log_to") or not distributed.is_main_process():
        return None
    from clipbench.results.trackers import TrackerSession

    return TrackerSession.open(options.log_to, results_dir, options, suite)
