"""``clipbench report``: results -> a Markdown report, an HTML page and PNG plots.

Input is a results directory (its ``results.jsonl``, else ``leaderboard.csv``), a ``results.jsonl``
or a long ``leaderboard.csv`` (schemas in docs/ARCHITECTURE.md). For each task the report shows
the model x dataset table of primary metrics with 95% CIs and the suite mean, bars per dataset
grouped by model, ResNet against ViT (suite mean against image-tower GFLOPs, else parameters),
and the published numbers for the same model and dataset where there are any.

Model facts (family, parameters, GFLOPs, resolution) come from the model registry; open_clip and
Hugging Face names of the same architectures (``openclip:ViT-B-16/...``, ``hf:.../clip-vit-base-
patch16``) borrow them, since cost depends on the architecture, not on the weights.
"""

from __future__ import annotations

import csv
import html
import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import pandas as pd

from clipbench.errors import ClipbenchError
from clipbench.fileio import atomic_write_bytes, atomic_write_text
from clipbench.results import read_records, record_variant

log = logging.getLogger(__name__)

TASK_TITLES = {"zeroshot": "Zero-shot classification", "linear_probe": "Linear probe"}
_COLUMNS = ["model", "dataset", "task", "metric", "value", "ci_low", "ci_high", "n_samples", "model_family", "timestamp"]


# ---------------------------------------------------------------- reading results


def _resolve_source(source: str | os.PathLike) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        for name in ("results.jsonl", "leaderboard.csv"):
            if (path / name).is_file():
                return path / name
        raise ClipbenchError(f"no results.jsonl or leaderboard.csv in {path}; run `clipbench run` first")
    if not path.is_file():
        raise ClipbenchError(f"results not found: {path} (expected a results directory, results.jsonl or leaderboard.csv)")
    return path


def _labelled(model: str, variant: str) -> str:
    """A non-default run (--limit, bf16, ...) shows as its own row: ``ViT-B/16 [limit=500]``."""
    return f"{model} [{variant}]" if variant else model


def _unlabelled(model: str) -> str:
    return re.sub(r" \[[^\]]*\]$", "", model)


def _records_frame(path: Path) -> pd.DataFrame:
    """results.jsonl -> one primary-metric row per record, oldest first (newest wins downstream)."""
    rows = []
    for order, rec in enumerate(read_records(path)):
        metric = rec.get("primary_metric")
        if metric not in rec["metrics"]:
            raise ClipbenchError(f"{path}: record for {rec['model']}/{rec['dataset']}/{rec['task']} lacks its "
                                 f"primary metric {metric!r}")
        ci = rec.get("ci95") or {}
        rows.append({
            "model": _labelled(rec["model"], record_variant(rec)), "dataset": rec["dataset"], "task": rec["task"],
            "metric": metric, "value": rec["metrics"][metric], "ci_low": ci.get("low"), "ci_high": ci.get("high"),
            "n_samples": rec.get("n_samples"), "model_family": rec.get("model_family"),
            "timestamp": rec.get("timestamp") or "", "_order": order,
        })
    frame = pd.DataFrame(rows, columns=[*_COLUMNS, "_order"])
    return frame.sort_values(["timestamp", "_order"]).drop(columns="_order")


def _leaderboard_frame(path: Path) -> pd.DataFrame:
    """Long leaderboard.csv -> primary-metric rows (the metric that carries a CI, else the only one)."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ClipbenchError(f"cannot read {path} as a leaderboard CSV: {exc}") from exc
    missing = {"model", "dataset", "task", "metric", "value"} - set(frame.columns)
    if missing:
        raise ClipbenchError(f"{path} is not a long leaderboard CSV: missing columns {', '.join(sorted(missing))}")
    for col in _COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame["timestamp"] = frame["timestamp"].fillna("").astype(str)
    if "variant" in frame.columns:
        frame["model"] = [_labelled(m, v) for m, v in zip(frame["model"], frame["variant"].fillna(""), strict=True)]
    if "primary_metric" in frame.columns:
        frame = frame[frame["metric"] == frame["primary_metric"]]
    else:
        keys = ["model", "dataset", "task"]
        with_ci = frame[frame["ci_low"].notna()]
        keep = with_ci if len(with_ci.groupby(keys)) == len(frame.groupby(keys)) else frame
        preference = {"top1": 0, "mean_per_class_recall": 0}  # equal: only used when no CI says which
        keep = keep.assign(_pref=keep["metric"].map(preference).fillna(1))
        frame = keep.sort_values("_pref").groupby(keys, as_index=False, sort=False).first().drop(columns="_pref")
    return frame[_COLUMNS].sort_values("timestamp", kind="stable")


def load_results(source: str | os.PathLike = "results") -> tuple[pd.DataFrame, Path]:
    """Primary-metric rows (newest per model x dataset x task) and the file they came from."""
    path = _resolve_source(source)
    frame = _records_frame(path) if path.suffix == ".jsonl" else _leaderboard_frame(path)
    if frame.empty:
        raise ClipbenchError(f"{path} holds no readable result records" if path.suffix == ".jsonl"
                             else f"{path} holds no results")
    frame = frame.drop_duplicates(["model", "dataset", "task"], keep="last")
    for col in ("value", "ci_low", "ci_high"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame.reset_index(drop=True), path


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


def model_facts(models: list[str], frame: pd.DataFrame) -> dict[str, dict]:
    """family / params / image_gflops / resolution per model name, registry first, records second."""
    registry = _registry_facts()
    out = {}
    for model in models:
        facts = dict(registry.get(_norm(_unlabelled(model))) or {})
        alias = _architecture_alias(_unlabelled(model))
        if not facts and alias:
            facts = dict(registry.get(_norm(alias)) or {})
        recorded = frame.loc[frame["model"] == model, "model_family"].dropna()
        if not facts.get("family") and len(recorded):
            facts["family"] = str(recorded.iloc[-1])
        facts.setdefault("family", None)
        facts["family"] = facts["family"] or "other"
        out[model] = facts
    return out


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
    order = sorted(values.index, key=lambda m: ({"ResNet": 0, "ViT": 1}.get(families.get(m, "other"), 2), -means[m]))
    return TaskSection(task, table.loc[order], means.loc[order], complete.loc[order])


# ---------------------------------------------------------------- rendering


@dataclass
class Report:
    out_dir: Path
    markdown: Path
    html: Path
    images: list[Path]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt_num(value, scale: float = 1.0, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) / scale:.{digits}f}"


def build_report(source: str | os.PathLike = "results", out_dir: str | os.PathLike | None = None,
                 published: bool = True) -> Report:
    """Write report.md, report.html and PNG plots for the results at ``source``; return their paths."""
    from clipbench import plots

    frame, path = load_results(source)
    out = Path(out_dir) if out_dir is not None else (path.parent / "report")
    models = list(dict.fromkeys(frame["model"]))
    facts = model_facts(models, frame)
    families = {m: facts[m]["family"] for m in models}
    tasks = sorted(frame["task"].unique(), key=lambda t: (list(TASK_TITLES).index(t) if t in TASK_TITLES else 99, t))

    blocks: list[tuple[str, list[str], list[list[str]], str, str]] = []  # (heading, header, rows, note, task)
    images: list[tuple[str, str, str]] = []  # (task, caption, file)
    written: list[Path] = []

    model_rows = [[m, families[m], _fmt_num(facts[m].get("params"), 1e6), _fmt_num(facts[m].get("image_gflops"), 1, 2),
                   str(facts[m].get("resolution") or "–")] for m in sorted(models, key=lambda m: (families[m], m))]
    blocks.append(("Models", ["model", "image tower", "params (M)", "image GFLOPs", "resolution"], model_rows, "", ""))

    for task in tasks:
        section = _section(task, frame[frame["task"] == task], families)
        title = TASK_TITLES.get(task, task.replace("_", " ").capitalize())
        datasets = list(section.table["value"].columns)
        metric_names = sorted(frame.loc[frame["task"] == task, "metric"].unique())
        rows = []
        for model in section.table.index:
            cells = [_fmt(section.table["value"].at[model, d], section.table["ci_low"].at[model, d],
                          section.table["ci_high"].at[model, d]) for d in datasets]
            mean = f"{section.means[model]:.1f}" + ("" if section.complete[model] else " *")
            rows.append([model, families[model], *cells, mean])
        note = (f"Primary metric ({', '.join(metric_names)}) in %, with 95% confidence intervals; "
                "suite mean = mean over the datasets in the table.")
        if not section.complete.all():
            note += " * mean over fewer datasets (some results missing)."
        blocks.append((title, ["model", "image tower", *datasets, "suite mean"], rows, note, task))

        bars_name = f"bars_{task}.png"
        atomic_write_bytes(out / bars_name, plots.grouped_bars(section.table, families, f"{title}: per dataset",
                                                               "primary metric (%)"))
        written.append(out / bars_name)
        images.append((task, f"{title}: primary metric per dataset, grouped by model (whiskers: 95% CI)", bars_name))

        points, missing = _scatter_points(section, facts)
        if not points.empty:
            use_gflops = points.attrs["x"] == "image_gflops"
            xlabel = "image-tower GFLOPs" if use_gflops else "parameters (millions)"
            scatter_name = f"resnet_vs_vit_{task}.png"
            ylabel = f"mean over {', '.join(points.attrs['datasets'])} (%)"
            atomic_write_bytes(out / scatter_name, plots.family_scatter(points, xlabel, ylabel,
                                                                        f"{title}: ResNet vs ViT", log_x=True))
            written.append(out / scatter_name)
            caption = (f"{title}: mean over the datasets every model has against image-tower "
                       f"{'GFLOPs' if use_gflops else 'parameters'}, by family")
            if missing:
                caption += f" (not plotted, cost unknown: {', '.join(missing)})"
            images.append((task, caption, scatter_name))

    if published:
        pub_header, pub_rows = _published_rows(frame)
        if pub_rows:
            blocks.append(("Published numbers", pub_header, pub_rows, "Published: CLIP paper (arXiv 2103.00020) and open_clip's re-measurement; "
                           "see clipbench/reference/published.csv.", ""))

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = f"Source: `{path}` — {len(frame)} results, {len(models)} models, generated {stamp}."
    markdown = _render_markdown(intro, blocks, images)
    page = _render_html(intro, blocks, images)
    atomic_write_text(out / "report.md", markdown)
    atomic_write_text(out / "report.html", page)
    return Report(out, out / "report.md", out / "report.html", written)


def _scatter_points(section: TaskSection, facts: dict[str, dict]) -> tuple[pd.DataFrame, list[str]]:
    """(model, family, x, y): x = image GFLOPs (else parameters), y = mean over the datasets all models share.

    Averaging over shared datasets only keeps a model with missing results from looking better or
    worse than the others just because its mean covers different datasets.
    """
    models = list(section.means.index)
    values = section.table["value"]
    common = [d for d in values.columns if values[d].notna().all()]
    means = values[common].mean(axis=1) if common else section.means
    for key, scale in (("image_gflops", 1.0), ("params", 1e6)):
        known = [m for m in models if facts[m].get(key)]
        if len(known) >= max(2, len(models) // 2):
            points = pd.DataFrame({"model": known, "family": [facts[m]["family"] for m in known],
                                   "x": [float(facts[m][key]) / scale for m in known],
                                   "y": [float(means[m]) for m in known]})
            points.attrs["x"] = key
            points.attrs["datasets"] = common or list(values.columns)
            return points, [m for m in models if m not in known]
    return pd.DataFrame(), models


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


def _render_markdown(intro: str, blocks, images) -> str:
    parts = ["# clipbench report", "", intro, ""]
    by_task: dict[str, list[tuple[str, str]]] = {}
    for task, caption, name in images:
        by_task.setdefault(task, []).append((caption, name))
    for heading, header, rows, note, task in blocks:
        parts += [f"## {heading}", "", _md_table(header, rows), ""]
        if note:
            parts += [note, ""]
        for caption, name in by_task.get(task, []):
            parts += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    return "\n".join(parts)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
        "td:first-child,th:first-child{text-align:left}figure{margin:1em 0}img{max-width:100%}"
        "figcaption{color:#555;font-size:13px}")


def _render_html(intro: str, blocks, images) -> str:
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>clipbench report</title>",
             f"<style>{_CSS}</style></head><body>", "<h1>clipbench report</h1>", f"<p>{html.escape(intro)}</p>"]
    for heading, header, rows, note, task in blocks:
        parts += [f"<h2>{html.escape(heading)}</h2>", _html_table(header, rows)]
        if note:
            parts.append(f"<p>{html.escape(note)}</p>")
        for t, caption, name in images:
            if task and t == task:
                parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
