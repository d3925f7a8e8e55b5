"""What a primary metric hides, per task: recall@k (retrieval), accuracy per subset (selection), and the three
classification views side by side. The one place the report names tasks, until tasks declare their own tables."""

from __future__ import annotations

from pathlib import Path

from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_bytes
from clipbench.results.records import record_variant
from clipbench.results.report.blocks import Block, as_dict, bars_table, fmt_ci, fmt_num, number


def detail_blocks(path: Path, names: dict[str, str], families: dict[str, str], out: Path,
                   plots) -> tuple[list[Block], list[Path]]:
    """What a primary metric hides: recall@k per direction (retrieval), accuracy per subset (compositional
    selection), and the three classification views side by side (zero-shot, k-NN, linear probe)."""
    from clipbench.results.records import latest_records, read_records

    latest = [r for r in latest_records(read_records(path)) if not record_variant(r)]
    blocks, written = [], []
    retrieval = [r for r in latest if r["task"] == "zeroshot_retrieval"]
    if retrieval:
        ks = sorted({k for r in retrieval for k in _recall_ks(r)})
        header = ["model", "dataset", *[f"{d} R@{k}" for d in ("i2t", "t2i") for k in ks], "mean recall"]
        rows = [[names.get(r["model"], r["model"]), r["dataset"],
                 *[fmt_num(r["metrics"].get(f"{d}_recall@{k}")) for d in ("i2t", "t2i") for k in ks],
                 fmt_num(r["metrics"].get("mean_recall"))] for r in retrieval]
        block = Block("Zero-shot retrieval: recall@k", header, rows,
                       "Recall in %: image->text (an image is a hit if any of its captions ranks in the top k) "
                       "and text->image (a caption is a hit if its image ranks in the top k).")
        for dataset in dict.fromkeys(r["dataset"] for r in retrieval):
            cells = {}
            for r in (r for r in retrieval if r["dataset"] == dataset):
                cis = as_dict(r.get("metric_ci95"))
                cells[names.get(r["model"], r["model"])] = {
                    f"{d} R@{k}": (number(r["metrics"].get(f"{d}_recall@{k}")), *(
                        number(as_dict(cis.get(f"{d}_recall@{k}")).get(b)) for b in ("low", "high")))
                    for d in ("i2t", "t2i") for k in ks}
            file = f"recall_at_k_{file_slug(dataset)}.png"
            atomic_write_bytes(out / file, plots.grouped_bars(
                bars_table(cells), {names.get(m, m): f for m, f in families.items()},
                f"Zero-shot retrieval on {dataset}: recall@k per model", "recall (%)"))
            block.figures.append((f"Recall@k on {dataset} per model, both directions (whiskers: 95% CI)", file))
            written.append(out / file)
        blocks.append(block)
    selection = [r for r in latest if r["task"] == "image_caption_selection"]
    if selection:
        rows = []
        for r in selection:
            for subset, info in sorted(as_dict(r.get("per_subset")).items()):
                info = as_dict(info)
                ci = as_dict(info.get("ci95"))
                rows.append([names.get(r["model"], r["model"]), r["dataset"], subset,
                             fmt_ci(info.get("accuracy"), ci.get("low"), ci.get("high")),
                             fmt_num(info.get("chance")), str(info.get("n_items", ""))])
        blocks.append(Block("Compositionality: accuracy per subset", ["model", "dataset", "subset", "accuracy",
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
        rows = [[model, *[fmt_num(c.get(view, (None,))[0]) for view in views.values()]] for model, c in cells.items()]
        block = Block("Classification views per model", ["model", *views.values()], rows,
                       "Primary metric in %, mean over each task's datasets: zero-shot (prompts), k-NN (frozen "
                       "features, no training) and the linear probe (trained on the features).")
        atomic_write_bytes(out / "classification_views.png", plots.grouped_bars(
            bars_table(cells), {names.get(m, m): families.get(m, "other") for m in shown},
            "Zero-shot, k-NN and linear probe per model", "primary metric, mean over datasets (%)"))
        block.figures.append(("The three classification views of each model (mean over each task's datasets)",
                              "classification_views.png"))
        written.append(out / "classification_views.png")
        blocks.append(block)
    return blocks, written


def _recall_ks(record: dict) -> list[int]:
    """The record's recall@k cut-offs (a damaged field falls back to the default 1, 5, 10)."""
    ks = record.get("recall_k")
    if isinstance(ks, list) and 0 < len(ks) <= 20 and all(
            isinstance(k, int) and not isinstance(k, bool) and 0 < k < 10**6 for k in ks):
        return ks
    return [1, 5, 10]
