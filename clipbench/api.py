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

from clipbench.engine.options import defaults
from clipbench.engine.plan import RunRecords
from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError
from clipbench.results.records import RESULTS_FILE
from clipbench.suites import Suite

if TYPE_CHECKING:  # torch-heavy: imported where used, so `clipbench list` and `compare` start without torch
    from clipbench.datasets.base import DatasetAdapter
    from clipbench.engine.runner import (  # noqa: F401
        RunOptions,
        default_device,
        limit_indices,
        limit_split,
        resolve_options,
    )
    from clipbench.models.base import ImageTextModel

#: Names re-exported from torch-importing modules, resolved on first access (PEP 562).
_LAZY = {name: "clipbench.engine.runner" for name in
         ("RunOptions", "default_device", "limit_indices", "limit_split", "resolve_options")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


log = logging.getLogger(__name__)

#: Used when neither the caller nor the suite sets an option (derived from the one declaration).
DEFAULTS: dict[str, Any] = defaults()


def run(
    model: str | ImageTextModel | Sequence[str | ImageTextModel] | None = None,
    suite: str | os.PathLike | Suite | None = "smoke",
    datasets: str | Sequence[str | DatasetAdapter] | None = None,
    *,
    data_root: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    write: bool = True,
    shard_jobs: bool = False,
    tasks: str | Sequence[str] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    **options: Any,
) -> RunRecords:
    """Evaluate ``model`` (name(s), path(s) or ``ImageTextModel``) on ``suite``; returns the result records.

    ``datasets`` restricts or replaces the suite's datasets (names, or adapter objects for custom
    data). ``options`` are run options by name (``batch_size=64``, ``solver="sklearn"``; see
    ``clipbench list tasks`` and ``clipbench.engine.options``); ``None`` leaves the suite's value. With
    ``write`` the records are appended to ``<results_dir>/results.jsonl`` and the leaderboards
    regenerated.

    Under torchrun (see ``clipbench.engine.distributed``) every rank extracts a slice of each split and
    rank 0 alone scores and writes (other ranks return ``[]``); with ``shard_jobs`` each rank runs
    its part of a cost-balanced plan of the (model, dataset) jobs (``clipbench.engine.balance``) end
    to end and rank 0 returns everyone's records. The loop is
    ``clipbench.engine.runner.run``. ``tasks`` runs only those of the suite's tasks, or, with
    ``suite=None``, those tasks alone over ``datasets`` (``clipbench run --task``).

    Job arrays (``clipbench.engine.job_array``): ``rank`` and ``world_size`` make this call one
    rank of ``world_size`` independent processes: it extracts its share of every split and returns
    ``[]`` (``.note`` says what it did); ``world_size`` alone is the final step that waits for every
    rank's shards and scores.
    """
    from clipbench.engine.plan import select_tasks
    from clipbench.engine.runner import run as run_loop

    suite = select_tasks(suite, tasks, datasets)
    return run_loop(model, suite, datasets, data_root=data_root, cache_dir=cache_dir, results_dir=results_dir,
                    device=device, progress=progress, write=write, shard_jobs=shard_jobs, rank=rank,
                    world_size=world_size, **options)


def compare(new: str | os.PathLike, baseline: str | os.PathLike, max_drop: float = 0.0,
            allow_mismatch: bool = False, alpha: float | None = None,
            tolerances: str | os.PathLike | None = None):
    """The regression gate (``clipbench.results.significance.gated_compare``): paired tests on per-sample files where
    both sides have them, else the fixed ``max_drop`` rule; ``.failed`` is the verdict, ``.to_markdown()`` the table."""
    from clipbench.results.significance import DEFAULT_ALPHA, gated_compare

    return gated_compare(new, baseline, max_drop=max_drop, alpha=DEFAULT_ALPHA if alpha is None else alpha,
                         tolerances=tolerances, allow_mismatch=allow_mismatch)


def report(source: str | os.PathLike = "results", out_dir: str | os.PathLike | None = None, published: bool = True,
           references: Sequence[str | os.PathLike] = (), data_root: str | os.PathLike | None = None):
    """Markdown + HTML report with plots (``clipbench.results.report.build_report``); ``references``: CLIP_benchmark
    or open_clip result files shown as reference rows; ``data_root``: thumbnails in the per-sample browser."""
    from clipbench.results.report import build_report

    return build_report(source, out_dir=out_dir, published=published, references=tuple(references),
                        data_root=data_root)


def lite(source: str | os.PathLike = "results", budget: int = 500, out: str | os.PathLike | None = None,
         seed: int = 0, n_resamples: int = 1000):
    """``clipbench lite``: per dataset, a subset of at most ``budget`` samples that ranks the models of ``source``
    as the full sets do, its leave-one-model-out rank agreement (``LiteReport``), and, with ``out``, the suite
    file naming the subsets."""
    from clipbench.results.lite_report import build_lite, write_suite

    report = build_lite(source, budget, seed, n_resamples)
    if out is not None:
        write_suite(report, out)
    return report


def history(source: str | os.PathLike = "results", model: str | None = None, dataset: str | None = None,
            task: str | None = None, plot: str | os.PathLike | None = None,
            throughput_plot: str | os.PathLike | None = None) -> tuple[list, list[Path]]:
    """Each row's primary metric over time (``HistoryPoint``s); optionally written as a trend PNG and an
    accuracy-vs-throughput PNG. Returns (points, files written)."""
    from clipbench.foundations.fileio import atomic_write_bytes
    from clipbench.results import plots
    from clipbench.results.history import history_points, throughput_points
    from clipbench.results.records import read_records

    records = read_records(source)  # read once for the points and the throughput plot
    points, written = history_points(records, model, dataset, task), []
    if plot:
        if not points:
            raise ClipbenchError("no records match; nothing to plot")
        atomic_write_bytes(plot, plots.trend_plot(points))
        written.append(Path(plot))
    if throughput_plot:
        rows = [p for p in throughput_points(records, task)
                if (not model or p["model"] == model) and (not dataset or p["dataset"] == dataset)]
        if not rows:
            raise ClipbenchError("no matching record has a measured throughput (were all features cached?)")
        atomic_write_bytes(throughput_plot, plots.throughput_plot(rows))
        written.append(Path(throughput_plot))
    return points, written


def samples(source: str | os.PathLike, result_id: str, top: int = 10) -> str:
    """Error analysis of one record's per-sample file, as text: for classification the most confident
    errors and top confusion pairs, for retrieval the worst-ranked images and captions, for selection
    the accuracy per subset and the lowest-margin items."""
    from clipbench.results.samples import describe_record

    if top < 1:
        raise ClipbenchError(f"--top must be positive, got {top}")
    return describe_record(source, result_id, top)


def download(name: str, data_root: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
             offline: bool | None = None) -> str:
    """Fetch one dataset or model (verified); returns a line saying where it is."""
    from clipbench.datasets import DATASETS, download_dataset
    from clipbench.foundations.errors import UnknownNameError

    paths = Paths.resolve(cache_dir=cache_dir, data_root=data_root, offline=offline)
    if name in DATASETS:
        target = download_dataset(DATASETS.get(name), paths.data_root, offline=paths.offline)
        return f"{DATASETS.canonical(name)}: {target if target is not None else 'bundled, nothing to download'}"
    from clipbench.models import MODELS
    from clipbench.models.loading import checkpoint_path

    if name in MODELS:
        info = MODELS.get(name)
        return f"{info.name}: {checkpoint_path(info, cache_dir=paths.cache_dir, offline=paths.offline)}"
    raise UnknownNameError(_unknown_download(name, DATASETS.names(), MODELS.names()))


def _unknown_download(name: str, datasets: list[str], models: list[str]) -> str:
    """`download` takes datasets and models alike, so suggest the closest names of both."""
    import difflib

    norm = {n.lower().replace("-", "").replace("_", "").replace("/", ""): n for n in [*datasets, *models]}
    wanted = name.lower().replace("-", "").replace("_", "").replace("/", "")
    close = [norm[k] for k in difflib.get_close_matches(wanted, list(norm), n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown dataset or model {name!r}{hint} (datasets: `clipbench list datasets`, "
            f"models: `clipbench list models`)")


def predict(image, **kwargs):
    """Zero-shot predictions for one image (``clipbench.engine.prediction.predict``)."""
    from clipbench.engine.prediction import predict as _predict

    return _predict(image, **kwargs)


def build_index(folder, model=None, index_dir=None, **kwargs):
    """Embed a photo folder into a search index, encoding only new or changed files (``clipbench.engine.search``)."""
    from clipbench.engine.search import build_index as _build_index

    return _build_index(folder, model, index_dir, **kwargs)


def search(query, index, top: int = 5, **kwargs):
    """Nearest indexed images for an image path or a text (``clipbench.engine.search.search``)."""
    from clipbench.engine.search import search as _search

    return _search(query, index, top, **kwargs)


def is_main_process() -> bool:
    """False on torchrun ranks other than 0 (which neither print nor write results)."""
    from clipbench.engine.distributed import is_main_process as _is_main

    return _is_main()


def results_file(results_dir: str | os.PathLike | None = None) -> Path:
    """Where ``run`` appends its records for ``results_dir`` (default: results/)."""
    return Paths.resolve(results_dir=results_dir).results_dir / RESULTS_FILE


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
    """Feature-store and text-store entries and model descriptions, with their sizes (`clipbench cache list`).

    ``model`` and ``split`` come from the entry's ``about.json`` (the key holds only hashes): the model's name
    ("?" for entries written before it) and the split a person knows (a probe's carved val is ``val``).
    """
    from clipbench.datasets.splits import shown_split
    from clipbench.features import FeatureStore
    from clipbench.features.store import STORE_SCHEMA
    from clipbench.features.text_store import text_store

    paths = Paths.resolve(cache_dir=cache_dir)

    def state(e) -> str | bool:  # an entry of another store schema is never read again: say so
        schema = e.key.get("schema", 1)
        return e.complete if schema == STORE_SCHEMA else f"stale (schema {schema}; unused)"

    def row(kind: str, path, model="-", dataset="-", split="-", features="-", precision="-", n_samples=None,
            complete=True, size_bytes=0) -> dict:
        return {"kind": kind, "model": model, "dataset": dataset, "split": split, "features": features,
                "precision": precision, "n_samples": n_samples, "complete": complete, "size_bytes": size_bytes,
                "path": str(path)}

    out = [row("features", e.path, e.about.get("model", "?"), e.key.get("dataset", "?"),
               shown_split(e.key.get("split", "?"), e.about.get("subset", "")), e.key.get("features", "?"),
               e.key.get("precision", "?"), e.key.get("n_samples"), state(e), e.size_bytes)
           for e in FeatureStore(paths.features_dir).entries()]
    out += [row("text", e.path, e.about.get("model", "?"), features="texts", precision=e.key.get("precision", "?"),
                n_samples=e.key.get("n_samples"), complete=state(e), size_bytes=e.size_bytes)
            for e in text_store(paths.text_dir).entries()]
    if paths.text_dir.is_dir():  # single files of older clipbench versions (classifiers, text features): unused
        out += [row("text", f, features="old layout", complete="stale (unused)", size_bytes=f.stat().st_size)
                for f in sorted(paths.text_dir.rglob("*.npz")) if "shards" not in f.parts]
    for f in sorted(paths.models_dir.glob("*.json")) if paths.models_dir.is_dir() else []:  # model descriptions
        out.append(row("model", f, f"sha256 {f.stem[:12]}", features="description", size_bytes=f.stat().st_size))
    return out


def clear_cache(cache_dir: str | os.PathLike | None = None, what: str = "all") -> int:
    """Delete cached features and/or text features (``what``: features|text|all; ``all`` also drops the
    model descriptions); returns bytes freed."""
    import shutil

    from clipbench.features import FeatureStore

    if what not in ("features", "text", "all"):
        raise ClipbenchError(f"unknown cache part {what!r}; expected features, text or all")
    paths = Paths.resolve(cache_dir=cache_dir)
    freed = 0
    if what in ("features", "all"):
        freed += FeatureStore(paths.features_dir).clear()
    for part in ([paths.text_dir] if what in ("text", "all") else []) + ([paths.models_dir] if what == "all" else []):
        if part.is_dir():
            freed += sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
            shutil.rmtree(part, ignore_errors=True)
    return freed


def list_tasks() -> list[dict]:
    """Registered tasks: what each scores, on which dataset kinds, with which options (``clipbench list tasks``)."""
    from clipbench.tasks.registry import TASKS

    return [task.describe() for _, task in TASKS.items()]


def export(source: str | os.PathLike, fmt: str, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``source``'s records in a peer's format (``clip_benchmark``, ``mteb``, ``openclip_csv``; see
    ``clipbench.results.export``) under ``out_dir``; returns the files written."""
    from clipbench.results import export as peer
    from clipbench.results.export_mteb import write_mteb

    writers = {"clip_benchmark": peer.write_clip_benchmark, "mteb": write_mteb, "openclip_csv": peer.write_openclip_csv}
    if fmt not in writers:
        raise ClipbenchError(f"unknown export format {fmt!r}; expected one of {', '.join(writers)}")
    records = peer.export_records(source)
    written = writers[fmt](records, Path(out_dir))
    if not written:
        raise ClipbenchError(f"no record of {source} has a {fmt} equivalent; nothing written")
    return written


def reference_table(source: str | os.PathLike, references: Sequence[str | os.PathLike]) -> str:
    """Markdown: ``source``'s primary metrics next to the matching rows of CLIP_benchmark or open_clip result files
    (``clipbench.results.references``)."""
    from clipbench.results.references import reference_table as table
    from clipbench.results.report.render_markdown import md_table

    header, rows = table(source, references)
    if not rows:
        return "No reference row matches a result (same model, dataset and task)."
    return "Reference numbers (published, not measured here; not part of the verdict):\n\n" + md_table(header, rows)


def publish(source: str | os.PathLike, to: str | os.PathLike) -> str:
    """``source``'s records as a Hugging Face dataset folder at ``to`` (a directory), or pushed to ``hf:ORG/NAME``
    (``clipbench.results.publish``); returns where it went."""
    from clipbench.results.publish import publish as _publish

    return _publish(source, str(to))


__all__ = ["DEFAULTS", "RunOptions", "RunRecords", "build_index", "cache_entries", "clear_cache", "compare",
           "default_device", "download", "history", "is_main_process", "limit_indices", "limit_split", "list_datasets",
           "list_models", "list_suites", "list_tasks", "predict", "report", "resolve_options", "results_file", "run",
           "samples", "search"]
