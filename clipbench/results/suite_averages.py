"""The one-number summaries people quote: DataComp's averages, the VTAB average, the CLIP paper's 27-dataset mean.

Each average is a fixed list of datasets and a rule for each dataset's number (its "main metric"):

- the record's primary metric (``top1``, ``mean_per_class_recall``, the other metrics' own primary, ...),
- except zero-shot retrieval, where DataComp's main metric is ``mean_recall@1``: the mean of
  image->text and text->image recall@1 (``i2t_recall@1``, ``t2i_recall@1``), and WinoGAViL's association
  task, where it is the Jaccard index over the items with 10-12 candidates (``jaccard_10_12``).

DataComp's groups are those of its ``aggregate_scores.py`` (mlfoundations/datacomp): "Average" over the
38 tasks of ``tasklist.yml`` that have a main metric (FairFace and UTKFace are evaluated but have none),
"ImageNet dist. shifts" (Sketch, v2, A, O, R, ObjectNet; ImageNet itself is its own column), "VTAB"
(its 13 ``vtab``-tagged tasks, SUN397 included) and "Retrieval" (Flickr30k, MSCOCO, WinoGAViL).

A run or results folder that lacks some of an average's datasets still gets the average over those it
has, with ``n`` of ``of`` beside it and the missing ones named: an average over fewer datasets is a
different number, never to be read as the full one. Only zero-shot records count (linear-probe,
k-NN and image-search records are other protocols); within one model and variant the newest record
of each dataset is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: tasks whose records are other protocols than the suites' zero-shot numbers
_OTHER_PROTOCOLS = ("linear_probe", "knn", "image_retrieval")

IMAGENET_SHIFTS = ("imagenet_sketch", "imagenet_v2", "imagenet_a", "imagenet_o", "imagenet_r", "objectnet")
DATACOMP_VTAB = ("caltech101", "cifar100", "clevr_count", "clevr_distance", "dtd", "eurosat", "kitti_distance",
                 "flowers102", "oxford_pets", "pcam", "resisc45", "svhn", "sun397")
DATACOMP_RETRIEVAL = ("flickr30k", "mscoco_captions", "winogavil")
#: the 38 scored tasks of DataComp's tasklist.yml, in its order (clipbench names)
DATACOMP_38 = ("caltech101", "cifar10", "cifar100", "clevr_count", "clevr_distance", "country211", "dtd", "eurosat",
               "fgvc_aircraft", "food101", "gtsrb", "imagenet1k", "imagenet_sketch", "imagenet_v2", "imagenet_a",
               "imagenet_o", "imagenet_r", "kitti_distance", "mnist", "objectnet", "flowers102", "oxford_pets",
               "voc2007", "pcam", "rendered_sst2", "resisc45", "stanford_cars", "stl10", "sun397", "svhn",
               "flickr30k", "mscoco_captions", "winogavil", "iwildcam", "camelyon17", "fmow", "dollar_street", "geode")
#: CLIP_benchmark's ``vtab`` collection (19 tasks)
VTAB_19 = ("caltech101", "cifar100", "clevr_count", "clevr_distance", "diabetic_retinopathy", "dmlab",
           "dsprites_orientation", "dsprites_location", "dtd", "eurosat", "kitti_distance", "flowers102",
           "oxford_pets", "pcam", "resisc45", "smallnorb_azimuth", "smallnorb_elevation", "sun397", "svhn")
#: the CLIP paper's 27 zero-shot datasets (Table 9 / Appendix A)
CLIP_PAPER_27 = ("food101", "cifar10", "cifar100", "birdsnap", "sun397", "stanford_cars", "fgvc_aircraft", "voc2007",
                 "dtd", "oxford_pets", "caltech101", "flowers102", "mnist", "fer2013", "stl10", "eurosat", "resisc45",
                 "gtsrb", "kitti_distance", "country211", "pcam", "ucf101", "kinetics700", "clevr_count",
                 "hateful_memes", "rendered_sst2", "imagenet1k")


@dataclass(frozen=True)
class Average:
    name: str
    title: str
    datasets: tuple[str, ...]


AVERAGES: dict[str, Average] = {a.name: a for a in (
    Average("datacomp_average", "DataComp average (38 tasks)", DATACOMP_38),
    Average("imagenet", "ImageNet-1k", ("imagenet1k",)),
    Average("imagenet_dist_shifts", "ImageNet dist. shifts (6)", IMAGENET_SHIFTS),
    Average("datacomp_vtab", "VTAB (DataComp's 13)", DATACOMP_VTAB),
    Average("retrieval", "Retrieval (Flickr30k, MSCOCO, WinoGAViL)", DATACOMP_RETRIEVAL),
    Average("imagenet_and_shifts", "ImageNet and its 6 shifts", ("imagenet1k", *IMAGENET_SHIFTS)),
    Average("vtab_average", "VTAB (CLIP_benchmark's 19)", VTAB_19),
    Average("clip_paper_average", "CLIP paper's 27 datasets", CLIP_PAPER_27),
)}

#: the averages each built-in suite reports
SUITE_AVERAGES: dict[str, tuple[str, ...]] = {
    "datacomp": ("datacomp_average", "imagenet", "imagenet_dist_shifts", "datacomp_vtab", "retrieval"),
    "robustness": ("imagenet", "imagenet_dist_shifts", "imagenet_and_shifts"),
    "vtab": ("vtab_average", "datacomp_vtab"),
    "clip_paper": ("clip_paper_average",),
}


def main_value(record: dict) -> float | None:
    """A record's number in the averages: mean recall@1 of both directions for retrieval, else its primary metric."""
    metrics = record.get("metrics") or {}
    if record.get("task") == "zeroshot_retrieval":
        pair = [metrics.get("i2t_recall@1"), metrics.get("t2i_recall@1")]
        value = sum(pair) / 2 if all(isinstance(v, (int, float)) for v in pair) else None
    elif record.get("task") == "association":  # WinoGAViL: DataComp's main metric is jaccard_score_10-12
        value = metrics.get("jaccard_10_12")
    else:
        value = metrics.get(record.get("primary_metric") or "top1")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _counts(record: dict) -> bool:
    task = str(record.get("task", ""))
    return not any(task == t or task.startswith(t + "_") for t in _OTHER_PROTOCOLS)


def dataset_values(records: Iterable[dict], variant_of: Callable[[dict], str]) -> dict[tuple[str, str], dict[str, float]]:
    """(model, variant) -> dataset -> main value, from the newest zero-shot record of each (records in time order)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for record in records:
        if not _counts(record):
            continue
        value = main_value(record)
        if value is not None:
            out.setdefault((str(record["model"]), variant_of(record)), {})[str(record["dataset"])] = value
    return out


def average_of(values: dict[str, float], average: Average) -> dict:
    """One average over the datasets ``values`` has: value (None with none), n, of, missing."""
    have = [values[d] for d in average.datasets if d in values]
    return {"average": average.name, "title": average.title, "value": sum(have) / len(have) if have else None,
            "n": len(have), "of": len(average.datasets), "missing": [d for d in average.datasets if d not in values]}


def suite_average_rows(records: Iterable[dict], variant_of: Callable[[dict], str],
                       names: Iterable[str] | None = None) -> list[dict]:
    """One row per (model, variant, average) with at least one dataset; ``names`` (default: every average)."""
    wanted = [AVERAGES[n] for n in (names if names is not None else AVERAGES)]
    rows = []
    for (model, variant), values in dataset_values(records, variant_of).items():
        for average in wanted:
            row = average_of(values, average)
            if row["n"]:
                rows.append({"model": model, "variant": variant, **row})
    return rows


def describe(row: dict) -> str:
    """``DataComp average (38 tasks): 52.45 over 38/38`` or ``... 61.20 over 5/38 (missing: ...)``."""
    text = f"{row['title']}: {row['value']:.2f} over {row['n']}/{row['of']}"
    if row["missing"]:
        shown = ", ".join(row["missing"][:8]) + (f", ... (+{len(row['missing']) - 8})" if len(row["missing"]) > 8 else "")
        text += f" (missing: {shown}; not comparable with the full average)"
    return text


def pivot_columns(latest: list[dict], variant_of: Callable[[dict], str], rows: list[dict]) -> list[str]:
    """Add ``avg:<name>`` and ``avg:<name>:n`` to each pivot row (by its model and variant); the column names."""
    found = suite_average_rows(latest, variant_of)
    by_key = {(r["model"], r["variant"], r["average"]): r for r in found}
    names = [n for n in AVERAGES if any(r["average"] == n for r in found)]
    for row in rows:
        for name in names:
            hit = by_key.get((row["model"], row["variant"], name))
            row[f"avg:{name}"] = hit["value"] if hit else None
            row[f"avg:{name}:n"] = f"{hit['n']}/{hit['of']}" if hit else None
    return [c for n in names for c in (f"avg:{n}", f"avg:{n}:n")]


def summary_lines(records: list[dict], variant_of: Callable[[dict], str]) -> list[str]:
    """What ``clipbench run`` prints after its table for a suite with averages (by the records' ``suite``).

    One run's records share their options, so they are averaged per model: ``--limit`` cuts only the datasets
    larger than the limit, and those records' variant names it while the others' does not."""
    suites = list(dict.fromkeys(str(r.get("suite")) for r in records if r.get("suite") in SUITE_AVERAGES))
    names = list(dict.fromkeys(n for s in suites for n in SUITE_AVERAGES[s]))
    rows = suite_average_rows(records, lambda r: "", names) if names else []
    if not rows:
        return []
    limited = sorted({variant_of(r) for r in records if r.get("limit") is not None} - {""})
    lines = [f"\n{' and '.join(suites)} averages (each dataset's main metric; zero-shot records of this run"
             + (f"; {', '.join(limited)} where a dataset is larger" if limited else "") + "):"]
    lines += [f"  {row['model']}: {describe(row)}" for row in rows]
    return lines
