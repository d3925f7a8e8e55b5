"""Result records in MTEB's (and MIEB's) results layout, as ``mteb``'s ``ResultCache(DIR).load_results`` reads it.

Layout (mteb 2.x, read from its ``cache/result_cache.py`` and ``results/task_result.py``)::

    DIR/results/<model name, "/" as "__">/<revision>/model_meta.json
    DIR/results/<model name, "/" as "__">/<revision>/<TaskName>.json

A task file is a ``TaskResult``: ``task_name``, ``dataset_revision``, ``mteb_version``, ``evaluation_time``,
``kg_co2_emissions``, ``date`` and ``scores = {split: [{"main_score", "hf_subset", "languages", ...}]}``,
scores as fractions (0-1). ``model_meta.json`` holds ``ModelMeta``'s fields (``name``, ``revision``,
``n_parameters``, ``modalities``, ...). The revision is the checkpoint's SHA-256 (clipbench's weights hash).

Zero-shot classification records of datasets MIEB has (``MIEB_ZEROSHOT``, names from mteb 2.26's task
registry) get MIEB's task name, with ``main_score`` = accuracy = clipbench's top-1: the same protocol. Every
other record (other datasets, the linear probe, whose MIEB counterpart is a different k-shot protocol,
retrieval, whose MTEB main score is nDCG@10) keeps clipbench's name, ``clipbench_<dataset>_<task>``, so the
files load with mteb's reader but never pass for an MTEB task.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path

from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_text, ensure_dir
from clipbench.results.export import fraction
from clipbench.results.records import record_variant

log = logging.getLogger(__name__)

#: clipbench dataset -> MIEB zero-shot classification task (main score: accuracy)
MIEB_ZEROSHOT = {
    "cifar10": "CIFAR10ZeroShot", "cifar100": "CIFAR100ZeroShot", "caltech101": "Caltech101ZeroShot",
    "country211": "Country211ZeroShot", "dtd": "DTDZeroShot", "eurosat": "EuroSATZeroShot",
    "fer2013": "FER2013ZeroShot", "fgvc_aircraft": "FGVCAircraftZeroShot", "food101": "Food101ZeroShot",
    "gtsrb": "GTSRBZeroShot", "imagenet1k": "Imagenet1kZeroShot", "mnist": "MNISTZeroShot",
    "oxford_pets": "OxfordPetsZeroShot", "pcam": "PatchCamelyonZeroShot", "rendered_sst2": "RenderedSST2",
    "stl10": "STL10ZeroShot", "sun397": "SUN397ZeroShot", "stanford_cars": "StanfordCarsZeroShot",
}
_TASK_NAME = re.compile(r"[^A-Za-z0-9_]+")


def mteb_task_name(record: dict) -> str:
    if record["task"] == "zeroshot" and record["dataset"] in MIEB_ZEROSHOT and not record_variant(record):
        return MIEB_ZEROSHOT[record["dataset"]]
    variant = f"_{record_variant(record)}" if record_variant(record) else ""
    return "clipbench_" + _TASK_NAME.sub("_", f"{record['dataset']}_{record['task']}{variant}").strip("_")


def _scores(record: dict) -> dict:
    primary = record.get("primary_metric") or "top1"
    ci = record.get("ci95") or {}
    scores = {"main_score": fraction(record["metrics"].get(primary)), "hf_subset": "default",
              "languages": ["eng-Latn"]}
    if primary == "top1":
        scores["accuracy"] = scores["main_score"]
    for name, value in record["metrics"].items():
        if fraction(value) is not None and name not in scores:
            scores[name] = fraction(value) if "rank" not in name else float(value)  # ranks are not percentages
    scores.update({"main_score_ci95_low": fraction(ci.get("low")), "main_score_ci95_high": fraction(ci.get("high")),
                   "n_samples": record.get("n_samples")})
    return scores


def task_result(record: dict) -> dict:
    """One record as an MTEB ``TaskResult`` dict."""
    seconds = [record.get(k) for k in ("time_extract_s", "time_task_s")]
    when = None
    if record.get("timestamp"):
        try:
            when = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            when = None
    return {"task_name": mteb_task_name(record), "dataset_revision": record.get("dataset_fingerprint") or "unknown",
            "mteb_version": None,
            "evaluation_time": sum(s for s in seconds if isinstance(s, (int, float)) and not isinstance(s, bool)),
            "kg_co2_emissions": None, "date": when, "scores": {record.get("split") or "test": [_scores(record)]},
            "clipbench": {"record_id": record.get("record_id"), "model": record["model"], "task": record["task"],
                          "primary_metric": record.get("primary_metric"), "dataset": record["dataset"]}}


_ORG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")


def mteb_model_name(model: str) -> str:
    """MTEB's ``organization/model_name``: a Hugging Face model's own id, else ``clipbench/<model>`` (a path or a
    name with other characters becomes a file-name slug of it)."""
    if model.startswith("hf:") and _ORG_NAME.fullmatch(model[3:]):
        return model[3:]
    return "clipbench/" + file_slug(model.replace("/", "-").replace("@", "-"))


def model_meta(record: dict) -> dict:
    """MTEB's ``ModelMeta`` fields that clipbench knows for the record's model (the rest null)."""
    facts = record.get("model_facts") or {}
    params = facts.get("params")
    return {"name": mteb_model_name(record["model"]), "revision": record.get("weights_sha256") or "no_revision_available",
            "release_date": None, "languages": ["eng-Latn"],
            "n_parameters": params if isinstance(params, int) and not isinstance(params, bool) else None,
            "memory_usage_mb": None, "max_tokens": 77, "embed_dim": None, "license": None, "open_weights": None,
            "public_training_code": None, "public_training_data": None, "framework": ["PyTorch"],
            "reference": None, "similarity_fn_name": "cosine", "use_instructions": False, "training_datasets": None,
            "modalities": ["image", "text"], "loader": None,
            "adapted_from": None, "superseded_by": None, "model_type": ["dense"]}


def _model_folder(name: str) -> str:
    return file_slug(name.replace("/", "__"))


def write_mteb(records: list[dict], out_dir: Path) -> list[Path]:
    written: list[Path] = []
    for record in records:
        meta = model_meta(record)
        folder = ensure_dir(out_dir / "results" / _model_folder(meta["name"]) / file_slug(meta["revision"]))
        meta_path = folder / "model_meta.json"
        if meta_path not in written:
            atomic_write_text(meta_path, json.dumps(meta, indent=2, allow_nan=False) + "\n", within=out_dir)
            written.append(meta_path)
        result = task_result(record)
        path = folder / f"{file_slug(result['task_name'])}.json"
        if path in written:
            log.warning("export: two records map to MTEB task %s of %s; the newest is kept", result["task_name"],
                        record["model"])
        atomic_write_text(path, json.dumps(result, indent=2, allow_nan=False) + "\n", within=out_dir)
        if path not in written:
            written.append(path)
    return written
