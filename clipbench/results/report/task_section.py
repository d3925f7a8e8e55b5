"""One task's section: the model x dataset table (95% CIs, suite mean), its bars and its ResNet-vs-ViT plot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_bytes
from clipbench.results.labels import variant_of
from clipbench.results.report.blocks import Block, fmt_ci
from clipbench.results.report.model_facts import chance_level, metric_label
from clipbench.tasks.registry import task_title

# ---------------------------------------------------------------- tables


@dataclass
class TaskSection:
    task: str
    table: pd.DataFrame  # index model, columns MultiIndex (field, dataset), fields value/ci_low/ci_high
    means: pd.Series  # suite mean per model over the datasets it has
    complete: pd.Series  # bool per model: has every dataset of the table
    images: dict[str, str] = field(default_factory=dict)  # caption -> file name
    not_plotted: list[str] = field(default_factory=list)


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
    order = sorted(values.index, key=lambda m: (bool(variant_of(m)),
                                                {"ResNet": 0, "ViT": 1}.get(families.get(m, "other"), 2), -means[m]))
    return TaskSection(task, table.loc[order], means.loc[order], complete.loc[order])

def task_block(task, rows, names, facts, families, out: Path, plots) -> tuple[Block, list[Path]]:
    section = _section(task, rows, families)
    title = task_title(task)
    datasets = list(section.table["value"].columns)
    metrics = list(dict.fromkeys(rows.sort_values("dataset")["metric"]))
    per_dataset_metric = rows.groupby("dataset")["metric"].last().to_dict()
    ylabel = metric_label(task, metrics)
    has_variants = any(variant_of(m) for m in section.table.index)
    table_rows = []
    for model in section.table.index:
        cells = [fmt_ci(section.table["value"].at[model, d], section.table["ci_low"].at[model, d],
                      section.table["ci_high"].at[model, d]) for d in datasets]
        mean = f"{section.means[model]:.1f}" + ("" if section.complete[model] else " *")
        row = [names[model], families[model], *cells, mean]
        if has_variants:
            row.append(f"variant ({variant_of(model)}), not plotted" if variant_of(model) else "full")
        table_rows.append(row)
    header = ["model", "image tower", *datasets, "suite mean"] + (["run"] if has_variants else [])
    note = (f"{ylabel.replace(' (%)', '')} in %, with 95% confidence intervals; "
            "suite mean = mean over the datasets in the table.")
    if not section.complete.all():
        note += " * mean over fewer datasets (some results missing)."
    if has_variants:
        note += (" Variant runs (limit=N: a random subset of N samples per split; fp16/bf16: lower precision; "
                 "other non-default task options) are listed for reference and left out of the plots.")
    block = Block(title, header, table_rows, note)

    # the plots show full default runs only, under their short names
    plotted = [m for m in section.table.index if not variant_of(m)]
    chance = {d: chance_level(d, per_dataset_metric.get(d, "")) for d in datasets}
    written = []
    if not plotted:
        reason = "every result of this task is a variant run (--limit, precision, ...), and the plots show full runs only"
        block.missing += [f"No per-dataset bars: {reason}.", f"No ResNet-vs-ViT plot: {reason}."]
        return block, written
    table = section.table.loc[plotted].rename(index=names)
    short_families = {names[m]: families[m] for m in plotted}
    bars_name = f"bars_{file_slug(task)}.png"
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
    scatter_name = f"resnet_vs_vit_{file_slug(task)}.png"
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
