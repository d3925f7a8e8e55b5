"""Published numbers (CLIP paper, open_clip) next to the measured ones, for models that run OpenAI's weights."""

from __future__ import annotations

import csv
import re
from importlib import resources

import pandas as pd

from clipbench.results.report.model_facts import architecture_alias, norm_name

# ---------------------------------------------------------------- published numbers


def load_published() -> pd.DataFrame:
    """The bundled published-numbers table (source, task, model, dataset, value)."""
    text = resources.files("clipbench.reference").joinpath("published.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#")))
    frame = pd.DataFrame(rows, columns=["source", "task", "model", "dataset", "value"])
    frame["value"] = pd.to_numeric(frame["value"])
    return frame


def dataset_key(name: str) -> str:
    key = norm_name(name)
    return {"imagenet1k": "imagenet", "ilsvrc2012": "imagenet"}.get(key, key)

def _openai_weights_name(model: str) -> str | None:
    """The OpenAI checkpoint name when ``model`` runs OpenAI's weights through another backend."""
    lowered = model.lower()
    if lowered.startswith("openclip:") and re.search(r"/openai$", lowered):
        return architecture_alias(model)
    if lowered.startswith("hf:openai/"):
        return architecture_alias(model)
    return None


def published_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Measured next to each published source, for models that run OpenAI's own weights."""
    published = load_published()
    published["_m"], published["_d"] = published["model"].map(norm_name), published["dataset"].map(dataset_key)
    sources = list(dict.fromkeys(published["source"]))
    rows = []
    for rec in frame.itertuples():
        names = {norm_name(rec.model)}
        if (alias := _openai_weights_name(rec.model)) is not None:
            names.add(norm_name(alias))
        match = published[published["_m"].isin(names) & (published["_d"] == dataset_key(rec.dataset))
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
