"""The Python API behind the CLI: ``run`` a suite, ``compare`` result sets, list and clear caches.

``run`` plans models x datasets x tasks from a suite (built-in name or YAML path), loads each
model once, gets features from the feature store (extracting only what is missing), scores the
tasks, appends one record per (model, dataset, task) to ``<results-dir>/results.jsonl`` and
regenerates the leaderboards. Explicit arguments override the suite's options, which override
the defaults below.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import platform
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clipbench import distributed
from clipbench.comparison import Comparison
from clipbench.config import Paths, hf_offline
from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.errors import ClipbenchError
from clipbench.features import FeatureStore, extract_features
from clipbench.fileio import check_writable, ensure_dir
from clipbench.metrics import DEFAULT_BOOTSTRAP, bootstrap_ci
from clipbench.models.base import ImageTextModel
from clipbench.results import (
    LEADERBOARD_FILE,
    PIVOT_FILE,
    RESULT_SCHEMA,
    RESULTS_FILE,
    append_record,
    read_records,
    write_leaderboards,
)
from clipbench.suites import Suite, load_suite
from clipbench.threads import torch_threads

log = logging.getLogger(__name__)

#: Used when neither the caller nor the suite sets an option.
DEFAULTS: dict[str, Any] = {
    "batch_size": 256, "workers": 0, "precision": "fp32", "limit": None, "seed": 0,
    "probe_features": "projected", "solver": "torch", "fewshot_k": None, "seeds": None,
    "bootstrap": DEFAULT_BOOTSTRAP, "val_fraction": 0.2, "offline": False, "per_class": False,
    "threads": None,
}


@dataclass(frozen=True)
class RunOptions:
    batch_size: int
    workers: int
    precision: str
    limit: int | None
    seed: int
    probe_features: str
    solver: str
    fewshot_k: int | None
    seeds: tuple[int, ...] | None
    bootstrap: int
    val_fraction: float
    offline: bool
    per_class: bool
    device: str
    threads: int | None = None  # torch intra-op threads for the run (None: torch's default)


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


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_options(suite: Suite, overrides: dict[str, Any], device: str | None) -> RunOptions:
    """Caller arguments > suite options > DEFAULTS; conflicting combinations are one-line errors."""
    merged = dict(DEFAULTS)
    merged.update(suite.options)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    from clipbench.suites import OPTIONS

    for key, value in merged.items():
        if value is None:
            continue
        check, what = OPTIONS[key]
        if not check(list(value) if key == "seeds" else value):
            raise ClipbenchError(f"{key.replace('_', '-')} must be {what}, got {value!r}")
    if merged["seeds"] is not None and merged["fewshot_k"] is None:
        raise ClipbenchError("--seeds only applies to few-shot probes; give --fewshot-k K as well")
    probe_only = [k for k in ("fewshot_k", "seeds") if overrides.get(k) is not None]
    probe_only += [k for k in ("probe_features", "solver") if overrides.get(k) is not None]
    if probe_only and "linear_probe" not in suite.tasks:
        flag = probe_only[0].replace("_", "-")
        raise ClipbenchError(f"--{flag} applies to the linear probe, but suite {suite.name!r} runs only "
                             f"{', '.join(suite.tasks)}")
    device = device or default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ClipbenchError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ClipbenchError(f"--device {device} requested but CUDA is not available here")
    if merged["precision"] == "fp16" and dev.type != "cuda":
        raise ClipbenchError(f"--precision fp16 needs a CUDA device, but the device is {device}")
    seeds = tuple(merged["seeds"]) if merged["seeds"] is not None else ((merged["seed"],) if merged["fewshot_k"]
                                                                        else None)
    return RunOptions(
        batch_size=merged["batch_size"], workers=merged["workers"], precision=merged["precision"],
        limit=merged["limit"], seed=merged["seed"], probe_features=merged["probe_features"],
        solver=merged["solver"], fewshot_k=merged["fewshot_k"], seeds=seeds, bootstrap=merged["bootstrap"],
        val_fraction=float(merged["val_fraction"]), offline=bool(merged["offline"]),
        per_class=bool(merged["per_class"]), device=str(dev), threads=merged["threads"],
    )


def limit_indices(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Exactly ``limit`` sorted positions, class-stratified: each class gets its proportional share
    (largest remainder), at least one sample per class when ``limit`` allows, picked by a seeded shuffle."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = limit * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    if limit >= len(classes):
        quota = np.maximum(quota, 1)
    quota = np.minimum(quota, counts)
    while quota.sum() < limit:  # hand out the remainder to the largest fractional parts
        room = np.where(quota < counts, exact - quota, -np.inf)
        quota[int(np.argmax(room))] += 1
    while quota.sum() > limit:  # the at-least-one rule overshot: take from the most over-served class
        excess = np.where(quota > 1, quota - exact, -np.inf)
        quota[int(np.argmax(excess))] -= 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))


def limit_split(split: SplitData, limit: int | None, seed: int = 0) -> SplitData:
    """``--limit``: a seeded class-stratified subset of exactly ``limit`` samples, kept in split order.

    Stratified rather than the first N so that class-sorted datasets keep every class (the probe
    needs each class in its training data); the subset is named in the split's fingerprint.
    """
    if limit is None or limit >= len(split):
        return split
    return split.subset(limit_indices(split.labels, limit, seed), f"limit={limit}:seed={seed}:stratified")


def _versions() -> dict[str, str]:
    import clipbench

    return {"clipbench": clipbench.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


class _Runner:
    """State of one ``run`` call: paths, options, the feature store, the suite."""

    def __init__(self, suite: Suite, paths: Paths, options: RunOptions, progress: bool,
                 dist: distributed.DistContext | None = None) -> None:
        self.suite, self.paths, self.options, self.progress = suite, paths, options, progress
        self.store = FeatureStore(paths.features_dir)
        self.dist = dist or distributed.DistContext()  # ranks that share each split's extraction

    def features(self, model: ImageTextModel, split: SplitData, projected: bool = True):
        """The split's features; under torchrun every rank extracts a slice and only rank 0 gets them (else None)."""
        o = self.options
        if self.dist.enabled:
            return distributed.extract_features_sharded(
                model, split, self.store, self.dist, projected=projected, precision=o.precision,
                batch_size=o.batch_size, workers=o.workers, progress=self.progress)
        return extract_features(model, split, self.store, projected=projected, precision=o.precision,
                                batch_size=o.batch_size, workers=o.workers, progress=self.progress)

    def base_record(self, model: ImageTextModel, adapter: DatasetAdapter, split: SplitData, task: str) -> dict:
        o = self.options
        return {
            "schema_version": RESULT_SCHEMA, "record_id": uuid.uuid4().hex,
            "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "model": model.name, "model_identity": model.identity, "model_family": model.family,
            "weights_sha256": model.weights_sha256, "preprocess_id": model.preprocess_id,
            "dataset": adapter.name, "split": split.split, "dataset_fingerprint": split.fingerprint,
            "n_samples": len(split), "task": task, "primary_metric": adapter.primary_metric,
            "metrics": {}, "ci95": None, "C": None, "sweep": None, "prompt_hash": None,
            "suite": self.suite.name, "suite_version": self.suite.version, "seed": o.seed,
            "precision": o.precision, "device": o.device, "limit": o.limit, "batch_size": o.batch_size,
            "torch_threads": torch.get_num_threads(),
            "versions": _versions(), "time_extract_s": None, "time_task_s": None,
        }

    # --- tasks --------------------------------------------------------------------------------
    def zeroshot(self, model: ImageTextModel, adapter: DatasetAdapter) -> dict:
        from clipbench.tasks.zeroshot import zeroshot
        from clipbench.text_classifier import prompt_hash, text_classifier

        o = self.options
        split = limit_split(adapter.load_split(adapter.evaluation_split, self.paths.data_root), o.limit, o.seed)
        t0 = time.perf_counter()
        feats = self.features(model, split)
        if feats is None:  # not rank 0 of a torchrun: rank 0 scores the task
            return None
        t1 = time.perf_counter()
        prompts = adapter.class_prompts()
        weights = text_classifier(model, prompts, self.paths.text_dir, batch_size=o.batch_size, precision=o.precision)
        result = zeroshot(feats.features, feats.labels, weights, adapter.primary_metric, o.bootstrap, o.seed,
                          adapter.classnames if o.per_class else None)
        record = self.base_record(model, adapter, split, "zeroshot")
        record.update(metrics=result.metrics, ci95=result.ci95, prompt_hash=prompt_hash(prompts),
                      time_extract_s=round(t1 - t0, 4), time_task_s=round(time.perf_counter() - t1, 4))
        if result.per_class is not None:
            record["per_class"] = result.per_class
        return record

    def linear_probe(self, model: ImageTextModel, adapter: DatasetAdapter) -> dict:
        from clipbench.datasets import probe_splits

        o = self.options
        train, val, test = probe_splits(adapter, self.paths.data_root, o.val_fraction, o.seed)
        train, val, test = (limit_split(s, o.limit, o.seed) for s in (train, val, test))
        projected = o.probe_features == "projected"
        t0 = time.perf_counter()
        f_train, f_val, f_test = (self.features(model, s, projected) for s in (train, val, test))
        if f_test is None:  # not rank 0 of a torchrun: rank 0 scores the task
            return None
        t1 = time.perf_counter()
        if o.fewshot_k:
            record = self._fewshot(model, adapter, test, (f_train, f_val, f_test))
        else:
            record = self._full_probe(model, adapter, test, (f_train, f_val, f_test))
        record.update(time_extract_s=round(t1 - t0, 4), time_task_s=round(time.perf_counter() - t1, 4),
                      probe={"features": o.probe_features, "solver": o.solver, "val_fraction": o.val_fraction,
                             "n_train": len(train), "n_val": len(val),
                             "train_fingerprint": train.fingerprint, "val_fingerprint": val.fingerprint})
        return record

    def _probe_kwargs(self, adapter: DatasetAdapter, seed: int) -> dict:
        """The probe sweeps C on the dataset's primary metric; sklearn runs on the CPU."""
        o = self.options
        return {"solver": o.solver, "seed": seed, "device": o.device if o.solver == "torch" else "cpu",
                "num_classes": len(adapter.classnames), "metric": adapter.primary_metric,
                "val_fraction": o.val_fraction, "progress": self.progress}

    def _full_probe(self, model, adapter, test, feats) -> dict:
        from clipbench.tasks.linear_probe import linear_probe

        o = self.options
        f_train, f_val, f_test = feats
        result = linear_probe(train=(f_train.features, f_train.labels), val=(f_val.features, f_val.labels),
                              test=(f_test.features, f_test.labels), **self._probe_kwargs(adapter, o.seed))
        metrics = _probe_metrics(result)
        record = self.base_record(model, adapter, test, "linear_probe")
        record.update(metrics=metrics, C=float(result.C), sweep=_jsonable(getattr(result, "sweep", None)))
        predictions = _probe_predictions(result)
        if predictions is not None and o.bootstrap > 0:
            low, high = bootstrap_ci(predictions, f_test.labels, adapter.primary_metric, len(adapter.classnames),
                                     o.bootstrap, o.seed)
            record["ci95"] = {"low": low, "high": high}
        return record

    def _fewshot(self, model, adapter, test, feats) -> dict:
        """K images per class drawn (per seed) from the probe's train+val pool; mean and spread over seeds."""
        from clipbench.tasks.fewshot import fewshot_linear_probe

        o = self.options
        f_train, f_val, f_test = feats
        pool = (np.concatenate([f_train.features, f_val.features]), np.concatenate([f_train.labels, f_val.labels]))
        kwargs = self._probe_kwargs(adapter, o.seed)
        del kwargs["seed"]
        result = fewshot_linear_probe(train=pool, test=(f_test.features, f_test.labels), k=o.fewshot_k,
                                      seeds=list(o.seeds), **kwargs)
        per_seed = [{"seed": seed, "C": float(run.C), "metrics": _probe_metrics(run)}
                    for seed, run in zip(result.seeds, result.runs, strict=True)]
        record = self.base_record(model, adapter, test, f"linear_probe_{o.fewshot_k}shot")
        record.update(metrics={m: float(v) for m, v in result.mean.items() if v is not None},
                      fewshot_k=o.fewshot_k, seeds=list(result.seeds), per_seed=per_seed,
                      spread={m: float(v) for m, v in result.std.items() if v is not None})
        return record


def _probe_metrics(result) -> dict[str, float]:
    metrics = {"top1": float(result.top1)}
    top5 = getattr(result, "top5", None)
    if top5 is not None:
        metrics["top5"] = float(top5)
    metrics["mean_per_class_recall"] = float(result.mean_per_class_recall)
    return metrics


def _probe_predictions(result) -> np.ndarray | None:
    for name in ("test_predictions", "predictions"):
        value = getattr(result, name, None)
        if value is not None:
            return np.asarray(value, dtype=np.int64)
    scores = getattr(result, "test_scores", None)
    return None if scores is None else np.asarray(scores).argmax(axis=1)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dict__"):
        return _jsonable(vars(value))
    return str(value)


def run(
    model: str | ImageTextModel | Sequence[str | ImageTextModel] | None = None,
    suite: str | os.PathLike | Suite = "smoke",
    datasets: str | Sequence[str | DatasetAdapter] | None = None,
    *,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    precision: str | None = None,
    limit: int | None = None,
    seed: int | None = None,
    offline: bool | None = None,
    probe_features: str | None = None,
    fewshot_k: int | None = None,
    seeds: Sequence[int] | None = None,
    solver: str | None = None,
    bootstrap: int | None = None,
    per_class: bool | None = None,
    threads: int | None = None,
    progress: bool = True,
    write: bool = True,
    shard_jobs: bool = False,
) -> list[dict]:
    """Evaluate ``model`` (name(s), path(s) or ``ImageTextModel``) on ``suite``; returns the result records.

    ``datasets`` restricts or replaces the suite's datasets (names, or adapter objects for custom
    data). With ``write`` the records are appended to ``<results_dir>/results.jsonl`` and the
    leaderboards regenerated.

    Under torchrun (see ``clipbench.distributed``) every rank extracts a slice of each split and
    rank 0 alone scores and writes (other ranks return ``[]``); with ``shard_jobs`` each rank runs
    a share of the (model, dataset) jobs end to end and rank 0 returns everyone's records.
    """
    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    options = resolve_options(
        suite_obj,
        {"batch_size": batch_size, "workers": workers, "precision": precision, "limit": limit, "seed": seed,
         "probe_features": probe_features, "solver": solver, "fewshot_k": fewshot_k,
         "seeds": list(seeds) if seeds is not None else None, "bootstrap": bootstrap,
         "offline": True if offline else None, "per_class": per_class, "threads": threads},
        device,
    )
    models = _split_names(model) if not isinstance(model, ImageTextModel) else [model]
    models = models or list(suite_obj.models)
    if not models:
        raise ClipbenchError(f"suite {suite_obj.name!r} names no default model; pass --model")
    dataset_items = _split_names(datasets) or list(suite_obj.datasets)
    paths = Paths.resolve(cache_dir=cache_dir, data_root=data_root, results_dir=results_dir,
                          offline=options.offline or None)
    if write:
        _check_results_dir(paths.results_dir)  # fail before hours of work, not after
    with hf_offline(paths.offline):  # hf: datasets load here
        adapters = [_adapter(d) for d in dataset_items]  # fail fast on unknown names, before loading models
    with distributed.session(options.device) as ctx, torch_threads(options.threads), hf_offline(paths.offline):
        jobs = [(i, adapter) for i in range(len(models)) for adapter in adapters]
        if shard_jobs:  # each rank runs its share of whole jobs alone
            jobs, extraction = ctx.share(jobs), distributed.DistContext()
        else:  # every rank extracts a slice of every split; rank 0 scores
            extraction = ctx
        runner = _Runner(suite_obj, paths, options, progress and ctx.is_main, extraction)
        records, loaded_index, loaded = [], None, None
        try:
            for index, adapter in jobs:
                if index != loaded_index:
                    loaded_index, loaded = index, None  # free the previous model before loading the next
                    loaded = _model(models[index], options.device, paths)
                for task in suite_obj.tasks:
                    log.info("%s: %s on %s", task, loaded.name, adapter.name)
                    record = (runner.zeroshot(loaded, adapter) if task == "zeroshot"
                              else runner.linear_probe(loaded, adapter))
                    if record is None:
                        continue
                    if write:
                        append_record(paths.results_dir, record)
                    records.append(record)
        except BaseException as exc:  # failed or interrupted (Ctrl-C, SIGTERM): keep what completed
            _keep_completed(exc, records, paths.results_dir if write else None)
            raise
        if shard_jobs and ctx.enabled:  # collective: every rank has appended its records after this
            gathered = ctx.gather_to_main(records)
            records = [r for part in gathered for r in part] if gathered is not None else []
    if write and records:
        write_leaderboards(paths.results_dir)
    return records


def _keep_completed(exc: BaseException, records: list[dict], results_dir: Path | None) -> None:
    """A failed run still publishes its completed rows: leaderboards regenerated, and the records on
    ``exc.completed_records`` for the caller (the CLI prints their table before the error line)."""
    if results_dir is not None and records:
        try:
            write_leaderboards(results_dir)
        except Exception as lb_exc:  # never hide the original error behind this one
            log.warning("could not regenerate the leaderboards after the failure: %s", lb_exc)
    with contextlib.suppress(AttributeError, TypeError):
        exc.completed_records = list(records)


def _check_results_dir(results_dir: Path) -> None:
    """One-line error up front if the results dir is unusable or holds records this version cannot read."""
    ensure_dir(results_dir)
    for name in (RESULTS_FILE, LEADERBOARD_FILE, PIVOT_FILE):  # every output path, before any work
        check_writable(results_dir / name, append=name == RESULTS_FILE)
    if (results_dir / RESULTS_FILE).is_file():
        read_records(results_dir / RESULTS_FILE)  # raises on a newer schema; warns (once) about bad lines


def _adapter(item: str | DatasetAdapter) -> DatasetAdapter:
    if isinstance(item, DatasetAdapter):
        return item
    from clipbench.datasets import get_dataset

    return get_dataset(item)


def _model(spec: str | ImageTextModel, device: str, paths: Paths) -> ImageTextModel:
    if isinstance(spec, ImageTextModel):
        return spec.to(device)
    from clipbench.models import load_model

    return load_model(spec, device=device, cache_dir=paths.cache_dir, offline=paths.offline)


def compare(new: str | os.PathLike, baseline: str | os.PathLike, max_drop: float = 0.0,
            allow_mismatch: bool = False) -> Comparison:
    """See ``clipbench.comparison.compare``: the regression gate's verdict and its markdown table."""
    from clipbench.comparison import compare as _compare

    return _compare(new, baseline, max_drop, allow_mismatch)


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


__all__ = ["DEFAULTS", "RunOptions", "cache_entries", "clear_cache", "compare", "limit_indices", "limit_split", "list_datasets",
           "list_models", "list_suites", "run"]
