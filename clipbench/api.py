"""The Python API behind the CLI: ``run`` a suite, ``compare`` result sets, list and clear caches.

``run`` plans models x datasets x tasks from a suite (built-in name or YAML path), loads each
model once, gets features from the feature store (extracting only what is missing), scores the
tasks, appends one record per (model, dataset, task) to ``<results-dir>/results.jsonl`` and
regenerates the leaderboards. Explicit arguments override the suite's options, which override
the defaults below.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipbench.comparison import Comparison
from clipbench.config import Paths
from clipbench.errors import ClipbenchError
from clipbench.fileio import ensure_dir
from clipbench.options import defaults
from clipbench.results import RESULTS_FILE, append_record, read_records, write_leaderboards
from clipbench.suites import Suite, load_suite

if TYPE_CHECKING:  # torch-heavy: imported where used, so `clipbench list` and `compare` start without torch
    from clipbench.datasets.base import DatasetAdapter
    from clipbench.models.base import ImageTextModel
    from clipbench.runner import RunOptions, default_device, limit_indices, limit_split, resolve_options  # noqa: F401

#: Names re-exported from torch-importing modules, resolved on first access (PEP 562).
_LAZY = {name: "clipbench.runner" for name in
         ("RunOptions", "default_device", "limit_indices", "limit_split", "resolve_options")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


log = logging.getLogger(__name__)

#: Used when neither the caller nor the suite sets an option (derived from the one declaration).
DEFAULTS: dict[str, Any] = defaults()


def _split_names(value: str | Sequence[Any] | None) -> list[Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        if not items or any(not v for v in items):
            raise ClipbenchError(f"expected a comma-separated list without empty entries, got {value!r}")
        return items
    items = list(value)
    if not items:
        raise ClipbenchError("expected at least one name")
    return items


def run(
    model: str | ImageTextModel | Sequence[str | ImageTextModel] | None = None,
    suite: str | os.PathLike | Suite = "smoke",
    datasets: str | Sequence[str | DatasetAdapter] | None = None,
    *,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    write: bool = True,
    shard_jobs: bool = False,
    **options: Any,
) -> list[dict]:
    """Evaluate ``model`` (name(s), path(s) or ``ImageTextModel``) on ``suite``; returns the result records.

    ``datasets`` restricts or replaces the suite's datasets (names, or adapter objects for custom
    data). ``options`` are run options by name (``batch_size=64``, ``solver="sklearn"``; see
    ``clipbench list tasks`` and ``clipbench.options``); ``None`` leaves the suite's value. With
    ``write`` the records are appended to ``<results_dir>/results.jsonl`` and the leaderboards
    regenerated.

    Under torchrun (see ``clipbench.distributed``) every rank extracts a slice of each split and
    rank 0 alone scores and writes (other ranks return ``[]``); with ``shard_jobs`` each rank runs
    a share of the (model, dataset) jobs end to end and rank 0 returns everyone's records.
    """
    from clipbench import distributed
    from clipbench.models.base import ImageTextModel
    from clipbench.runner import RunContext, check_task_fits, resolve_options, suite_tasks
    from clipbench.threads import torch_threads

    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    if options.get("offline") is False:  # False means "not forced", never "online despite the suite"
        options["offline"] = None
    if options.get("seeds") is not None:
        options["seeds"] = list(options["seeds"])
    run_options = resolve_options(suite_obj, options, device)
    models = _split_names(model) if not isinstance(model, ImageTextModel) else [model]
    models = models or list(suite_obj.models)
    if not models:
        raise ClipbenchError(f"suite {suite_obj.name!r} names no default model; pass --model")
    dataset_items = _split_names(datasets) or list(suite_obj.datasets)
    paths = Paths.resolve(cache_dir=cache_dir, data_root=data_root, results_dir=results_dir,
                          offline=run_options.offline or None)
    if write:
        _check_results_dir(paths.results_dir)  # fail before hours of work, not after
    adapters = [_adapter(d) for d in dataset_items]  # fail fast on unknown names, before loading models
    tasks = suite_tasks(suite_obj)
    check_task_fits(tasks, adapters)
    with distributed.session(run_options.device) as ctx, torch_threads(run_options.threads):
        jobs = [(i, adapter) for i in range(len(models)) for adapter in adapters]
        if shard_jobs:  # each rank runs its share of whole jobs alone
            jobs, extraction = ctx.share(jobs), distributed.DistContext()
        else:  # every rank extracts a slice of every split; rank 0 scores
            extraction = ctx
        context = RunContext(suite_obj, paths, run_options, progress and ctx.is_main, extraction)
        records, loaded_index, loaded = [], None, None
        for index, adapter in jobs:
            if index != loaded_index:
                loaded_index, loaded = index, None  # free the previous model before loading the next
                loaded = _model(models[index], run_options.device, paths)
            for task in tasks:
                log.info("%s: %s on %s", task.name, loaded.name, adapter.name)
                record = task.run(context, loaded, adapter)
                if record is None:
                    continue
                if write:
                    append_record(paths.results_dir, record)
                records.append(record)
        if shard_jobs and ctx.enabled:  # collective: every rank has appended its records after this
            gathered = ctx.gather_to_main(records)
            records = [r for part in gathered for r in part] if gathered is not None else []
    if write and records:
        write_leaderboards(paths.results_dir)
    return records


def _check_results_dir(results_dir: Path) -> None:
    """One-line error up front if the results dir is unusable or holds records this version cannot read."""
    ensure_dir(results_dir)
    if (results_dir / RESULTS_FILE).is_file():
        read_records(results_dir / RESULTS_FILE)  # raises on a newer schema or a foreign file


def _adapter(item: str | DatasetAdapter) -> DatasetAdapter:
    from clipbench.datasets import get_dataset
    from clipbench.datasets.base import DatasetAdapter

    if isinstance(item, DatasetAdapter):
        return item

    return get_dataset(item)


def _model(spec: str | ImageTextModel, device: str, paths: Paths) -> ImageTextModel:
    from clipbench.models import load_model
    from clipbench.models.base import ImageTextModel

    if isinstance(spec, ImageTextModel):
        return spec.to(device)

    return load_model(spec, device=device, cache_dir=paths.cache_dir, offline=paths.offline)


def compare(new: str | os.PathLike, baseline: str | os.PathLike, max_drop: float = 0.0) -> Comparison:
    """See ``clipbench.comparison.compare``: the regression gate's verdict and its markdown table."""
    from clipbench.comparison import compare as _compare

    return _compare(new, baseline, max_drop)


def list_suites() -> list[dict]:
    from clipbench.suites import describe_suites

    return describe_suites()


def list_models(cache_dir: str | os.PathLike | None = None) -> list[dict]:
    from clipbench.models import describe_models

    return describe_models(cache_dir=cache_dir)


def list_datasets(data_root: str | os.PathLike | None = None) -> list[dict]:
    from clipbench.datasets import describe_datasets

    return describe_datasets(data_root=data_root)


def cache_entries(cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """Feature-store entries and text classifiers with their sizes (for `clipbench cache list`)."""
    from clipbench.features import FeatureStore

    paths = Paths.resolve(cache_dir=cache_dir)
    out = []
    for e in FeatureStore(paths.features_dir).entries():
        out.append({"kind": "features", "path": str(e.path), "dataset": e.key.get("dataset", "?"),
                    "split": e.key.get("split", "?"), "features": e.key.get("features", "?"),
                    "precision": e.key.get("precision", "?"), "n_samples": e.key.get("n_samples"),
                    "complete": e.complete, "size_bytes": e.size_bytes})
    if paths.text_dir.is_dir():
        for f in sorted(paths.text_dir.glob("*.npz")):
            out.append({"kind": "text", "path": str(f), "dataset": "-", "split": "-", "features": "classifier",
                        "precision": "-", "n_samples": None, "complete": f.with_suffix(".json").is_file(),
                        "size_bytes": f.stat().st_size + (f.with_suffix(".json").stat().st_size
                                                          if f.with_suffix(".json").is_file() else 0)})
    return out


def clear_cache(cache_dir: str | os.PathLike | None = None, what: str = "all") -> int:
    """Delete cached features and/or text classifiers (``what``: features|text|all); returns bytes freed."""
    import shutil

    from clipbench.features import FeatureStore

    if what not in ("features", "text", "all"):
        raise ClipbenchError(f"unknown cache part {what!r}; expected features, text or all")
    paths = Paths.resolve(cache_dir=cache_dir)
    freed = 0
    if what in ("features", "all"):
        freed += FeatureStore(paths.features_dir).clear()
    if what in ("text", "all") and paths.text_dir.is_dir():
        freed += sum(f.stat().st_size for f in paths.text_dir.rglob("*") if f.is_file())
        shutil.rmtree(paths.text_dir, ignore_errors=True)
    return freed


def list_tasks() -> list[dict]:
    """Registered tasks: what each scores, on which dataset kinds, with which options (``clipbench list tasks``)."""
    from clipbench.tasks.registry import TASKS

    return [task.describe() for _, task in TASKS.items()]


__all__ = ["DEFAULTS", "RunOptions", "cache_entries", "clear_cache", "compare", "default_device", "limit_indices",
           "limit_split", "list_datasets", "list_models", "list_suites", "list_tasks", "resolve_options", "run"]
