"""The per-sample browser: one static page per record with a per-sample file (no server).

For the newest default run of each (model, dataset, task) whose per-sample file is of the
``classification`` kind, ``browser/<slug>.html`` shows:

* the most confident errors (``scoring.samples.classification.confident_errors``);
* the confusion matrix as a heatmap (at most ``MAX_MATRIX`` classes: the ones with the most errors, as
  true or predicted class, when there are more); clicking a cell lists exactly that cell's samples;
* every sample, filtered by true class, predicted class and correctness, ``PAGE_SIZE`` rows a page
  (ImageNet's 50,000 samples are one data file of about 2 MB, drawn a page at a time);
* when an earlier run of the same (model, dataset, task, variant) has a per-sample file on the same
  samples, the disagreement view: the discordant samples, right in one run and wrong in the other,
  counted as ``compare``'s McNemar test counts them (``scoring.paired.discordant``).

A retrieval record's page lists every caption with its image's rank, worst first, filtered by
"missed at k" (``retrieval_page_data``). An ``outcomes`` record's page (image-caption selection, image
retrieval) lists every item worst first by the file's ``sort_column``, with its shown texts and outcomes,
filtered by subset and by a right/wrong outcome (``outcomes_page_data``). A ``targets`` record's page
(multi-label, binary and grouped sets) lists every sample worst first (``_targets_order``) with its true
and top classes, filtered by group and right/wrong (``targets_page_data``).

The data goes into ``browser/<slug>.js`` (``window.CLIPBENCH_BROWSER = {...}``), which a page opened from
disk (file://) can load where it could not fetch JSON; every name is set as text by the page's script,
never parsed as HTML. Thumbnails, when ``thumbnails`` gives them (``browser_thumbs``), sit beside it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_text
from clipbench.results.report.blocks import Block

log = logging.getLogger(__name__)

BROWSER_DIR = "browser"
PAGE_SIZE = 100
MAX_MATRIX = 40
TOP_ERRORS = 25


def matrix_classes(label: np.ndarray, pred: np.ndarray, n_classes: int, limit: int = MAX_MATRIX) -> list[int]:
    """The classes the heatmap shows: all of them up to ``limit``, else the ``limit`` with the most errors
    (as true or as predicted class; ties to the lower class), in class order."""
    if n_classes <= limit:
        return list(range(n_classes))
    wrong = label != pred
    errors = np.bincount(label[wrong], minlength=n_classes) + np.bincount(pred[wrong], minlength=n_classes)
    return sorted(np.argsort(-errors, kind="stable")[:limit].tolist())


def page_data(record: dict, samples, other: dict | None, other_samples, names: dict[str, str],
              thumbs: dict[int, str] | None = None) -> dict:
    """What one record's page draws (plain JSON types)."""
    from clipbench.scoring.paired import discordant
    from clipbench.scoring.samples.classification import confident_errors

    label, pred = samples.label, samples.top5[:, 0]
    classnames = list(samples.meta.get("classnames") or [])
    n_classes = max(len(classnames), int(label.max(initial=-1)) + 1, int(pred.max(initial=-1)) + 1)
    classnames += [str(c) for c in range(len(classnames), n_classes)]
    shown = matrix_classes(label, pred, n_classes)
    where = {c: i for i, c in enumerate(shown)}
    matrix = np.zeros((len(shown), len(shown)), dtype=np.int64)
    keep = np.array([t in where and p in where for t, p in zip(label.tolist(), pred.tolist(), strict=True)], bool)
    np.add.at(matrix, ([where[t] for t in label[keep].tolist()], [where[p] for p in pred[keep].tolist()]), 1)
    data = {"title": _title(record, names),
            "record_id": record.get("record_id"), "page_size": PAGE_SIZE, "classnames": classnames,
            "index": samples.index.tolist(), "label": label.tolist(), "pred": pred.tolist(),
            "confidence": [round(float(c), 4) for c in samples.confidence],
            "correct": samples.correct.astype(int).tolist(),
            "matrix": {"classes": shown, "counts": matrix.tolist(), "all": len(shown) == n_classes},
            "errors": confident_errors(samples, TOP_ERRORS), "thumbs": {str(k): v for k, v in (thumbs or {}).items()},
            "other": None}
    if other is not None:
        b, c = discordant(other_samples.correct, samples.correct)
        data["other"] = {"record_id": other.get("record_id"), "timestamp": other.get("timestamp"),
                         "correct": other_samples.correct.astype(int).tolist(), "b": b, "c": c}
    return data


def retrieval_page_data(record: dict, samples, names: dict[str, str], thumbs: dict[int, str] | None = None) -> dict:
    """A retrieval record's page: every caption with the rank of its image (text -> image, 1 = first) and
    its image's own best caption rank (image -> text). The file keeps ranks, not the retrieved lists, so the
    page cannot show what was retrieved instead."""
    return _head("retrieval", record, names, thumbs) | {
        "captions": list(samples.captions), "image": samples.text_image.tolist(), "rank": samples.t2i_rank.tolist(),
        "image_rank": samples.i2t_rank.tolist(), "ks": samples.ks}


def _title(record: dict, names: dict[str, str]) -> str:
    return f"{names.get(record['model'], record['model'])} · {record['dataset']} · {record['task']}"


def _head(kind: str, record: dict, names: dict[str, str], thumbs: dict[int, str] | None) -> dict:
    """What every worst-first page (retrieval, outcomes, targets) starts with."""
    return {"kind": kind, "title": _title(record, names), "record_id": record.get("record_id"),
            "page_size": PAGE_SIZE, "thumbs": {str(k): v for k, v in (thumbs or {}).items()}}


def _rounded(values) -> list:
    """Numbers for a page: 4 decimals, NaN and infinities as null."""
    return [round(v, 4) if np.isfinite(v) else None for v in np.asarray(values, np.float64).tolist()]


def _items(samples) -> list[str | None] | None:
    """Each row's file name (``with_items``) as text, or None where the file names none."""
    return [None if v is None else str(v) for v in samples.item] if samples.item else None


def _outcome_order(samples) -> np.ndarray:
    """Row positions, worst first: the lowest ``sort_column`` first (NaN last; ties in file order)."""
    sort = samples.meta.get("sort_column")
    if sort not in samples.columns:
        return np.arange(len(samples))
    return np.argsort(samples.columns[sort].astype(np.float64), kind="stable")


def _outcome_column(name: str, values: np.ndarray) -> dict:
    """One column for the page: booleans as 0/1, numbers rounded (NaN: null), anything else as text."""
    if values.dtype == np.bool_:
        return {"name": name, "type": "bool", "values": values.astype(int).tolist()}
    if np.issubdtype(values.dtype, np.integer):
        return {"name": name, "type": "number", "values": values.tolist()}
    if np.issubdtype(values.dtype, np.floating):
        return {"name": name, "type": "number", "values": _rounded(values)}
    return {"name": name, "type": "text", "values": [None if v is None else str(v) for v in values.tolist()]}


def outcomes_page_data(record: dict, samples, names: dict[str, str], thumbs: dict[int, str] | None = None) -> dict:
    """An ``outcomes`` record's page: every item (a selection item, an image-retrieval query) in ``order``,
    worst first; its ``show_columns`` (e.g. the captions), then the sort column, then the other outcomes;
    ``flags``: the right/wrong metric columns (by position in ``columns``) the page filters on."""
    meta = samples.meta
    shown = [c for c in meta.get("show_columns") or [] if c in samples.columns]
    sort = meta.get("sort_column")
    first = [*shown, *([sort] if sort in samples.columns and sort not in shown else [])]
    ordered = [*first, *(c for c in samples.columns if c not in first)]
    columns = [_outcome_column(c, samples.columns[c]) for c in ordered]
    metric_columns = set((meta.get("metrics") or {}).values())
    subsets = list(dict.fromkeys(samples.subset)) if samples.subset is not None else None
    return _head("outcomes", record, names, thumbs) | {
            "unit": str(meta.get("unit", "items")),
            "summary": samples.describe(record, 0)[0], "sort": sort if sort in samples.columns else None,
            "index": samples.index.tolist(), "order": _outcome_order(samples).tolist(),
            "item": _items(samples), "subsets": subsets,
            "subset": [subsets.index(s) for s in samples.subset] if subsets is not None else None,
            "group": [None if g is None else str(g) for g in samples.group] if samples.group is not None else None,
            "columns": columns,
            "flags": [j for j, c in enumerate(columns) if c["type"] == "bool" and c["name"] in metric_columns]}


TOP_CLASSES = 3


def _targets_order(samples) -> np.ndarray:
    """Row positions of a ``targets`` file, worst first (ties and NaN: in file order, NaN last):

    * multi-label (VOC2007): the lowest score among the sample's true classes, lowest first (the positive
      the model most nearly missed; samples without a true class last);
    * binary (Hateful Memes, ROC AUC): the margin towards the true class (score of the true class minus the
      other's), lowest first;
    * single-label (the grouped sets): the true class's rank, highest first.
    """
    t = samples.targets
    if t.multilabel:
        return np.argsort(_lowest_positive(t), kind="stable")
    if t.margin is not None:
        return np.argsort(np.where(t.labels == 1, t.margin, -t.margin), kind="stable")
    return np.argsort(-t.label_rank, kind="stable")


def _lowest_positive(t) -> np.ndarray:
    """[N] each multi-label sample's lowest score among its true classes (inf where it has none)."""
    return np.where(t.positives, t.scores, np.inf).min(axis=1, initial=np.inf)


def targets_page_data(record: dict, samples, names: dict[str, str], thumbs: dict[int, str] | None = None) -> dict:
    """A ``targets`` record's page (``_targets_order`` says which rows come first): per sample its true
    class(es) (``labels``), its top classes (``top``: the predicted class; multi-label sets: the
    ``TOP_CLASSES`` best scored, with ``top_scores``), ``rank`` of the true class (1 = first) and
    ``correct`` (single-label only), ``margin`` (binary: class 1's score - class 0's), ``lowest`` (multi-label:
    the lowest true-class score), and ``groups``: each group variable's names and codes (the worst-group
    variable first)."""
    t = samples.targets
    data = _head("targets", record, names, thumbs) | {
        "summary": samples.describe(record, 0)[0], "multilabel": t.multilabel,
        "classnames": [str(c) for c in samples.classnames()], "index": samples.index.tolist(),
        "order": _targets_order(samples).tolist(),
        "item": _items(samples), "groups": [
            {"name": str(k), "names": [str(n) for n in group_names], "codes": codes.tolist(), "worst": k == t.group_by}
            for k, (codes, group_names) in sorted(t.groups.items(), key=lambda g: g[0] != t.group_by)],
        "rank": None, "correct": None, "margin": None, "top_scores": None, "lowest": None}
    if t.multilabel:
        top = np.argsort(-t.scores, axis=1, kind="stable")[:, :TOP_CLASSES]
        return data | {"labels": [np.flatnonzero(p).tolist() for p in t.positives], "top": top.tolist(),
                       "top_scores": [_rounded(s) for s in np.take_along_axis(t.scores, top, axis=1)],
                       "lowest": _rounded(_lowest_positive(t))}
    return data | {"labels": t.labels[:, None].tolist(), "top": t.predicted[:, None].tolist(),
                   "rank": (t.label_rank + 1).tolist(), "correct": (t.label_rank == 0).astype(int).tolist(),
                   "margin": _rounded(t.margin) if t.margin is not None else None}


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>clipbench samples</title>
<link rel="stylesheet" href="browser.css"></head>
<body><p><a href="../report.html">back to the report</a></p>
<div id="app"><p id="loading">Loading the samples (this page needs JavaScript).</p></div>
<script src="{data}"></script><script src="browser.js"></script></body></html>
"""


def write_page(out: Path, slug: str, data: dict) -> Path:
    """browser/<slug>.html and its data file (the shared script and style are written by ``browser_block``)."""
    atomic_write_text(out / BROWSER_DIR / f"{slug}.js",
                      "window.CLIPBENCH_BROWSER = " + json.dumps(data, separators=(",", ":")) + ";\n", within=out)
    page = out / BROWSER_DIR / f"{slug}.html"
    atomic_write_text(page, _PAGE.format(data=f"{slug}.js"), within=out)
    return page


def _runs(records: list[dict]) -> list[tuple[dict, dict | None]]:
    """(newest record, the newest earlier record of the same key with a per-sample file) per default-variant key
    whose newest record has a per-sample file."""
    from clipbench.results.records import record_key, record_variant

    by_key: dict[tuple, list[dict]] = {}
    for r in records:
        if not record_variant(r):
            by_key.setdefault(record_key(r), []).append(r)
    out = []
    for runs in by_key.values():
        with_samples = [r for r in runs if isinstance(r.get("samples"), dict)]
        if with_samples and with_samples[-1] is runs[-1]:
            out.append((runs[-1], with_samples[-2] if len(with_samples) > 1 else None))
    return out


def browser_block(records: list[dict], results_dir: Path, names: dict[str, str], out: Path,
                  thumbnails=None) -> tuple[Block | None, list[Path]]:
    """The report's list of per-sample pages, and the pages (``records``: results.jsonl's, their per-sample files
    under ``results_dir``). ``thumbnails(record, indices)``: {index: file relative to browser/} or None."""
    from clipbench.results.report.browser_assets import SCRIPT, STYLE
    from clipbench.results.samples import read_samples
    from clipbench.scoring.samples.classification import SampleLog, confident_errors
    from clipbench.scoring.samples.outcomes import OutcomeSamples
    from clipbench.scoring.samples.retrieval import RetrievalSamples
    from clipbench.scoring.samples.targets import TargetSamples

    rows, links, written = [], [], []
    for record, other in _runs(records):
        try:
            samples = read_samples(results_dir, record)
            other_samples = read_samples(results_dir, other) if other is not None else None
        except ClipbenchError as exc:
            log.warning("no per-sample page for %s: %s", record.get("record_id"), exc)
            continue
        if isinstance(samples, RetrievalSamples):
            worst = np.argsort(-samples.t2i_rank, kind="stable")[:PAGE_SIZE]  # the first page, worst ranks first
            thumbs = thumbnails(record, samples.text_image[worst].tolist()) if thumbnails is not None else None
            data, other = retrieval_page_data(record, samples, names, thumbs), None
        elif isinstance(samples, SampleLog):
            if other_samples is not None and not samples.same_samples(other_samples):
                other, other_samples = None, None
            wanted = [e["index"] for e in confident_errors(samples, TOP_ERRORS)]
            if other_samples is not None:
                wanted += samples.index[samples.correct != other_samples.correct].tolist()
            thumbs = thumbnails(record, wanted) if thumbnails is not None else None
            data = page_data(record, samples, other, other_samples, names, thumbs)
        elif isinstance(samples, (OutcomeSamples, TargetSamples)):
            order, page_data_of = ((_targets_order, targets_page_data) if isinstance(samples, TargetSamples)
                                   else (_outcome_order, outcomes_page_data))
            try:  # a hostile file's text in a metric or sort column: no page, not a failed report
                first = samples.index[order(samples)[:PAGE_SIZE]].tolist()  # the first page, worst first
                per_sample = samples.meta.get("index_is_sample", True)  # else rows are items over several images
                thumbs = thumbnails(record, first) if thumbnails is not None and per_sample else None
                data, other = page_data_of(record, samples, names, thumbs), None
            except (TypeError, ValueError) as exc:
                log.warning("no per-sample page for %s: %s", record.get("record_id"), exc)
                continue
        else:
            continue
        slug = file_slug(f"{record['model']}_{record['dataset']}_{record['task']}")
        page = write_page(out, slug, data)
        written.append(page)
        links.append((_title(record, names), f"{BROWSER_DIR}/{page.name}"))
        rows.append([names.get(record["model"], record["model"]), str(record["dataset"]), str(record["task"]),
                     str(len(samples)), "yes" if other is not None else "–"])
    if not rows:
        return None, []
    atomic_write_text(out / BROWSER_DIR / "browser.js", SCRIPT, within=out)
    atomic_write_text(out / BROWSER_DIR / "browser.css", STYLE, within=out)
    block = Block("Per-sample browser", ["model", "dataset", "task", "samples", "earlier run to compare"], rows,
                  "One page per record with a per-sample file. Classification: the most confident errors, the "
                  "confusion matrix (click a cell for its samples), every sample filtered by class and correctness, "
                  "and the samples two runs disagree on. Retrieval: every caption's rank, worst first. Selection and image "
                  "retrieval: every item or query worst first (lowest margin or AP), with its captions and outcomes, "
                  "filtered by subset and right or wrong. Multi-label, binary and grouped sets: every sample worst "
                  "first (lowest true-class score or margin, else worst true-class rank), with its true and top "
                  "classes, filtered by group and right or wrong. Static pages: open them from disk, no server needed.")
    block.links = links
    return block, written
