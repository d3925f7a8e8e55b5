"""The linear-probe task (full and few-shot): the CLIP paper's protocol on cached image features.

The probe owns its options (features, solver, few-shot K and seeds, validation fraction); the
solver and the C sweep live in ``clipbench.tasks.linear_probe``. A few-shot run writes the task
name ``linear_probe_<K>shot`` with metrics averaged over seeds.
"""

from __future__ import annotations

import re
from typing import Any

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.option import Option, a_bool, a_seed, one_of, positive_int
from clipbench.tasks.base import Task, TaskContext, TaskResult, classification_samples
from clipbench.tasks.probe_solvers import DEFAULT_SOLVER, SOLVER_NAMES, solver_choices, solver_help

_FEWSHOT_TASK = re.compile(r"^linear_probe_\d+shot$")


class LinearProbeTask(Task):
    name = "linear_probe"
    title = "Linear probe"
    metrics = ("top1", "top5", "mean_per_class_recall")
    inputs = "train, val (dataset's own or carved from train) and test splits; image features"
    single_label_only = True
    options = (
        Option("fewshot_k", None, lambda v: v is None or positive_int(v), "a positive integer or null",
               "few-shot linear probe with K training images per class", int, owner="linear_probe"),
        Option("seeds", None, lambda v: isinstance(v, list) and v and all(a_seed(s) for s in v),
               "a non-empty list of integers from 0 to 2**32-1", "few-shot seeds, comma-separated (e.g. 0,1,2)", int,
               owner="linear_probe", is_list=True, convert=tuple),
        Option("probe_features", "projected", one_of("projected", "pre_projection"), "projected or pre_projection",
               "linear-probe features (default: projected)", str, ("projected", "pre_projection"),
               owner="linear_probe"),
        Option("solver", DEFAULT_SOLVER, one_of(*SOLVER_NAMES), solver_choices(), solver_help(), str, SOLVER_NAMES,
               owner="linear_probe"),
        Option("val_fraction", 0.2, lambda v: isinstance(v, (int, float)) and not a_bool(v) and 0 < v < 1,
               "a number between 0 and 1", "fraction of train carved for validation", owner="linear_probe",
               convert=float),
    )

    summary_columns = ("top1", "top5", "C")
    classification_view = "linear probe"
    legacy_block = "probe"
    legacy_fields = ("convergence", "fewshot_k", "seeds", "per_seed", "spread")

    def owns_record(self, task_name: str) -> bool:
        return task_name == self.name or bool(_FEWSHOT_TASK.match(task_name))

    def check_options(self, merged: dict[str, Any]) -> None:
        seeds = merged.get("seeds")
        if seeds is not None and merged.get("fewshot_k") is None:
            raise ClipbenchError("--seeds only applies to few-shot probes; give --fewshot-k K as well")
        if seeds is not None and len(set(seeds)) != len(seeds):
            raise ClipbenchError(f"--seeds lists a seed more than once: {','.join(map(str, seeds))} (each seed is "
                                 "one probe; a repeat would count it twice in the mean)")

    def variant_parts(self, record: dict) -> list[str]:
        probe = self.block(record)
        parts = []
        if probe.get("features", "projected") != "projected":
            parts.append(str(probe["features"]))
        if probe.get("solver", DEFAULT_SOLVER) != DEFAULT_SOLVER:
            parts.append(f"solver={probe['solver']}")
        return parts

    def table_note(self, record: dict) -> str:
        convergence = self.block(record).get("convergence") or {}
        return "UNCONVERGED" if convergence.get("all_converged") is False else ""

    def run(self, ctx: TaskContext, model, adapter) -> TaskResult:
        o = ctx.options
        (train, val, test), feats = ctx.probe_features(model, adapter, o.probe_features == "projected")
        result = (self._fewshot if o.fewshot_k else self._full_probe)(ctx, adapter, test, feats)
        result.block = {"features": o.probe_features, "solver": o.solver, "val_fraction": o.val_fraction,
                        "n_train": len(train), "n_val": len(val),
                        "train_fingerprint": train.fingerprint, "val_fingerprint": val.fingerprint,
                        "train_data_identity": train.fingerprint_inputs,
                        "val_data_identity": val.fingerprint_inputs, **result.block}
        result.notes.extend(self.single_label_note(adapter))
        return result

    @staticmethod
    def _probe_kwargs(ctx: TaskContext, adapter, seed: int) -> dict:
        """The probe sweeps C on the dataset's primary metric; sklearn runs on the CPU."""
        o = ctx.options
        return {"solver": o.solver, "seed": seed, "device": o.device if o.solver == "torch" else "cpu",
                "num_classes": len(adapter.classnames), "metric": adapter.single_label_metric,
                "val_fraction": o.val_fraction, "progress": ctx.progress}

    def _full_probe(self, ctx: TaskContext, adapter, test, feats) -> TaskResult:
        from clipbench.scoring.classification import bootstrap_ci
        from clipbench.tasks.linear_probe import linear_probe

        o = ctx.options
        f_train, f_val, f_test = feats
        result = linear_probe(train=(f_train.features, f_train.labels), val=(f_val.features, f_val.labels),
                              test=(f_test.features, f_test.labels), **self._probe_kwargs(ctx, adapter, o.seed),
                              return_probabilities=True)
        block = {}
        convergence = _convergence(result)
        if convergence is not None:
            block["convergence"] = convergence
        ci = None
        predictions = _probe_predictions(result)
        if predictions is not None and o.bootstrap > 0:
            low, high = bootstrap_ci(predictions, f_test.labels, adapter.single_label_metric, len(adapter.classnames),
                                     o.bootstrap, o.seed)
            ci = {adapter.single_label_metric: {"low": low, "high": high}}
        probabilities = getattr(result, "probabilities", None)
        if probabilities is not None:
            from clipbench.scoring.calibration import calibration
            block["calibration"] = calibration(probabilities, f_test.labels, None, o.bootstrap, o.seed)
        samples = None if probabilities is None else classification_samples(
            probabilities, f_test.labels, "probabilities", adapter.classnames)
        return TaskResult(test, _probe_metrics(result), ci, block, samples,
                          core={"C": float(result.C), "sweep": jsonable(getattr(result, "sweep", None))})

    def _fewshot(self, ctx: TaskContext, adapter, test, feats) -> TaskResult:
        """K images per class drawn (per seed) from the probe's train+val pool; mean and spread over seeds."""
        import numpy as np

        from clipbench.tasks.fewshot import fewshot_linear_probe

        o = ctx.options
        f_train, f_val, f_test = feats
        pool = (np.concatenate([f_train.features, f_val.features]), np.concatenate([f_train.labels, f_val.labels]))
        kwargs = self._probe_kwargs(ctx, adapter, o.seed)
        del kwargs["seed"]
        seeds = list(o.seeds) if o.seeds is not None else [o.seed]
        result = fewshot_linear_probe(train=pool, test=(f_test.features, f_test.labels), k=o.fewshot_k,
                                      seeds=seeds, **kwargs)
        per_seed = []
        for seed, run in zip(result.seeds, result.runs, strict=True):
            entry = {"seed": seed, "C": float(run.C), "metrics": _probe_metrics(run)}
            convergence = _convergence(run)
            if convergence is not None:
                entry["convergence"] = convergence
            per_seed.append(entry)
        block = {"fewshot_k": o.fewshot_k, "seeds": list(result.seeds), "per_seed": per_seed,
                 "spread": {m: float(v) for m, v in result.std.items() if v is not None}}
        flags = [e["convergence"].get("all_converged") for e in per_seed if "convergence" in e]
        if flags:
            block["convergence"] = {"all_converged": all(flags), "per_seed": [e["convergence"] for e in per_seed]}
        return TaskResult(test, {m: float(v) for m, v in result.mean.items() if v is not None}, None, block,
                          record_task=f"linear_probe_{o.fewshot_k}shot")


def _convergence(result) -> dict | None:
    """The solver's own convergence report (per fit), if it gives one."""
    value = getattr(result, "convergence", None)
    return jsonable(value) if value is not None else None


def _probe_metrics(result) -> dict[str, float]:
    metrics = {"top1": float(result.top1)}
    top5 = getattr(result, "top5", None)
    if top5 is not None:
        metrics["top5"] = float(top5)
    metrics["mean_per_class_recall"] = float(result.mean_per_class_recall)
    return metrics


def _probe_predictions(result):
    import numpy as np

    for name in ("test_predictions", "predictions"):
        value = getattr(result, name, None)
        if value is not None:
            return np.asarray(value, dtype=np.int64)
    scores = getattr(result, "test_scores", None)
    return None if scores is None else np.asarray(scores).argmax(axis=1)


def jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars, tuples and dataclasses (for record fields)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy scalars
        return value.item()
    if hasattr(value, "__dict__"):
        return jsonable(vars(value))
    return str(value)
