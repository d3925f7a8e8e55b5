"""The run loop: resolve options, plan models x datasets x tasks, and score each through its task.

The runner is the only place that loads models, splits and features for tasks; it knows no task
by name. Each task gets a ``RunContext`` (the ``TaskContext`` of ``clipbench.tasks.base``) and
returns a record whose core fields ``RunContext.record`` fills in. Records are appended as they
complete; the leaderboards are regenerated at the end.
"""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.splits import limit_indices, limit_split  # noqa: F401  (the engine's --limit; api re-exports)
from clipbench.engine import distributed
from clipbench.engine.options import all_options
from clipbench.features import FeatureStore, extract_features
from clipbench.features.image_pipeline import check_decode_device, image_pipeline
from clipbench.foundations import torch_env
from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError
from clipbench.models.base import ImageTextModel
from clipbench.results.schema import RESULT_SCHEMA, core_record
from clipbench.suites import Suite
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


def suite_tasks(suite: Suite) -> list[Task]:
    return [get_task(name) for name in suite.tasks]


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
    given = {k: v for k, v in overrides.items() if v is not None}
    merged.update(given)
    for key, value in merged.items():
        table[key].validate(value)
    owners = [table[key].owner for key in given if table[key].owner]
    for name in dict.fromkeys([*suite.tasks, *owners]):  # suite order, then owners of given options
        get_task(name).check_options(merged)
    for key in given:  # an option of a task the suite does not run is a mistake, not a no-op
        owner = table[key].owner
        if owner and owner not in suite.tasks:
            raise ClipbenchError(f"{table[key].flag} applies to the {get_task(owner).title.lower()}, but suite "
                                 f"{suite.name!r} runs only {', '.join(suite.tasks)}")
    device = _checked_device(device or default_device())
    dev_type = torch_env.device_type(device)
    if merged["precision"] == "fp16" and dev_type != "cuda":
        raise ClipbenchError(f"--precision fp16 needs a CUDA device, but the device is {device}")
    check_decode_device(merged["decode"], dev_type)
    if merged.get("seeds") is not None:
        merged["seeds"] = tuple(merged["seeds"])
    if "val_fraction" in merged:
        merged["val_fraction"] = float(merged["val_fraction"])
    merged["offline"], merged["per_class"] = bool(merged["offline"]), bool(merged["per_class"])
    merged["device"] = device
    return RunOptions(merged)


def _checked_device(device: str) -> str:
    """``device`` in torch's spelling (``cuda:0``), or one line saying why it cannot be used; ``cpu``
    is taken as is, so a run on the CPU does not import torch just to parse its device."""
    if device == "cpu":
        return device
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ClipbenchError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ClipbenchError(f"--device {device} requested but CUDA is not available here")
    return str(dev)


def versions() -> dict[str, str]:
    import clipbench

    return {"clipbench": clipbench.__version__, "torch": torch_env.version(), "numpy": np.__version__,
            "python": platform.python_version()}


class RunContext:
    """What tasks get from the engine in one run: splits, cached features and text, record building.

    It also meters each record's cost (``clipbench.results.history.Meter``) and writes its per-sample
    predictions (``log_samples``) when the run writes results and ``--log-samples`` asks for them.
    """

    def __init__(self, suite: Suite, paths: Paths, options: RunOptions, progress: bool,
                 dist: distributed.DistContext | None = None, write: bool = True) -> None:
        from clipbench.results.history import Meter

        self.suite, self.paths, self.options, self.progress = suite, paths, options, progress
        self.store = FeatureStore(paths.features_dir)
        self.dist = dist or distributed.DistContext()  # ranks that share each split's extraction
        self._provenance: list[dict] = []  # how the features served since the last record were extracted
        self._limited = False  # whether --limit cut any split served since the last record
        self.write = write
        self.meter = Meter(options.device)

    def model_loaded(self, model: ImageTextModel, seconds: float) -> None:
        """The engine loaded ``model`` in ``seconds`` (the load phase of each of its records)."""
        image_pipeline(model, self.options.decode)  # --decode gpu and a model it cannot serve: before any work
        self.meter.model_loaded(model.name, seconds)

    def evaluation_split(self, adapter: DatasetAdapter) -> SplitData:
        from clipbench.datasets.splits import load_split

        o = self.options
        with self.meter.phase("data"):
            split = load_split(adapter, adapter.evaluation_split, self.paths.data_root, verify_data=o.verify_data)
            return self._limit(split)

    def probe_splits(self, adapter: DatasetAdapter) -> tuple[SplitData, SplitData, SplitData]:
        from clipbench.datasets import probe_splits

        o = self.options
        with self.meter.phase("data"):
            train, val, test = probe_splits(adapter, self.paths.data_root, o.val_fraction, o.seed,
                                            verify_data=o.verify_data)
            return tuple(self._limit(s) for s in (train, val, test))

    def probe_features(self, model: ImageTextModel, adapter: DatasetAdapter, projected: bool = True):
        """((train, val, test) splits, their features) for the tasks that fit on train+val; None off rank 0."""
        splits = self.probe_splits(adapter)
        feats = tuple(self.features(model, s, projected) for s in splits)
        return None if feats[2] is None else (splits, feats)

    def _limit(self, split: SplitData) -> SplitData:
        """``--limit``; a limit at least the split's size leaves it whole (a full run, not a variant)."""
        limited = limit_split(split, self.options.limit, self.options.seed)
        self._limited = self._limited or limited is not split
        return limited

    def features(self, model: ImageTextModel, split: SplitData, projected: bool = True):
        """The split's features; under torchrun every rank extracts a slice and only rank 0 gets them (else None)."""
        o = self.options
        with self.meter.extraction():
            if self.dist.enabled:
                feats = distributed.extract_features_sharded(
                    model, split, self.store, self.dist, projected=projected, precision=o.precision,
                    batch_size=o.batch_size, workers=o.workers, progress=self.progress, decode=o.decode)
            else:
                feats = extract_features(model, split, self.store, projected=projected, precision=o.precision,
                                         batch_size=o.batch_size, workers=o.workers, progress=self.progress,
                                         decode=o.decode)
        if feats is not None and getattr(feats, "provenance", None):
            self._provenance.append(feats.provenance)
        return feats

    def text_classifier(self, model: ImageTextModel, class_prompts):
        from clipbench.features.text_classifier import text_classifier

        o = self.options
        with self.meter.phase("text"):
            return text_classifier(model, class_prompts, self.paths.text_dir, batch_size=o.batch_size,
                                   precision=o.precision)

    def log_samples(self, record: dict, scores, labels, score_kind: str = "logits",
                    classnames: Sequence[str] | None = None) -> bool:
        """Write ``record``'s per-sample predictions beside the results and reference them from it.

        Only when results are written and ``--log-samples`` asks for this split's size; returns
        whether a file was written. ``scores`` [N, C] are logits or probabilities (``score_kind``).
        """
        from clipbench.results.samples import should_log, write_samples

        if not self.write or not should_log(self.options.get("log_samples", "auto"), int(len(labels))):
            return False
        record["samples"] = write_samples(self.paths.results_dir, record, np.asarray(scores), np.asarray(labels),
                                          score_kind, list(classnames) if classnames is not None else None)
        return True

    def log_sample_table(self, record: dict, kind: str, build, n_samples: int, meta: dict | None = None) -> bool:
        """Like ``log_samples`` for the other kinds (``clipbench.results.samples``): ``build()`` returns the table,
        called only when the file is written (results written, ``--log-samples`` asks for ``n_samples``)."""
        from clipbench.results.samples import should_log, write_sample_table

        if not self.write or not should_log(self.options.get("log_samples", "auto"), int(n_samples)):
            return False
        record["samples"] = write_sample_table(self.paths.results_dir, record, build(), kind, meta)
        return True

    def text_features(self, model: ImageTextModel, texts):
        """Unnormalised float32 [len(texts), D] features of the exact ``texts`` (cached, verified)."""
        from clipbench.features.text_store import text_features

        o = self.options
        return text_features(model, texts, self.paths.text_dir, batch_size=o.batch_size, precision=o.precision)

    def record(self, model: ImageTextModel, adapter: DatasetAdapter, split: SplitData, task: str,
               **fields: Any) -> dict:
        o = self.options
        record = core_record(
            schema_version=RESULT_SCHEMA, record_id=uuid.uuid4().hex,
            timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            model=model.name, model_identity=model.identity, model_family=model.family,
            weights_sha256=model.weights_sha256, preprocess_id=image_pipeline(model, o.decode).preprocess_id,
            dataset=adapter.name, split=split.split, dataset_fingerprint=split.fingerprint,
            n_samples=len(split), task=task, primary_metric=get_task(self._task_name(task)).primary_metric(adapter),
            metrics={}, ci95=None, C=None, sweep=None, prompt_hash=None,
            suite=self.suite.name, suite_version=self.suite.version, seed=o.seed,
            precision=o.precision, device=o.device, limit=o.limit if self._limited else None,
            batch_size=o.batch_size, torch_threads=torch_env.intra_op_threads(),
            versions=versions(), time_extract_s=None, time_task_s=None,
            verify_data=o.verify_data, data_identity=split.fingerprint_inputs,
            tag=o.get("tag"), git=self.meter.git(), cost=self.meter.record_cost(model.name),
        )
        if self._provenance:  # the settings the scored features were actually extracted with
            from clipbench.features import merge_provenance

            record["extraction"] = merge_provenance(self._provenance)
            self._provenance = []
        self._limited = False
        record.update(fields)
        return record

    @staticmethod
    def _task_name(record_task: str) -> str:
        from clipbench.tasks.registry import task_for_record

        task = task_for_record(record_task)
        if task is None:
            raise ClipbenchError(f"no registered task writes records named {record_task!r}")
        return task.name


def check_task_fits(tasks: Sequence[Task], adapters: Sequence[DatasetAdapter]) -> None:
    """Every (task, dataset) pair of the plan is one the task can score; fail before loading any model."""
    for task in tasks:
        for adapter in adapters:
            if not task.accepts(adapter):
                kind = getattr(adapter, "kind", "classification")
                raise ClipbenchError(f"task {task.name} does not apply to {adapter.name} (a {kind} dataset; "
                                     f"{task.name} takes {', '.join(task.dataset_kinds)})")
