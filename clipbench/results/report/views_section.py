"""Views across datasets: zero-shot against the linear probe, accuracy against image-tower GFLOPs with the
Pareto front, the average rank across datasets (CLIP_benchmark's convention) and the mean per task type
(MIEB's). Default runs only (variant runs are in the task tables)."""

from __future__ import annotations

import pandas as pd

from clipbench.results.labels import variant_of
from clipbench.results.report.blocks import Block, fmt_num, number
from clipbench.tasks.registry import task_order


def _defaults(frame: pd.DataFrame) -> pd.DataFrame:
    rows = frame[~frame["model"].map(lambda m: bool(variant_of(m)))]
    return rows[rows["value"].notna()]


def probe_gap_block(frame: pd.DataFrame, names: dict[str, str]) -> Block | None:
    """Zero-shot top-1 as a share of the linear probe's, per model and dataset both were run on."""
    rows = _defaults(frame)
    zs = rows[rows["task"] == "zeroshot"].set_index(["model", "dataset"])["value"]
    lp = rows[rows["task"] == "linear_probe"].set_index(["model", "dataset"])["value"]
    both = sorted(set(zs.index) & set(lp.index), key=lambda k: (names.get(k[0], k[0]), k[1]))
    if not both:
        return None
    table = [[names.get(m, m), d, f"{zs[m, d]:.1f}", f"{lp[m, d]:.1f}", f"{zs[m, d] - lp[m, d]:+.1f}",
              fmt_num(100 * zs[m, d] / lp[m, d] if lp[m, d] > 0 else None)] for m, d in both]
    return Block("Zero-shot against linear probe", ["model", "dataset", "zero-shot", "linear probe", "difference",
                                                     "zero-shot / probe (%)"], table,
                 "The dataset's own metric (top-1 or mean per-class recall) for both; the last column is how much of the probe's score zero-shot "
                 "reaches (the CLIP paper's Figure 5 and 6 question, per dataset).")


def average_rank(rows: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Mean over the datasets every model has of each model's rank (1 = best, ties averaged), as CLIP_benchmark's
    leaderboard ranks; and those datasets."""
    table = rows.pivot_table(index="model", columns="dataset", values="value", aggfunc="last")
    common = [d for d in table.columns if table[d].notna().all()]
    if not common:
        return pd.Series(dtype=float), []
    ranks = table[common].rank(axis=0, ascending=False, method="average")
    return ranks.mean(axis=1).sort_values(), common


def rank_block(frame: pd.DataFrame, names: dict[str, str]) -> Block | None:
    rows = _defaults(frame)
    table = []
    for task in sorted(rows["task"].unique(), key=lambda t: (task_order(t), t)):
        task_rows = rows[rows["task"] == task]
        if task_rows["model"].nunique() < 2:
            continue
        ranks, common = average_rank(task_rows)
        for model, rank in ranks.items():
            table.append([task, names.get(model, model), f"{rank:.2f}", str(len(common))])
    if not table:
        return None
    return Block("Average rank across datasets", ["task", "model", "average rank", "datasets"], table,
                 "Per task: each model's rank on each dataset (1 = the best score on the dataset's own metric, ties share the mean rank), "
                 "averaged over the datasets every model of the task was run on (CLIP_benchmark's convention).")


def task_type_block(frame: pd.DataFrame, names: dict[str, str]) -> Block | None:
    """MIEB's summary: each model's mean primary metric per task type (clipbench's tasks), over its datasets."""
    rows = _defaults(frame)
    if rows.empty:
        return None
    tasks = sorted(rows["task"].unique(), key=lambda t: (task_order(t), t))
    means = rows.groupby(["model", "task"])["value"].agg(["mean", "count"])
    table = []
    for model in sorted(rows["model"].unique(), key=lambda m: names.get(m, m)):
        cells = [f"{means.loc[(model, t), 'mean']:.1f} ({int(means.loc[(model, t), 'count'])})"
                 if (model, t) in means.index else "–" for t in tasks]
        table.append([names.get(model, model), *cells])
    return Block("Mean per task type", ["model", *tasks], table,
                 "Each model's mean score (each dataset's own metric) over the datasets it was run on per task (in brackets: how many), "
                 "MIEB's per-task-type summary; means over different dataset sets are not comparable across models.")


def compute_block(frame: pd.DataFrame, names: dict[str, str], facts: dict[str, dict]) -> Block | None:
    """Per task: the mean over the datasets every model has against image-tower GFLOPs, and which models are on
    the Pareto front (drawn in the task's ResNet-vs-ViT plot)."""
    from clipbench.results.plots import pareto_front

    rows, table = _defaults(frame), []
    for task in sorted(rows["task"].unique(), key=lambda t: (task_order(t), t)):
        pivot = rows[rows["task"] == task].pivot_table(index="model", columns="dataset", values="value",
                                                       aggfunc="last")
        common = [d for d in pivot.columns if pivot[d].notna().all()]
        gflops = {m: number(facts.get(m, {}).get("image_gflops")) for m in pivot.index}
        points = [(m, g, float(pivot.loc[m, common].mean())) for m, g in gflops.items() if g and g > 0 and common]
        if len(points) < 2:
            continue
        front = set(pareto_front([(g, v) for _, g, v in points]))
        table += [[task, names.get(m, m), f"{g:.2f}", f"{v:.1f}", str(len(common)), "yes" if i in front else ""]
                  for i, (m, g, v) in sorted(enumerate(points), key=lambda item: item[1][1])]
    if not table:
        return None
    return Block("Accuracy against compute", ["task", "model", "image GFLOPs", "mean", "datasets", "Pareto front"],
                 table, "Mean score (each dataset's own metric) over the datasets every model of the task has, against the image "
                 "tower's GFLOPs per image (models without a known GFLOPs count are left out); a model is on the "
                 "Pareto front when no other is as cheap or cheaper and as good or better. The task's ResNet-vs-ViT "
                 "plot draws the front.")


def views_blocks(frame: pd.DataFrame, names: dict[str, str], facts: dict[str, dict]) -> list[Block]:
    blocks = [probe_gap_block(frame, names), rank_block(frame, names), task_type_block(frame, names),
              compute_block(frame, names, facts)]
    return [b for b in blocks if b is not None]
