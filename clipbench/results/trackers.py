"""Experiment trackers (``--log-to wandb,mlflow,tensorboard``): each record also becomes a tracker's metrics and params.

One tracker run per ``clipbench run``. It is opened before any model loads, so a tracker that is not installed
or cannot be reached is one line (with the install command) and exit 2 before any work; each record is
logged right after it is appended to ``results.jsonl``, so a tracker failing mid-run costs a warning, never the
record; at the end the report (``clipbench report``'s, into ``<results-dir>/report``) is attached and the run
closed. The backends are in ``clipbench.results.tracker_backends``.

What a record becomes (keys ``<model>/<dataset>/<task>[.<variant>]/...``, names made safe for every tracker:
letters, digits, ``_ . - `` and spaces; anything else is ``_``):

* metrics: every metric (``.../top1``), and the 95% CI bounds (``.../top1_ci95_low``, ``..._ci95_high``) of the
  primary metric and of every metric that has one (``metric_ci95``); ``.../primary`` repeats the primary metric;
* params: ``model``, ``weights_sha256``, ``model_identity``, ``dataset``, ``dataset_fingerprint``, ``split``,
  ``task``, ``primary_metric``, ``n_samples``, ``record_id``, ``clipbench_version``, ``git_commit``; the run's own params: the resolved run options
  (``options/<name>``), ``clipbench_version``, ``git_commit``, ``suite``;
* artifacts (W&B, MLflow; TensorBoard has none, it gets the report as text): the per-sample file, the report.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.results.tracker_backends import BACKENDS

log = logging.getLogger(__name__)

TRACKERS = ("wandb", "mlflow", "tensorboard")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- ]+")
PARAM_FIELDS = ("model", "weights_sha256", "model_identity", "dataset", "dataset_fingerprint", "split", "task",
                "primary_metric", "n_samples", "record_id")


def parse_log_to(value) -> tuple[str, ...]:
    """``"wandb,mlflow"`` or ``["wandb", "mlflow"]`` as a tuple of tracker names (ValueError on an unknown one)."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = tuple(dict.fromkeys(str(item).strip() for item in items))
    unknown = [n for n in names if n not in TRACKERS]
    if unknown or not names or "" in names:
        raise ValueError(f"unknown tracker {unknown[0] if unknown else ''!r}")
    return names


def valid_log_to(value) -> bool:
    if not isinstance(value, (str, list, tuple)):
        return False
    try:
        parse_log_to(value)
    except ValueError:
        return False
    return True


def safe_part(text: object) -> str:
    """One part of a tracker key: characters every tracker takes, never empty, ``.`` or ``..``."""
    part = _UNSAFE.sub("_", str(text)).strip()
    return "_" if part in ("", ".", "..") else part


def record_prefix(record: dict, variant: str = "") -> str:
    """``<model>/<dataset>/<task>[.<variant>]``, each part made safe (``safe_part``)."""
    task = safe_part(record["task"]) + (f".{safe_part(variant)}" if variant else "")
    return "/".join((safe_part(record["model"]), safe_part(record["dataset"]), task))


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def record_metrics(record: dict, prefix: str) -> dict[str, float]:
    """The record's numbers as flat tracker metrics (non-finite and missing values left out)."""
    out = {f"{prefix}/{safe_part(name)}": float(v) for name, v in record["metrics"].items() if _finite(v)}
    primary = record.get("primary_metric")
    if _finite(record["metrics"].get(primary)):
        out[f"{prefix}/primary"] = float(record["metrics"][primary])
    cis = dict(record.get("metric_ci95") or {})
    if record.get("ci95"):
        cis[primary] = record["ci95"]
    for name, ci in cis.items():
        for bound in ("low", "high"):
            value = (ci or {}).get(bound) if isinstance(ci, Mapping) else None
            if _finite(value):
                out[f"{prefix}/{safe_part(name)}_ci95_{bound}"] = float(value)
    return out


def record_params(record: dict) -> dict[str, str]:
    """The record's identity as tracker params (strings), with the clipbench version and git commit it ran at."""
    params = {name: "" if record.get(name) is None else str(record.get(name)) for name in PARAM_FIELDS}
    params["clipbench_version"] = str((record.get("versions") or {}).get("clipbench") or "")
    params["git_commit"] = str((record.get("git") or {}).get("commit") or "")
    return params


def run_params(options: Mapping, suite: str | None) -> dict[str, str]:
    """The tracker run's own params: clipbench version, git commit, suite and the resolved run options."""
    import clipbench
    from clipbench.results.history import git_state

    git = git_state(os.getcwd()) or {}
    params = {"clipbench_version": clipbench.__version__, "git_commit": str(git.get("commit") or ""),
              "git_dirty": str(git.get("dirty", "")), "suite": str(suite or "")}
    params.update({f"options/{safe_part(k)}": "" if v is None else str(v) for k, v in options.items()})
    return params


class TrackerSession:
    """The open tracker runs of one ``clipbench run``: ``log`` each appended record, ``close`` at the end."""

    def __init__(self, backends: list) -> None:
        self.backends = backends
        self.logged: set[str] = set()

    @classmethod
    def open(cls, names: Iterable[str], results_dir: str | os.PathLike, options: Mapping,
             suite: str | None) -> TrackerSession:
        """Import and start each tracker; one ClipbenchError line (with the install command) if one cannot."""
        names = parse_log_to(tuple(names))
        modules = {}
        for name in names:  # every import first: a missing extra is named before any tracker run starts
            modules[name] = BACKENDS[name].load()
        params = run_params(options, suite)
        backends: list = []
        try:
            for name in names:
                backends.append(BACKENDS[name](modules[name], Path(results_dir), params, suite))
        except ClipbenchError:
            cls(backends).close(None, failed=True)
            raise
        return cls(backends)

    def log(self, record: dict, results_dir: str | os.PathLike) -> None:
        """Log one appended record to every tracker; a tracker that fails is a warning and is not used again."""
        from clipbench.results.records import record_variant

        if record.get("record_id") in self.logged:
            return
        self.logged.add(record.get("record_id"))
        prefix = record_prefix(record, record_variant(record))
        metrics, params = record_metrics(record, prefix), record_params(record)
        samples = record.get("samples") or {}
        path = Path(results_dir) / samples["path"] if isinstance(samples.get("path"), str) else None
        if path is not None and (not path.is_file() or ".." in Path(samples["path"]).parts):
            path = None
        for backend in list(self.backends):
            try:
                backend.log(prefix, metrics, params, path)
            except Exception as exc:  # noqa: BLE001 - a tracker's failure must never cost the run or the record
                self._drop(backend, f"could not log {prefix} ({type(exc).__name__}: {exc}); the record is in "
                                    "results.jsonl")

    def _drop(self, backend, why: str) -> None:
        log.warning("--log-to %s: %s; not logging to it for the rest of this run", backend.name, why)
        self.backends.remove(backend)
        try:
            backend.finish(failed=True)
        except Exception:  # noqa: BLE001
            pass

    def close(self, results_dir: str | os.PathLike | None, failed: bool = False) -> None:
        """Attach the report (when the run wrote results) and end every tracker run."""
        report = None
        if results_dir is not None and not failed and self.logged and self.backends:
            try:
                from clipbench.results.report import build_report

                report = build_report(results_dir)
            except Exception as exc:  # noqa: BLE001
                log.warning("--log-to: the report for the trackers could not be built (%s); not attached", exc)
        for backend in list(self.backends):
            try:
                if report is not None:
                    backend.attach_report(report)
                backend.finish(failed=failed)
            except Exception as exc:  # noqa: BLE001
                log.warning("--log-to %s: could not finish its run (%s: %s); the records are in results.jsonl",
                            backend.name, type(exc).__name__, exc)
