"""``clipbench report``: results -> a Markdown report, an HTML page and PNG plots.

Input is a results directory (its ``results.jsonl``, else ``leaderboard.csv``), a ``results.jsonl``
or a long ``leaderboard.csv`` (schemas in docs/ARCHITECTURE.md). For each task the report shows
the model x dataset table of primary metrics with 95% CIs and the suite mean, bars per dataset
grouped by model, ResNet against ViT (suite mean against image-tower GFLOPs, else parameters),
and the published numbers for the same model and dataset where there are any; then a provenance
table. Plots are meant for a slide: axes name the task and metric, start at 0 and mark chance;
legends use short names (a checkpoint file's stem); variant runs (--limit, bf16, ...) are listed
in the tables only; a plot or a model that is not drawn gets a line saying why.

Model facts (family, parameters, GFLOPs, resolution) come from the model registry; open_clip and
Hugging Face names of the same architectures (``openclip:ViT-B-16/...``, ``hf:.../clip-vit-base-
patch16``) borrow them, since cost depends on the architecture, not on the weights.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import pandas as pd

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import atomic_write_bytes, atomic_write_text
from clipbench.results.records import record_variant
from clipbench.results.source import primary_rows
from clipbench.tasks.registry import task_order, task_title

log = logging.getLogger(__name__)

_COLUMNS = ["model", "dataset", "task", "metric", "value", "ci_low", "ci_high", "n_samples", "model_family", "timestamp"]


# ---------------------------------------------------------------- reading results


def _labelled(model: str, variant: str) -> str:
    """A non-default run (--limit, bf16, ...) shows as its own row: ``ViT-B/16 [limit=500]``."""
    return f"{model} [{variant}]" if variant else model


def _unlabelled(model: str) -> str:
    return re.sub(r" \[[^\]]*\]$", "", model)


def load_results(source: str | os.PathLike = "results") -> tuple[pd.DataFrame, Path]:
    """Primary-metric rows (newest per model x dataset x task x variant) and the file they came from, read by
    ``clipbench.results.source`` (the reader the gate uses, so both agree on which metric is primary)."""
    rows, path = primary_rows(source)
    if not rows:
        raise ClipbenchError(f"{path} holds no readable result records" if path.suffix == ".jsonl"
                             else f"{path} holds no results")
    frame = pd.DataFrame(
        [{"model": _labelled(r.model, r.variant), "dataset": r.dataset, "task": r.task, "metric": r.metric,
          "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "n_samples": r.n_samples,
          "model_family": r.model_family, "timestamp": r.timestamp, "_order": i} for i, r in enumerate(rows)],
        columns=[*_COLUMNS, "_order"])
    frame = frame.sort_values(["timestamp", "_order"], kind="stable").drop(columns="_order")
    frame = frame.drop_duplicates(["model", "dataset", "task"], keep="last")
    for col in ("value", "ci_low", "ci_high"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.reset_index(drop=True), path


# ---------------------------------------------------------------- provenance


@dataclass
class Provenance:
    """What the report's rows for one model label were measured with (from the newest records)."""

    weights_sha256: str | None = None
    params: int | None = None  # a parameter count the records carry, if any
    fingerprints: dict[str, str] = field(default_factory=dict)  # dataset -> fingerprint
    versions: set[str] = field(default_factory=set)  # clipbench versions
    timestamps: list[str] = field(default_factory=list)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _text(value) -> str | None:
    return value if isinstance(value, str) and value and value.lower() != "nan" else None


def _sha_of(record: dict) -> str | None:
    """The weights' SHA-256: the record's own field, else the hash inside ``model_identity``."""
    for value in (record.get("weights_sha256"), record.get("model_identity")):
        text = _text(value)
        if text and (m := _SHA256.search(text.lower())):
            return m[0]
    return None


def _newest_by_key(path: Path) -> dict[tuple[str, str, str], dict]:
    """(model label, dataset, task) -> the newest record or leaderboard row, as load_results picks it.

    Read separately from the metric rows so that a field of the wrong type here costs a provenance
    cell, never the report.
    """
    rows: list[dict] = []
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:  # load_results has already warned about torn lines
            for line in fh:
                try:
                    rec = json.loads(line)
                    rows.append({**rec, "_label": _labelled(str(rec["model"]), record_variant(rec))})
                except Exception:  # torn or malformed: load_results decides whether that is fatal
                    continue
    else:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception:
            return {}
        for rec in frame.to_dict("records"):
            rows.append({**rec, "_label": _labelled(str(rec.get("model", "")), rec.get("variant") or "")})
    rows = [r for r in rows if isinstance(r.get("dataset"), str) and isinstance(r.get("task"), str)]
    rows.sort(key=lambda r: str(r.get("timestamp") or ""))  # stable: append order breaks ties
    return {(r["_label"], r["dataset"], r["task"]): r for r in rows}


def load_provenance(path: Path, frame: pd.DataFrame) -> dict[str, Provenance]:
    """Per model label in ``frame``: weights hash, dataset fingerprints, clipbench versions, dates."""
    newest = _newest_by_key(path)
    out: dict[str, Provenance] = {}
    for row in frame.itertuples():
        prov = out.setdefault(row.model, Provenance())
        rec = newest.get((row.model, row.dataset, row.task))
        if rec is None:
            continue
        prov.weights_sha256 = prov.weights_sha256 or _sha_of(rec)
        params = rec.get("params")
        if isinstance(params, int) and not isinstance(params, bool) and params > 0:
            prov.params = params
        if fp := _text(rec.get("dataset_fingerprint")):
            prov.fingerprints[row.dataset] = fp
        versions = rec.get("versions")
        if isinstance(versions, dict) and (v := _text(versions.get("clipbench"))):
            prov.versions.add(v)
        if ts := _text(rec.get("timestamp")):
            prov.timestamps.append(ts)
    return out


# ---------------------------------------------------------------- names


_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".safetensors", ".ckpt"}


def _is_path(model: str) -> bool:
    if re.match(r"(?i)(openclip|hf):", model):
        return False
    return Path(model).suffix.lower() in _CHECKPOINT_SUFFIXES or model.startswith(("/", "./", "../", "~"))


def _variant_of(label: str) -> str:
    """``"RN50 [limit=50]"`` -> ``"limit=50"`` (the suffix ``_labelled`` adds); ``""`` for a default run."""
    m = re.search(r" \[([^\]]*)\]$", label)
    return m[1] if m else ""


def short_names(labels: list[str], provenance: dict[str, Provenance]) -> dict[str, str]:
    """Legend names: a checkpoint path becomes its file's stem (plus a hash prefix when two stems clash)."""
    bases = list(dict.fromkeys(_unlabelled(label) for label in labels))
    sha = {}
    for label in labels:
        sha.setdefault(_unlabelled(label), None)
        sha[_unlabelled(label)] = sha[_unlabelled(label)] or (provenance.get(label) or Provenance()).weights_sha256
    def clashes(names: dict[str, str]) -> set[str]:
        return {b for b in bases if sum(1 for v in names.values() if v == names[b]) > 1}

    short = {b: (Path(b).stem if _is_path(b) else b) for b in bases}
    short |= {b: f"{short[b]} ({sha[b][:8]})" for b in clashes(short) if _is_path(b) and sha[b]}
    short |= {b: b for b in clashes(short)}  # still ambiguous (same stem and hash at two paths): the path
    out = {}
    for label in labels:
        variant = _variant_of(label)
        out[label] = _labelled(short[_unlabelled(label)], variant)
    return out


# ---------------------------------------------------------------- model facts


def _registry_facts() -> dict[str, dict]:
    try:
        from clipbench.models import describe_models

        rows = describe_models()
    except Exception as exc:  # the report must still render from the records alone
        log.warning("model registry unavailable (%s); using families from the records", exc)
        return {}
    facts = {}
    for row in rows:
        for name in [row["name"], *row.get("aliases", [])]:
            facts[_norm(name)] = {k: row.get(k) for k in ("family", "params", "image_gflops", "resolution")}
    return facts


def _checkpoint_facts_by_sha() -> dict[str, dict]:
    """Known checkpoints by SHA-256, so a copy of one loaded from a path keeps its facts."""
    try:
        from clipbench.models.checkpoints import OPENAI_CHECKPOINTS, PACKAGED_CHECKPOINTS
    except Exception:
        return {}
    return {c.sha256: {"family": c.family, "params": c.params, "image_gflops": c.image_gflops,
                       "resolution": c.resolution} for c in (*OPENAI_CHECKPOINTS, *PACKAGED_CHECKPOINTS)}


def _norm(name: str) -> str:
    return re.sub(r"[\s/_\-]", "", str(name)).lower()


_HF_SIZES = {"base": "B", "large": "L", "huge": "H"}


def _architecture_alias(model: str) -> str | None:
    """``openclip:ViT-B-16-quickgelu/x`` -> ``ViT-B/16``; ``hf:openai/clip-vit-large-patch14-336`` -> ``ViT-L/14@336px``."""
    if model.lower().startswith("openclip:"):
        arch = re.split(r"[/@]", model.split(":", 1)[1], maxsplit=1)[0]
        arch = re.sub(r"-quickgelu$", "", arch, flags=re.I)
        m = re.fullmatch(r"ViT-([BLH])-(\d+)(?:-(\d+))?", arch, flags=re.I)
        if m:
            return f"ViT-{m[1].upper()}/{m[2]}" + (f"@{m[3]}px" if m[3] else "")
        return arch
    if model.lower().startswith("hf:"):
        m = re.search(r"vit-(base|large|huge)-patch(\d+)(?:-(\d+))?", model, flags=re.I)
        if m:
            return f"ViT-{_HF_SIZES[m[1].lower()]}/{m[2]}" + (f"@{m[3]}px" if m[3] else "")
    return None


def model_facts(models: list[str], frame: pd.DataFrame,
                provenance: dict[str, Provenance] | None = None) -> dict[str, dict]:
    """family / params / image_gflops / resolution per model name.

    Registry by name, then by architecture alias, then by the weights' SHA-256 (a checkpoint file
    that is a known checkpoint); a parameter count the records carry wins over the table's.
    """
    registry = _registry_facts()
    by_sha = _checkpoint_facts_by_sha() if provenance else {}
    out = {}
    for model in models:
        facts = dict(registry.get(_norm(_unlabelled(model))) or {})
        alias = _architecture_alias(_unlabelled(model))
        if not facts and alias:
            facts = dict(registry.get(_norm(alias)) or {})
        prov = (provenance or {}).get(model) or Provenance()
        if not facts and prov.weights_sha256 in by_sha:
            facts = dict(by_sha[prov.weights_sha256])
        if prov.params:
            facts["params"] = prov.params
        recorded = frame.loc[frame["model"] == model, "model_family"].dropna()
        if not facts.get("family") and len(recorded):
            facts["family"] = str(recorded.iloc[-1])
        facts.setdefault("family", None)
        facts["family"] = facts["family"] or "other"
        out[model] = facts
    return out


# ---------------------------------------------------------------- what is plotted


_METRIC_NAMES = {"top1": "top-1", "top5": "top-5", "mean_per_class_recall": "mean per-class recall"}


def metric_label(task: str, metrics: list[str]) -> str:
    """``"Zero-shot top-1 (%)"``: the task's title (without "classification") and its metric(s)."""
    title = re.sub(r"(?i)\s+classification\b", "", task_title(task))
    names = " / ".join(_METRIC_NAMES.get(m, str(m).replace("_", " ")) for m in metrics)
    return f"{title} {names} (%)"


def _class_count(dataset: str) -> int | None:
    """Classes of a registered dataset (``folder:``/``csv:``/``hf:`` specs are not opened for this)."""
    if ":" in dataset:
        return None
    try:
        from clipbench.datasets.registry import DATASETS

        count = len(DATASETS.get(dataset).classnames)
    except Exception:
        return None
    return count or None


def chance_level(dataset: str, metric: str) -> float | None:
    """A uniform random guess's score in %: 100/K for top-1 and mean per-class recall, 500/K for top-5."""
    k = _class_count(dataset)
    if k is None:
        return None
    if metric in ("top1", "mean_per_class_recall"):
        return 100.0 / k
    if metric == "top5":
        return min(100.0, 500.0 / k)
    return None


# ---------------------------------------------------------------- published numbers


def load_published() -> pd.DataFrame:
    """The bundled published-numbers table (source, task, model, dataset, value)."""
    text = resources.files("clipbench.reference").joinpath("published.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))
    frame = pd.DataFrame(rows, columns=["source", "task", "model", "dataset", "value"])
    frame["value"] = pd.to_numeric(frame["value"])
    return frame


def _dataset_key(name: str) -> str:
    key = _norm(name)
    return {"imagenet1k": "imagenet", "ilsvrc2012": "imagenet"}.get(key, key)


# ---------------------------------------------------------------- tables


@dataclass
class TaskSection:
    task: str
    table: pd.DataFrame  # index model, columns MultiIndex (field, dataset), fields value/ci_low/ci_high
    means: pd.Series  # suite mean per model over the datasets it has
    complete: pd.Series  # bool per model: has every dataset of the table
    images: dict[str, str] = field(default_factory=dict)  # caption -> file name
    not_plotted: list[str] = field(default_factory=list)


def _fmt(value: float, low: float, high: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return f"{value:.1f}"
    return f"{value:.1f} [{low:.1f}, {high:.1f}]"


def _task_table(rows: pd.DataFrame) -> pd.DataFrame:
    table = rows.pivot_table(index="model", columns="dataset", values=["value", "ci_low", "ci_high"], aggfunc="last",
                             dropna=False)
    datasets = sorted(rows["dataset"].unique())
    models = list(dict.fromkeys(rows["model"]))  # first-seen order
    return table.reindex(index=models).reindex(columns=pd.MultiIndex.from_product([["value", "ci_low", "ci_high"], datasets]))


def _section(task: str, rows: pd.DataFrame, families: dict[str, str]) -> TaskSection:
    table = _task_table(rows)
    values = table["value"]
    means = values.mean(axis=1, skipna=True)
    complete = values.notna().all(axis=1)
    order = sorted(values.index, key=lambda m: (bool(_variant_of(m)),
                                                {"ResNet": 0, "ViT": 1}.get(families.get(m, "other"), 2), -means[m]))
    return TaskSection(task, table.loc[order], means.loc[order], complete.loc[order])


# ---------------------------------------------------------------- rendering


@dataclass
class Report:
    out_dir: Path
    markdown: Path
    html: Path
    images: list[Path]


@dataclass
class _Block:
    heading: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, file name)
    missing: list[str] = field(default_factory=list)  # one line per plot that is not drawn, saying why


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; a cell's line breaks (several items) become "; "."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(c.replace("\n", "; ") for c in r) + " |" for r in rows]
    return "\n".join(lines)


_CELL_KINDS = (
    ("hash", re.compile(r"((\S+: )?[0-9a-f]{12,}(\n|$))+")),  # hashes and "dataset: fingerprint" lines
    ("num", re.compile(r"[-+]?(\d[\d.]*( \[[^\]]*\])?( \*)?|–)")),  # 62.0 [61.5, 62.5], 57.3 *, +0.4
    ("date", re.compile(r"\d{4}-\d\d-\d\d( to \d{4}-\d\d-\d\d)?")),
)


def _html_cell(cell: str) -> str:
    """Numbers right-aligned on one line, hashes in monospace (wrapping anywhere), text left; a line per item."""
    kind = next((k for k, pattern in _CELL_KINDS if pattern.fullmatch(cell)), "text")
    return f"<td class='{kind}'>" + "<br>".join(html.escape(part) for part in cell.split("\n")) + "</td>"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt_num(value, scale: float = 1.0, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) / scale:.{digits}f}"


def build_report(source: str | os.PathLike = "results", out_dir: str | os.PathLike | None = None,
                 published: bool = True) -> Report:
    """Write report.md, report.html and PNG plots for the results at ``source``; return their paths."""
    from clipbench.results import plots

    frame, path = load_results(source)
    out = Path(out_dir) if out_dir is not None else (path.parent / "report")
    labels = list(dict.fromkeys(frame["model"]))
    provenance = load_provenance(path, frame)
    names = short_names(labels, provenance)
    facts = model_facts(labels, frame, provenance)
    families = {m: facts[m]["family"] for m in labels}
    bases = _representatives(labels)
    variants = [m for m in labels if _variant_of(m)]
    tasks = sorted(frame["task"].unique(), key=lambda t: (task_order(t), t))

    blocks = [_models_block(labels, names, facts, provenance)]
    written: list[Path] = []
    for task in tasks:
        block, files = _task_block(task, frame[frame["task"] == task], names, facts, families, out, plots)
        blocks.append(block)
        written += files
    if path.suffix == ".jsonl":
        detail_blocks, files = _detail_blocks(path, names, families, out, plots)
        blocks += detail_blocks
        written += files
        block, files = _history_block(path, out, plots, names)
        blocks.append(block)
        written += files
    if published:
        pub_header, pub_rows = _published_rows(frame)
        if pub_rows:
            for row in pub_rows:
                row[0] = names.get(row[0], row[0])
            blocks.append(_Block("Published numbers", pub_header, pub_rows,
                                 "Published: CLIP paper (arXiv 2103.00020) and open_clip's re-measurement; "
                                 "see clipbench/reference/published.csv."))
    blocks.append(_provenance_block(labels, names, provenance))

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counts = f"{_plural(len(frame), 'result')}, {_plural(len(bases), 'model')}"
    if variants:
        counts += f" (+ {_plural(len(variants), 'variant run')}, in the tables only)"
    counts += f", generated {stamp}."
    atomic_write_text(out / "report.md", _render_markdown(str(path), counts, blocks))
    atomic_write_text(out / "report.html", _render_html(str(path), counts, blocks))
    return Report(out, out / "report.md", out / "report.html", written)


def _bars_table(rows: dict[str, dict[str, tuple[float | None, float | None, float | None]]]) -> pd.DataFrame:
    """{model: {column: (value, ci_low, ci_high)}} as the table ``plots.grouped_bars`` draws."""
    columns = list(dict.fromkeys(c for cells in rows.values() for c in cells))
    data = {(field, c): [rows[m].get(c, (None, None, None))[i] for m in rows]
            for i, field in enumerate(("value", "ci_low", "ci_high")) for c in columns}
    frame = pd.DataFrame(data, index=list(rows))
    return frame.astype(float)


def _detail_blocks(path: Path, names: dict[str, str], families: dict[str, str], out: Path,
                   plots) -> tuple[list[_Block], list[Path]]:
    """What a primary metric hides: recall@k per direction (retrieval), accuracy per subset (compositional
    selection), and the three classification views side by side (zero-shot, k-NN, linear probe)."""
    from clipbench.results.records import latest_records, read_records

    latest = [r for r in latest_records(read_records(path)) if not record_variant(r)]
    blocks, written = [], []
    retrieval = [r for r in latest if r["task"] == "zeroshot_retrieval"]
    if retrieval:
        ks = sorted({int(k) for r in retrieval for k in (r.get("recall_k") or [1, 5, 10])})
        header = ["model", "dataset", *[f"{d} R@{k}" for d in ("i2t", "t2i") for k in ks], "mean recall"]
        rows = [[names.get(r["model"], r["model"]), r["dataset"],
                 *[_fmt_num(r["metrics"].get(f"{d}_recall@{k}")) for d in ("i2t", "t2i") for k in ks],
                 _fmt_num(r["metrics"].get("mean_recall"))] for r in retrieval]
        block = _Block("Zero-shot retrieval: recall@k", header, rows,
                       "Recall in %: image->text (an image is a hit if any of its captions ranks in the top k) "
                       "and text->image (a caption is a hit if its image ranks in the top k).")
        for dataset in dict.fromkeys(r["dataset"] for r in retrieval):
            cells = {}
            for r in (r for r in retrieval if r["dataset"] == dataset):
                cis = r.get("metric_ci95") or {}
                cells[names.get(r["model"], r["model"])] = {
                    f"{d} R@{k}": (r["metrics"].get(f"{d}_recall@{k}"), *(
                        (cis.get(f"{d}_recall@{k}") or {}).get(b) for b in ("low", "high")))
                    for d in ("i2t", "t2i") for k in ks}
            file = f"recall_at_k_{re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset)}.png"
            atomic_write_bytes(out / file, plots.grouped_bars(
                _bars_table(cells), {names.get(m, m): f for m, f in families.items()},
                f"Zero-shot retrieval on {dataset}: recall@k per model", "recall (%)"))
            block.figures.append((f"Recall@k on {dataset} per model, both directions (whiskers: 95% CI)", file))
            written.append(out / file)
        blocks.append(block)
    selection = [r for r in latest if r["task"] == "image_caption_selection"]
    if selection:
        rows = []
        for r in selection:
            for subset, info in sorted((r.get("per_subset") or {}).items()):
                ci = info.get("ci95") or {}
                rows.append([names.get(r["model"], r["model"]), r["dataset"], subset,
                             _fmt(info.get("accuracy"), ci.get("low"), ci.get("high")),
                             _fmt_num(info.get("chance")), str(info.get("n_items", ""))])
        blocks.append(_Block("Compositionality: accuracy per subset", ["model", "dataset", "subset", "accuracy",
                                                                          "chance", "items"], rows,
                             "Image-caption selection: the share of items whose true caption scores above every "
                             "hard negative (a tie counts as wrong), in %, with 95% bootstrap CIs; chance = "
                             "1 / number of candidates."))
    views = {"zeroshot": "zero-shot", "knn": "k-NN", "linear_probe": "linear probe"}
    by_model: dict[str, dict[str, list[float]]] = {}
    for r in latest:
        if r["task"] in views:
            value = r["metrics"].get(r.get("primary_metric") or "top1")
            if isinstance(value, (int, float)):
                by_model.setdefault(r["model"], {}).setdefault(views[r["task"]], []).append(float(value))
    shown = {m: v for m, v in by_model.items() if len(v) >= 2}
    if shown:
        cells = {names.get(m, m): {view: (sum(vs[view]) / len(vs[view]), None, None) for view in views.values()
                                   if view in vs} for m, vs in shown.items()}
        rows = [[model, *[_fmt_num(c.get(view, (None,))[0]) for view in views.values()]] for model, c in cells.items()]
        block = _Block("Classification views per model", ["model", *views.values()], rows,
                       "Primary metric in %, mean over each task's datasets: zero-shot (prompts), k-NN (frozen "
                       "features, no training) and the linear probe (trained on the features).")
        atomic_write_bytes(out / "classification_views.png", plots.grouped_bars(
            _bars_table(cells), {names.get(m, m): families.get(m, "other") for m in shown},
            "Zero-shot, k-NN and linear probe per model", "primary metric, mean over datasets (%)"))
        block.figures.append(("The three classification views of each model (mean over each task's datasets)",
                              "classification_views.png"))
        written.append(out / "classification_views.png")
        blocks.append(block)
    return blocks, written


def _history_block(path: Path, out: Path, plots, names: dict[str, str]) -> tuple[_Block, list[Path]]:
    """Primary metric over time per row (with CIs and tags), and accuracy against measured throughput."""
    from clipbench.results.history import history_points, throughput_points

    points = history_points(path)
    by_row: dict[tuple, list] = {}
    for p in points:
        by_row.setdefault((p.model, p.dataset, p.task, p.variant), []).append(p)
    rows = [[names.get(m, m), d, t, v or "-", str(len(ps)), f"{ps[0].value:.2f}", f"{ps[-1].value:.2f}",
             f"{ps[-1].value - ps[0].value:+.2f}"] for (m, d, t, v), ps in by_row.items()]
    block = _Block("History and cost", ["model", "dataset", "task", "variant", "runs", "first", "latest", "change"],
                   rows, "Every record in results.jsonl, oldest first; clipbench history lists them run by run.")
    files: list[Path] = []
    if any(len(ps) > 1 for ps in by_row.values()):
        atomic_write_bytes(out / "trend.png", plots.trend_plot(points))
        block.figures.append(("Primary metric over time per row (band: 95% CI; labels: --tag)", "trend.png"))
        files.append(out / "trend.png")
    else:
        block.missing.append("No trend plot: every row has a single run so far.")
    throughput = throughput_points(path)
    if throughput:
        atomic_write_bytes(out / "throughput.png", plots.throughput_plot(throughput))
        block.figures.append(("Primary metric against measured end-to-end images/s (extraction), per task",
                              "throughput.png"))
        files.append(out / "throughput.png")
    else:
        block.missing.append("No throughput plot: no record measured an extraction (all features came from the cache).")
    return block, files


def _representatives(labels: list[str]) -> list[str]:
    """One label per model: its default run's, else its first variant run's (a model run only with --limit)."""
    chosen: dict[str, str] = {}
    for label in labels:
        base = _unlabelled(label)
        if base not in chosen or label == base:
            chosen[base] = label
    return list(chosen.values())


def _models_block(labels, names, facts, provenance) -> _Block:
    rows = []
    for m in sorted(_representatives(labels), key=lambda m: (facts[m]["family"], _unlabelled(names[m]))):
        sha = (provenance.get(m) or Provenance()).weights_sha256
        rows.append([_unlabelled(names[m]), _unlabelled(m), sha[:12] if sha else "–", facts[m]["family"],
                     _fmt_num(facts[m].get("params"), 1e6), _fmt_num(facts[m].get("image_gflops"), 1, 2),
                     str(facts[m].get("resolution") or "–")])
    return _Block("Models", ["model", "name or path", "weights SHA-256", "image tower", "params (M)", "image GFLOPs",
                             "resolution"], rows,
                  "params: the whole CLIP model (image + text towers); GFLOPs: the image tower, one image at its "
                  "resolution.")


def _task_block(task, rows, names, facts, families, out: Path, plots) -> tuple[_Block, list[Path]]:
    section = _section(task, rows, families)
    title = task_title(task)
    datasets = list(section.table["value"].columns)
    metrics = list(dict.fromkeys(rows.sort_values("dataset")["metric"]))
    per_dataset_metric = rows.groupby("dataset")["metric"].last().to_dict()
    ylabel = metric_label(task, metrics)
    has_variants = any(_variant_of(m) for m in section.table.index)
    table_rows = []
    for model in section.table.index:
        cells = [_fmt(section.table["value"].at[model, d], section.table["ci_low"].at[model, d],
                      section.table["ci_high"].at[model, d]) for d in datasets]
        mean = f"{section.means[model]:.1f}" + ("" if section.complete[model] else " *")
        row = [names[model], families[model], *cells, mean]
        if has_variants:
            row.append(f"variant ({_variant_of(model)}), not plotted" if _variant_of(model) else "full")
        table_rows.append(row)
    header = ["model", "image tower", *datasets, "suite mean"] + (["run"] if has_variants else [])
    note = (f"{ylabel.replace(' (%)', '')} in %, with 95% confidence intervals; "
            "suite mean = mean over the datasets in the table.")
    if not section.complete.all():
        note += " * mean over fewer datasets (some results missing)."
    if has_variants:
        note += (" Variant runs (limit=N: a random subset of N samples per split; fp16/bf16: lower precision; "
                 "other non-default task options) are listed for reference and left out of the plots.")
    block = _Block(title, header, table_rows, note)

    # the plots show full default runs only, under their short names
    plotted = [m for m in section.table.index if not _variant_of(m)]
    chance = {d: chance_level(d, per_dataset_metric.get(d, "")) for d in datasets}
    written = []
    if not plotted:
        reason = "every result of this task is a variant run (--limit, precision, ...), and the plots show full runs only"
        block.missing += [f"No per-dataset bars: {reason}.", f"No ResNet-vs-ViT plot: {reason}."]
        return block, written
    table = section.table.loc[plotted].rename(index=names)
    short_families = {names[m]: families[m] for m in plotted}
    bars_name = f"bars_{task}.png"
    atomic_write_bytes(out / bars_name, plots.grouped_bars(table, short_families, f"{title}: per dataset", ylabel,
                                                           chance=chance))
    written.append(out / bars_name)
    caption = f"{ylabel.replace(' (%)', '')} per dataset, grouped by model (whiskers: 95% CI"
    caption += "; dashed: chance)" if any(v is not None for v in chance.values()) else ")"
    block.figures.append((caption, bars_name))

    points, left_out, why_none = _scatter_points(section, facts, plotted)
    if points.empty:
        block.missing.append(f"No ResNet-vs-ViT plot: {why_none}.")
        return block, written
    key = points.attrs["x"]
    used = points.attrs["datasets"]
    xlabel = "image-tower GFLOPs" if key == "image_gflops" else "parameters, image + text towers (millions)"
    chances = [chance[d] for d in used]
    mean_chance = sum(chances) / len(chances) if chances and None not in chances else None
    points = points.assign(model=points["model"].map(names))
    scatter_name = f"resnet_vs_vit_{task}.png"
    atomic_write_bytes(out / scatter_name, plots.family_scatter(
        points, xlabel, f"{ylabel.replace(' (%)', '')}, mean over {', '.join(used)} (%)",
        f"{title}: ResNet vs ViT", log_x=True, chance=mean_chance))
    written.append(out / scatter_name)
    quantity = "image-tower GFLOPs" if key == "image_gflops" else "parameter count (image + text towers)"
    caption = (f"{ylabel.replace(' (%)', '')}, mean over {', '.join(used)} (the datasets every plotted model has), "
               f"against {quantity}, by image-tower family")
    block.figures.append((caption, scatter_name))
    if left_out:
        block.missing.append("Not in the ResNet-vs-ViT plot: " + "; ".join(f"{names[m]} ({why})"
                                                                         for m, why in left_out.items()) + ".")
    return block, written


def _scatter_points(section: TaskSection, facts: dict[str, dict],
                    models: list[str]) -> tuple[pd.DataFrame, dict[str, str], str]:
    """(model, family, x, y) points, {left-out model: why}, and why there is no plot when none.

    x = image GFLOPs when every model has them, else the parameter count (known for more models:
    the registry, a known checkpoint's hash, or the records); y = the mean over the datasets all
    plotted models share, so a model with missing results does not look better or worse just
    because its mean covers different datasets.
    """
    values = section.table["value"].loc[models]
    known = {key: [m for m in models if facts[m].get(key)] for key in ("image_gflops", "params")}
    key = "image_gflops" if len(known["image_gflops"]) >= len(known["params"]) else "params"
    placed = known[key]
    if len(placed) < 2:
        return pd.DataFrame(), {}, (f"it needs two models with a known cost, and {len(placed)} of {len(models)} "
                                    "have an image-tower GFLOPs figure or a parameter count")
    common = [d for d in values.columns if values.loc[placed, d].notna().all()]
    if not common:
        return pd.DataFrame(), {}, "no dataset has results for every model"
    means = values.loc[placed, common].mean(axis=1)
    scale = 1.0 if key == "image_gflops" else 1e6
    points = pd.DataFrame({"model": placed, "family": [facts[m]["family"] for m in placed],
                           "x": [float(facts[m][key]) / scale for m in placed], "y": [float(means[m]) for m in placed]})
    points.attrs["x"] = key
    points.attrs["datasets"] = common
    what = "image-tower GFLOPs unknown" if key == "image_gflops" else "parameter count unknown"
    left_out = {m: f"{what}: not a registered checkpoint, its weights hash matches none, and its records carry none"
                for m in models if m not in placed}
    return points, left_out, ""


def _openai_weights_name(model: str) -> str | None:
    """The OpenAI checkpoint name when ``model`` runs OpenAI's weights through another backend."""
    lowered = model.lower()
    if lowered.startswith("openclip:") and re.search(r"/openai$", lowered):
        return _architecture_alias(model)
    if lowered.startswith("hf:openai/"):
        return _architecture_alias(model)
    return None


def _published_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Measured next to each published source, for models that run OpenAI's own weights."""
    published = load_published()
    published["_m"], published["_d"] = published["model"].map(_norm), published["dataset"].map(_dataset_key)
    sources = list(dict.fromkeys(published["source"]))
    rows = []
    for rec in frame.itertuples():
        names = {_norm(rec.model)}
        if (alias := _openai_weights_name(rec.model)) is not None:
            names.add(_norm(alias))
        match = published[published["_m"].isin(names) & (published["_d"] == _dataset_key(rec.dataset))
                          & (published["task"] == rec.task)]
        if match.empty:
            continue
        row = [rec.model, rec.dataset, rec.task, f"{rec.value:.1f}"]
        for source in sources:
            hit = match[match["source"] == source]
            row += [f"{hit['value'].iloc[0]:.1f}", f"{rec.value - hit['value'].iloc[0]:+.1f}"] if len(hit) else ["–", "–"]
        rows.append(row)
    header = ["model", "dataset", "task", "measured"] + [c for s in sources for c in (s, f"Δ {s}")]
    return header, rows


def _render_markdown(source: str, counts: str, blocks: list[_Block]) -> str:
    parts = ["# clipbench report", "", f"Source: `{source}` — {counts}", ""]
    for block in blocks:
        parts += [f"## {block.heading}", "", _md_table(block.header, block.rows), ""]
        if block.note:
            parts += [block.note, ""]
        for caption, name in block.figures:
            parts += [f"![{caption}]({name})", "", f"*{caption}*", ""]
        for line in block.missing:
            parts += [f"*{line}*", ""]
    return "\n".join(parts)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        "td.num{text-align:right;white-space:nowrap}td.date{white-space:nowrap}"
        "td.hash{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all;max-width:34em}"
        "figure{margin:1em 0}img{max-width:100%}"
        "figcaption{color:#555;font-size:13px}p.missing{color:#8a5a00;font-style:italic}"
        "code{font-size:13px}")


def _render_html(source: str, counts: str, blocks: list[_Block]) -> str:
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>clipbench report</title>",
             f"<style>{_CSS}</style></head><body>", "<h1>clipbench report</h1>",
             f"<p>Source: <code>{html.escape(source)}</code> — {html.escape(counts)}</p>"]
    for block in blocks:
        parts += [f"<h2>{html.escape(block.heading)}</h2>", _html_table(block.header, block.rows)]
        if block.note:
            parts.append(f"<p>{html.escape(block.note)}</p>")
        for caption, name in block.figures:
            parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        for line in block.missing:
            parts.append(f"<p class='missing'>{html.escape(line)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _provenance_block(labels, names, provenance: dict[str, Provenance]) -> _Block:
    rows = []
    for m in labels:
        prov = provenance.get(m) or Provenance()
        stamps = sorted(t[:10] for t in prov.timestamps)
        dates = "–" if not stamps else stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"
        rows.append([names[m], prov.weights_sha256 or "–",
                     "\n".join(f"{d}: {fp}" for d, fp in sorted(prov.fingerprints.items())) or "–",
                     ", ".join(sorted(prov.versions)) or "–", dates])
    return _Block("Provenance", ["model", "weights SHA-256", "dataset fingerprints", "clipbench", "measured"], rows,
                  "From the newest record behind each row of the tables above. clipbench versions come from "
                  "results.jsonl; leaderboard.csv does not carry them.")
