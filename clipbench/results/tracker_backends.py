"""The three tracker backends of ``--log-to`` (``clipbench.results.trackers`` drives them).

Each has ``load()`` (import its package; not installed: one line with the install command), a constructor that
starts the tracker run (cannot: one line saying why), ``log(prefix, metrics, params, samples_path)``,
``attach_report(report)`` and ``finish(failed)``. Where each writes:

* W&B: ``wandb.init(project=$WANDB_PROJECT or "clipbench", dir=<results-dir>)``; online or offline as W&B's own
  settings say (``WANDB_MODE=offline`` writes ``<results-dir>/wandb/offline-run-*``, for ``wandb sync``). Metrics
  go to the run's history and summary, params to its config (one entry per record), files into the run's folder.
* MLflow: the tracking store mlflow is configured with (``MLFLOW_TRACKING_URI``; ``file:`` stores need
  ``MLFLOW_ALLOW_FILE_STORE=true`` since mlflow 3), experiment ``$MLFLOW_EXPERIMENT_NAME`` or ``clipbench``;
  files as run artifacts (``samples/``, ``report/``).
* TensorBoard: event files under ``<results-dir>/tensorboard/<time>-<suite>/`` written with the
  ``tensorboard`` package's own writer (no torch, no TensorFlow); scalars, and params and the report as text.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import time
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import ensure_dir


def install_hint(tracker: str) -> str:
    """The install command of a tracker's extra (pyproject.toml names one extra per tracker)."""
    return f"pip install 'clipbench[{tracker}]'"


def _import(tracker: str, module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ClipbenchError(f"--log-to {tracker} needs the {module} package, which is not installed "
                             f"({exc.name or module}): {install_hint(tracker)}") from exc


def _run_name(suite: str | None) -> str:
    return f"clipbench {suite or 'run'} {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


class WandbTracker:
    name = "wandb"

    @staticmethod
    def load():
        return _import("wandb", "wandb")

    def __init__(self, wandb, results_dir: Path, params: dict, suite: str | None) -> None:
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "clipbench", dir=str(ensure_dir(results_dir)),
                                  config=params, job_type="evaluation", name=_run_name(suite),
                                  settings=wandb.Settings(console="off", quiet=True))
        except Exception as exc:  # no API key, no network, a bad setting: W&B's own words, in one line
            raise ClipbenchError(f"--log-to wandb: cannot start a W&B run ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}); run `wandb login`, or set "
                                 "WANDB_MODE=offline to write the run locally") from exc

    def log(self, prefix: str, metrics: dict, params: dict, samples: Path | None) -> None:
        self.run.config.update({prefix: params}, allow_val_change=True)
        self.run.log(metrics)
        if samples is not None:
            self._copy(samples, f"samples/{samples.name}")

    def _copy(self, path: Path, name: str) -> None:
        """A copy in the run's folder (W&B uploads that folder's files with the run; ``wandb sync`` for offline runs)."""
        import shutil

        target = Path(self.run.dir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def attach_report(self, report) -> None:
        for path in (report.markdown, report.html, *report.images):
            self._copy(Path(path), f"report/{Path(path).name}")

    def finish(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


class MlflowTracker:
    name = "mlflow"

    @staticmethod
    def load():
        return _import("mlflow", "mlflow")

    def __init__(self, mlflow, results_dir: Path, params: dict, suite: str | None) -> None:
        self.mlflow = mlflow
        try:
            self.client = mlflow.tracking.MlflowClient()
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "clipbench"
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            self.run_id = self.client.create_run(experiment_id, run_name=_run_name(suite)).info.run_id
            self._params(params)
        except Exception as exc:
            raise ClipbenchError(f"--log-to mlflow: cannot use the tracking store {mlflow.get_tracking_uri()} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); set "
                                 "MLFLOW_TRACKING_URI to a reachable server or store") from exc

    def _params(self, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(key, value[:500]) for key, value in params.items()]  # 500: the oldest servers' limit
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log(self, prefix: str, metrics: dict, params: dict, samples: Path | None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        self._params({f"{prefix}/{k}": v for k, v in params.items()})
        if samples is not None:
            self.client.log_artifact(self.run_id, str(samples), artifact_path="samples")

    def attach_report(self, report) -> None:
        self.client.log_artifacts(self.run_id, str(report.out_dir), artifact_path="report")

    def finish(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class TensorBoardTracker:
    name = "tensorboard"

    @staticmethod
    def load():
        return _import("tensorboard", "tensorboard.summary.writer.event_file_writer")

    def __init__(self, module, results_dir: Path, params: dict, suite: str | None) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        self.event_pb2, self.summary_pb2 = event_pb2, summary_pb2
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        try:
            logdir = ensure_dir(Path(results_dir) / "tensorboard" / f"{stamp}-{os.getpid()}")
            self.writer = module.EventFileWriter(str(logdir))
        except OSError as exc:
            raise ClipbenchError(f"--log-to tensorboard: cannot write event files under {results_dir}: {exc}") from exc
        self.logdir = logdir
        self._text("clipbench/run_params", _table(params))

    def _summary(self, value) -> None:
        self.writer.add_event(self.event_pb2.Event(wall_time=time.time(), step=0,
                                                   summary=self.summary_pb2.Summary(value=[value])))

    def _text(self, tag: str, text: str) -> None:
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        metadata = self.summary_pb2.SummaryMetadata(plugin_data=self.summary_pb2.SummaryMetadata.PluginData(
            plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
        tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                             tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
        self._summary(self.summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor))

    def log(self, prefix: str, metrics: dict, params: dict, samples: Path | None) -> None:
        for key, value in metrics.items():
            self._summary(self.summary_pb2.Summary.Value(tag=key, simple_value=value))
        self._text(f"{prefix}/params", _table(params))
        self.writer.flush()

    def attach_report(self, report) -> None:
        self._text("clipbench/report", Path(report.markdown).read_text(encoding="utf-8"))

    def finish(self, failed: bool = False) -> None:
        self.writer.close()


def _table(params: dict) -> str:
    """Params as a Markdown table (TensorBoard renders text summaries as Markdown); cells escaped."""
    from clipbench.results.report.render_markdown import md_table

    return md_table(["param", "value"], [[k, v] for k, v in params.items()])


BACKENDS = {"wandb": WandbTracker, "mlflow": MlflowTracker, "tensorboard": TensorBoardTracker}
