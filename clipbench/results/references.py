"""Reference rows: published numbers from a CLIP_benchmark export or an open_clip results table, set next to
measured ones by ``clipbench report --reference`` and ``clipbench compare --reference`` (never part of the gate).

Readable files (untrusted: numbers must be finite fractions in [0, 1], names are only compared and escaped):

* CLIP_benchmark: one result JSON, a folder of them, or the CSV its ``build`` writes (columns ``dataset``,
  ``model``, ``pretrained``, ``task`` and its metric names, fractions);
* open_clip: its results table (``name``, ``pretrained``, ``Average perf. on N datasets``, one column per
  dataset; each dataset's main metric as open_clip's evaluation defines it, compared with the measured primary
  metric).

A reference row matches a measured row with the same model (as open_clip names it: ``ViT-B-32``/``openai``
for clipbench's ``ViT-B/32``; ``openclip:ARCH/TAG`` as ``ARCH``/``TAG``; else the name itself with
``pretrained`` ``clipbench``), dataset (CLIP_benchmark's and open_clip's names mapped to clipbench's) and task,
on the measured row's primary metric. So an export of clipbench's own results reads back as references too.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.tables import csv_records
from clipbench.results.export import CLIP_BENCHMARK_TASKS, OPENCLIP_COLUMNS, peer_model
from clipbench.results.source import latest_rows, primary_rows

log = logging.getLogger(__name__)

MAX_BYTES = 64 << 20  # a reference file larger than this is not a results table
#: CLIP_benchmark dataset names that differ from clipbench's (after dropping ``wds/`` and ``vtab/``)
_CB_DATASETS = {"cars": "stanford_cars", "pets": "oxford_pets", "flowers": "flowers102", "renderedsst2": "rendered_sst2",
                "imagenetv2": "imagenet_v2", "imagenet-a": "imagenet_a", "imagenet-r": "imagenet_r",
                "imagenet_sketch": "imagenet_sketch", "mscoco_captions": "mscoco_captions"}
_CB_TASKS = {peer: ours for ours, (peer, _) in CLIP_BENCHMARK_TASKS.items()} | {"zeroshot_retrieval": "zeroshot_retrieval"}
_CB_METRICS = {peer: ours for _, (_, names) in CLIP_BENCHMARK_TASKS.items() for ours, peer in names.items()}
_OPENCLIP_DATASETS = {column: name for name, column in OPENCLIP_COLUMNS.items()}
PRIMARY = "*"  # open_clip's table: the dataset's main metric, compared with the measured primary metric


@dataclass(frozen=True)
class ReferenceRow:
    source: str  # the file it came from (its name)
    model: str
    pretrained: str
    dataset: str
    task: str
    metrics: dict  # clipbench metric name (or PRIMARY) -> percent

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.model.lower(), self.pretrained.lower(), self.dataset, self.task


def _percent(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return 100.0 * number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def _cb_metric(name: str) -> str | None:
    if name in _CB_METRICS:
        return _CB_METRICS[name]
    for peer, ours in (("image_retrieval_recall@", "t2i_recall@"), ("text_retrieval_recall@", "i2t_recall@")):
        if name.startswith(peer) and name[len(peer):].isdigit():
            return ours + name[len(peer):]
    return None


def _cb_dataset(name: str) -> str:
    for prefix in ("wds/", "vtab/"):
        name = name.removeprefix(prefix)
    return _CB_DATASETS.get(name, name)


def _cb_row(data, source: str) -> ReferenceRow | None:
    """One CLIP_benchmark result (a JSON object or a row of ``build``'s CSV) as a reference row."""
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("dataset", "model", "task")):
        return None
    task = _CB_TASKS.get(data["task"])
    metrics_in = data.get("metrics") if isinstance(data.get("metrics"), dict) else data
    if task is None:
        return None
    fewshot = metrics_in.get("fewshot_k")
    if task == "linear_probe" and str(fewshot or "").strip() not in ("", "None", "-1"):
        task = f"linear_probe_{int(float(fewshot))}shot"
    metrics = {}
    for name, value in metrics_in.items():
        ours, percent = _cb_metric(str(name)), _percent(value)
        if ours is not None and percent is not None:
            metrics[ours] = percent
    if not metrics:
        return None
    return ReferenceRow(source, data["model"], str(data.get("pretrained") or ""), _cb_dataset(data["dataset"]), task,
                        metrics)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ClipbenchError(f"--reference {path}: larger than {MAX_BYTES >> 20} MiB; not a results table")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClipbenchError(f"--reference {path}: cannot read it ({exc})") from exc


def _from_csv(path: Path) -> list[ReferenceRow]:
    try:
        table = csv_records(_read_text(path).splitlines())
    except csv.Error as exc:
        raise ClipbenchError(f"--reference {path}: not a CSV ({exc})") from exc
    columns = set(table[0]) if table else set()
    if {"name", "pretrained"} <= columns and any(c.startswith("Average perf.") for c in columns):
        rows = []
        for row in table:
            for column, value in row.items():
                percent = _percent(value)
                if not isinstance(column, str) or column in ("name", "pretrained") or column.startswith("Average") or percent is None:
                    continue
                rows.append(ReferenceRow(path.name, str(row.get("name") or ""), str(row.get("pretrained") or ""),
                                         _OPENCLIP_DATASETS.get(column, column), "zeroshot", {PRIMARY: percent}))
        return rows
    if {"dataset", "model", "pretrained", "task"} <= columns:
        return [r for r in (_cb_row(row, path.name) for row in table) if r is not None]
    raise ClipbenchError(f"--reference {path}: neither open_clip's results table (name, pretrained, Average "
                         "perf. ...) nor CLIP_benchmark's build CSV (dataset, model, pretrained, task, metrics)")


def _from_json(path: Path) -> list[ReferenceRow]:
    try:
        data = json.loads(_read_text(path))
    except (ValueError, RecursionError) as exc:
        raise ClipbenchError(f"--reference {path}: not JSON ({exc})") from exc
    row = _cb_row(data, path.name)
    return [row] if row is not None else []


def load_references(paths) -> list[ReferenceRow]:
    """Every reference row of ``paths`` (files, or folders of CLIP_benchmark JSONs)."""
    rows: list[ReferenceRow] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = [row for f in sorted(path.glob("*.json")) for row in _from_json(f)]
        elif path.is_file():
            found = _from_csv(path) if path.suffix.lower() == ".csv" else _from_json(path)
        else:
            raise ClipbenchError(f"--reference {path}: no such file or folder")
        if not found:
            raise ClipbenchError(f"--reference {path}: holds no CLIP_benchmark or open_clip result")
        rows += found
    return rows


def reference_table(source: str | os.PathLike, paths) -> tuple[list[str], list[list[str]]]:
    """Measured primary metric next to each matching reference row: (header, rows) of text cells."""
    references: dict[tuple, list[ReferenceRow]] = {}
    for ref in load_references(paths):
        references.setdefault(ref.key, []).append(ref)
    rows_in, _ = primary_rows(source)
    out = []
    for row in latest_rows(rows_in).values():
        if row.value is None:
            continue
        model, pretrained = peer_model(row.model)
        for ref in references.get((model.lower(), pretrained.lower(), row.dataset, row.task), []):
            value = ref.metrics.get(row.metric, ref.metrics.get(PRIMARY))
            if value is None:
                continue
            label = row.model + (f" [{row.variant}]" if row.variant else "")
            out.append([label, row.dataset, row.task, row.metric, f"{row.value:.2f}", f"{value:.2f}",
                        f"{row.value - value:+.2f}", f"reference: {ref.source}"])
    header = ["model", "dataset", "task", "metric", "measured", "reference", "Δ", "source"]
    return header, out
