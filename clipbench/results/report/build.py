"""``clipbench report``: results -> a Markdown report, an HTML page and PNG plots.

Input is a results directory (its ``results.jsonl``, else ``leaderboard.csv``), a ``results.jsonl``
or a long ``leaderboard.csv`` (schemas in docs/ARCHITECTURE.md). For each task the report shows
the model x dataset table of primary metrics with 95% CIs and the suite mean, bars per dataset
grouped by model, ResNet against ViT (suite mean against image-tower GFLOPs, else parameters),
and the published numbers for the same model and dataset where there are any; then a provenance
table. Plots are meant for a slide: axes name the task and metric, start at 0 and mark chance;
legends use short names (a checkpoint file's stem); variant runs (--limit, bf16, ...) are listed
in the tables only; a plot or a model that is not drawn gets a line saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from clipbench.foundations.fileio import atomic_write_text
from clipbench.results.labels import short_names, variant_of
from clipbench.results.report.analyses import analysis_blocks
from clipbench.results.report.averages import averages_block
from clipbench.results.report.blocks import (
    Block,
    history_block,
    models_block,
    plural,
    provenance_block,
    representatives,
)
from clipbench.results.report.crosslingual import crosslingual_block
from clipbench.results.report.details import detail_blocks
from clipbench.results.report.model_facts import model_facts
from clipbench.results.report.published import published_rows
from clipbench.results.report.reading import load_provenance, load_results
from clipbench.results.report.render_html import render_html
from clipbench.results.report.render_markdown import render_markdown
from clipbench.results.report.task_section import task_block
from clipbench.results.source import load_result_set
from clipbench.tasks.registry import task_order


@dataclass
class Report:
    out_dir: Path
    markdown: Path
    html: Path
    images: list[Path]

def build_report(source: str | os.PathLike = "results", out_dir: str | os.PathLike | None = None,
                 published: bool = True, references=(), data_root: str | os.PathLike | None = None) -> Report:
    """Write report.md, report.html and PNG plots for the results at ``source``; return their paths.
    ``references``: CLIP_benchmark or open_clip result files whose numbers are shown next to the measured ones
    (``clipbench.results.references``); ``data_root``: where the datasets are, for the per-sample browser's
    thumbnails (None: no thumbnails)."""
    from clipbench.results import plots

    result_set = load_result_set(source)  # parsed once for every block below
    frame, path = load_results(result_set)
    out = Path(out_dir) if out_dir is not None else (path.parent / "report")
    labels = list(dict.fromkeys(frame["model"]))
    provenance = load_provenance(result_set, frame)
    names = short_names(labels, {m: p.weights_sha256 for m, p in provenance.items()})
    facts = model_facts(labels, frame, provenance)
    families = {m: facts[m]["family"] for m in labels}
    bases = representatives(labels)
    variants = [m for m in labels if variant_of(m)]
    tasks = sorted(frame["task"].unique(), key=lambda t: (task_order(t), t))

    blocks = [models_block(labels, names, facts, provenance)]
    written: list[Path] = []
    for task in tasks:
        block, files = task_block(task, frame[frame["task"] == task], names, facts, families, out, plots)
        blocks.append(block)
        written += files
    if result_set.records is not None:
        details, files = detail_blocks(result_set.records, names, families, out, plots)
        blocks += details
        written += files
        blocks += [b for b in [crosslingual_block(result_set.records, path.parent, names)] if b is not None]
        block, files = history_block(result_set.records, out, plots, names)
        blocks.append(block)
        written += files
        if (averages := averages_block(result_set.records, names)) is not None:  # the suites' one-number averages
            blocks.append(averages)
    thumbnails = None
    if data_root is not None:
        from clipbench.results.report.browser_thumbs import thumbnail_maker
        thumbnails = thumbnail_maker(data_root, out / "browser")
    analyses, files = analysis_blocks(frame, result_set.records, path.parent, names, families, facts, out, thumbnails)
    blocks += analyses
    written += files
    if published:
        pub_header, pub_rows = published_rows(frame)
        if pub_rows:
            for row in pub_rows:
                row[0] = names.get(row[0], row[0])
            blocks.append(Block("Published numbers", pub_header, pub_rows,
                                 "Published: CLIP paper (arXiv 2103.00020) and open_clip's re-measurement; "
                                 "see clipbench/reference/published.csv."))
    if references:
        from clipbench.results.references import reference_table

        ref_header, ref_rows = reference_table(source, references)
        blocks.append(Block("Reference numbers", ref_header, ref_rows,
                            "Reference rows are published numbers read from the file(s) given with --reference, "
                            "not measured here; Δ = measured - reference." + ("" if ref_rows else
                                                                           " No reference row matches a result.")))
    blocks.append(provenance_block(labels, names, provenance))

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    counts = f"{plural(len(frame), 'result')}, {plural(len(bases), 'model')}"
    if variants:
        counts += f" (+ {plural(len(variants), 'variant run')}, in the tables only)"
    counts += f", generated {stamp}."
    atomic_write_text(out / "report.md", render_markdown(str(path), counts, blocks))
    atomic_write_text(out / "report.html", render_html(str(path), counts, blocks))
    return Report(out, out / "report.md", out / "report.html", written)
