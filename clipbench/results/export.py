"""``clipbench export``: result records in the formats peers read.

* ``clip_benchmark``: one JSON per (dataset, model, task) in CLIP_benchmark 1.6.2's layout (the dict its
  ``eval`` dumps: ``dataset``, ``model``, ``pretrained``, ``task``, ``metrics``, ``language``), with its metric
  names and its units (fractions 0-1), so ``clip_benchmark build`` turns a folder of them into its CSV.
  Metric names are read from CLIP_benchmark 1.6.2's ``metrics/`` (zeroshot_classification: ``acc1``,
  ``acc5``, ``mean_per_class_recall``; linear_probe: ``lp_acc1``, ``lp_acc5``, ``lp_mean_per_class_recall``;
  zeroshot_retrieval: ``image_retrieval_recall@k`` = text->image, ``text_retrieval_recall@k`` = image->text;
  image_caption_selection: ``acc``, ``image_acc``, ``text_acc``). Provenance (record id, weights hash,
  dataset fingerprint, n, the primary metric's 95% CI as fractions) rides along as extra top-level keys,
  which ``build`` turns into extra columns.
* ``mteb``: MTEB's results layout (``clipbench.results.export_mteb``).
* ``openclip_csv``: open_clip's results table (``docs/openclip_results.csv``: ``name, pretrained, params (M),
  FLOPs (B), Average perf. on N datasets, <dataset columns>``), zero-shot classification only, fractions
  with four decimals, one row per model.

Records are read with the one reader (untrusted: every number is checked finite, names only reach file
names through ``file_slug`` and CSV cells through ``csv_text``); the newest record per row wins.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_text, ensure_dir
from clipbench.foundations.tables import csv_text
from clipbench.results.records import latest_records, read_records, record_variant
from clipbench.results.source import resolve

log = logging.getLogger(__name__)

FORMATS = ("clip_benchmark", "mteb", "openclip_csv")

#: OpenAI's checkpoint names -> open_clip's architecture names (``pretrained="openai"``), as open_clip lists them
OPENAI_ARCHS = {"RN50": "RN50", "RN101": "RN101", "RN50x4": "RN50x4", "RN50x16": "RN50x16", "RN50x64": "RN50x64",
                "ViT-B/32": "ViT-B-32", "ViT-B/16": "ViT-B-16", "ViT-L/14": "ViT-L-14",
                "ViT-L/14@336px": "ViT-L-14-336"}

#: clipbench dataset -> column of open_clip's docs/openclip_results.csv (header read from open_clip's repository)
OPENCLIP_COLUMNS = {
    "imagenet1k": "ImageNet 1k", "caltech101": "Caltech-101", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
    "country211": "Country211", "dtd": "Describable Textures", "eurosat": "EuroSAT", "fgvc_aircraft": "FGVC Aircraft",
    "food101": "Food-101", "gtsrb": "GTSRB", "imagenet_sketch": "ImageNet Sketch", "imagenet_v2": "ImageNet v2",
    "imagenet_a": "ImageNet-A", "imagenet_r": "ImageNet-R", "mnist": "MNIST", "flowers102": "Oxford Flowers-102",
    "oxford_pets": "Oxford-IIIT Pet", "pcam": "PatchCamelyon", "rendered_sst2": "Rendered SST2",
    "stanford_cars": "Stanford Cars", "stl10": "STL-10", "sun397": "SUN397",
}

#: clipbench task -> (CLIP_benchmark task, {clipbench metric: CLIP_benchmark metric})
_CLASSIFY = {"top1": "acc1", "top5": "acc5", "mean_per_class_recall": "mean_per_class_recall"}
CLIP_BENCHMARK_TASKS: dict[str, tuple[str, dict[str, str]]] = {
    "zeroshot": ("zeroshot_classification", _CLASSIFY),
    "linear_probe": ("linear_probe", {k: "lp_" + v for k, v in _CLASSIFY.items()}),
    "image_caption_selection": ("image_caption_selection",
                                {"accuracy": "acc", "text_score": "text_acc", "image_score": "image_acc"}),
}


def peer_model(name: str) -> tuple[str, str]:
    """(model, pretrained) as open_clip and CLIP_benchmark name a checkpoint."""
    if name in OPENAI_ARCHS:
        return OPENAI_ARCHS[name], "openai"
    if name.startswith("openclip:") and "/" in name and "@" not in name:
        arch, _, tag = name[len("openclip:"):].partition("/")
        return arch, tag
    return name, "clipbench"


def fraction(value) -> float | None:
    """A clipbench percentage as the fraction peers store; None for a missing or non-finite number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value) / 100.0


def export_records(source: str | os.PathLike) -> list[dict]:
    """The newest full-data record per row of ``source`` (a results directory or results.jsonl)."""
    path = resolve(source)
    if path.suffix == ".csv":
        raise ClipbenchError(f"{path}: export needs the records (a results directory or results.jsonl), "
                             "not a leaderboard CSV")
    return latest_records(read_records(path))


def _clip_benchmark_metrics(record: dict) -> tuple[str, dict[str, float]] | None:
    task = record["task"]
    base = "linear_probe" if task.startswith("linear_probe") else task
    if base == "zeroshot_retrieval":
        names = {}
        for metric in record["metrics"]:
            direction, _, k = metric.partition("_recall@")
            if direction in ("i2t", "t2i") and k.isdigit():  # CLIP_benchmark: image retrieval = text -> image
                names[metric] = f"{'image' if direction == 't2i' else 'text'}_retrieval_recall@{k}"
        return "zeroshot_retrieval", names
    if base not in CLIP_BENCHMARK_TASKS:
        return None
    peer_task, names = CLIP_BENCHMARK_TASKS[base]
    if base == "image_caption_selection" and "group_score" in record["metrics"]:  # Winoground: acc is the group score
        names = {"group_score": "acc", "text_score": "text_acc", "image_score": "image_acc"}
    return peer_task, names


def clip_benchmark_result(record: dict) -> dict | None:
    """One record as CLIP_benchmark's result dict, or None where it has no such task (k-NN, image retrieval)."""
    mapped = _clip_benchmark_metrics(record)
    if mapped is None:
        return None
    peer_task, names = mapped
    metrics = {peer: fraction(record["metrics"].get(ours)) for ours, peer in names.items()}
    metrics = {k: v for k, v in metrics.items() if v is not None}
    if not metrics:
        return None
    model, pretrained = peer_model(record["model"])
    ci = record.get("ci95") or {}
    out = {"dataset": record["dataset"], "model": model, "pretrained": pretrained, "task": peer_task,
           "metrics": metrics, "language": "en"}
    if record["task"].startswith("linear_probe_") and record["task"].endswith("shot"):
        out["metrics"]["fewshot_k"] = int(record["task"][len("linear_probe_"):-len("shot")])
    primary = record.get("primary_metric")
    out.update({"primary_metric": names.get(primary, primary), "ci95_low": fraction(ci.get("low")),
                "ci95_high": fraction(ci.get("high")), "n_samples": record.get("n_samples"),
                "variant": record_variant(record), "clipbench_record_id": record.get("record_id"),
                "weights_sha256": record.get("weights_sha256"),
                "dataset_fingerprint": record.get("dataset_fingerprint")})
    return out


def _unique_name(stem: str, used: set[str]) -> str:
    name, n = f"{stem}.json", 2
    while name in used:
        name, n = f"{stem}-{n}.json", n + 1
    used.add(name)
    return name


def write_clip_benchmark(records: list[dict], out_dir: Path) -> list[Path]:
    """CLIP_benchmark's files, named as its ``--output`` default names them: dataset_pretrained_model_language_task."""
    written, used, out_dir = [], set(), ensure_dir(out_dir)
    for record in records:
        result = clip_benchmark_result(record)
        if result is None:
            log.warning("export: CLIP_benchmark has no task for %s records; %s/%s left out", record["task"],
                        record["model"], record["dataset"])
            continue
        variant = f"_{record_variant(record)}" if record_variant(record) else ""
        stem = "_".join(file_slug(p) for p in (result["dataset"], result["pretrained"], result["model"], "en",
                                               result["task"] + variant))
        path = out_dir / _unique_name(stem, used)
        atomic_write_text(path, json.dumps(result, indent=1, sort_keys=True, allow_nan=False) + "\n", within=out_dir)
        written.append(path)
    return written


def openclip_rows(records: list[dict]) -> tuple[list[str], list[dict]]:
    """open_clip's results table from the zero-shot classification records (full runs only)."""
    rows: dict[str, dict] = {}
    datasets: list[str] = []
    for record in records:
        if record["task"] != "zeroshot" or record_variant(record):
            continue
        value = fraction(record["metrics"].get(record.get("primary_metric") or "top1"))
        if value is None:
            continue
        column = OPENCLIP_COLUMNS.get(record["dataset"], record["dataset"])
        if column not in datasets:
            datasets.append(column)
        model, pretrained = peer_model(record["model"])
        params = (record.get("model_facts") or {}).get("params")
        row = rows.setdefault(record["model"], {"name": model, "pretrained": pretrained,
                                                "params (M)": _params_m(params), "FLOPs (B)": ""})
        row[column] = value
    ordered = [c for c in OPENCLIP_COLUMNS.values() if c in datasets] + [c for c in datasets
                                                                          if c not in OPENCLIP_COLUMNS.values()]
    average = f"Average perf. on {len(ordered)} datasets"
    for row in rows.values():
        values = [row[c] for c in ordered if c in row]
        row[average] = sum(values) / len(values)
    columns = ["name", "pretrained", "params (M)", "FLOPs (B)", average, *ordered]
    return columns, sorted(rows.values(), key=lambda r: -r[average])


def _params_m(params) -> str:
    if not isinstance(params, (int, float)) or isinstance(params, bool) or not math.isfinite(params):
        return ""
    return f"{params / 1e6:.2f}"


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_openclip_csv(records: list[dict], out_dir: Path) -> list[Path]:
    columns, rows = openclip_rows(records)
    if not rows:
        raise ClipbenchError("no full zero-shot classification record to export in open_clip's results table")
    path = ensure_dir(out_dir) / "openclip_results.csv"
    atomic_write_text(path, csv_text(columns, [[_cell(row.get(c)) for c in columns] for row in rows]), within=out_dir)
    return [path]
