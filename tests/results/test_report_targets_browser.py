"""The per-sample browser's page for ``targets`` files (multi-label, binary and grouped sets): its data,
computed again here by plain loops over hand-built scores, and ``browser_block`` writing the page."""

from __future__ import annotations

import json

import numpy as np

from clipbench.results.report.browser import TOP_CLASSES, browser_block, targets_page_data
from clipbench.results.samples import read_samples, write_sample_table
from clipbench.scoring.samples import build_kind_table
from clipbench.scoring.samples.table import with_items
from clipbench.scoring.samples.targets import targets_meta
from clipbench.scoring.targets import ScoredTargets

HOSTILE = "<img src=x onerror=alert(1)> \u202eevil"  # markup and an RTL override
RNG = np.random.default_rng(11)


def _written(tmp_path, name, targets, classnames, items=None):
    """A record with a ``targets`` per-sample file (as the engine writes it), and the file read back."""
    record = {"schema_version": 2, "record_id": f"{name}-run", "timestamp": "2026-11-23T12:00:00+00:00",
              "model": "RN50", "dataset": name, "split": "test", "dataset_fingerprint": "fp", "n_samples": len(targets),
              "task": "zeroshot", "primary_metric": "top1", "metrics": {"top1": 50.0}, "ci95": None,
              "precision": "fp32", "limit": None}
    table = with_items(build_kind_table("targets", {"targets": targets}), items)
    record["samples"] = write_sample_table(tmp_path, record, table, "targets", targets_meta(targets, classnames))
    return record, read_samples(tmp_path, record)


def _worst_first(keys) -> list[int]:
    """Positions by ascending key, ties in file order (the page's order, computed by a plain sort)."""
    return sorted(range(len(keys)), key=lambda i: (keys[i], i))


def test_a_multilabel_page_lists_the_lowest_scored_positive_first(tmp_path):
    n, c = 9, 5
    scores = RNG.normal(size=(n, c)).astype(np.float32)
    positives = RNG.random((n, c)) < 0.4
    positives[4] = False  # a sample without a true class: last
    positives[0, 2] = True
    classes = ["aeroplane", "bike", HOSTILE, "boat", "bottle"]
    items = [f"{i:06d}.jpg" for i in range(n)]
    items[3] = HOSTILE
    t = ScoredTargets.from_scores(scores, np.argmax(positives, 1), multilabel=positives)
    record, samples = _written(tmp_path, "voc2007_multilabel", t, classes, items)
    data = targets_page_data(record, samples, {"RN50": "ResNet-50"}, {7: "thumbs/x/7.jpg"})

    lowest = [min((float(scores[i, k]) for k in range(c) if positives[i, k]), default=np.inf) for i in range(n)]
    assert data["order"] == _worst_first(lowest) and data["order"][-1] == 4
    assert data["lowest"] == [None if v == np.inf else round(v, 4) for v in lowest]
    assert data["labels"] == [[k for k in range(c) if positives[i, k]] for i in range(n)]
    top = [sorted(range(c), key=lambda k: -scores[i, k])[:TOP_CLASSES] for i in range(n)]
    assert data["top"] == top
    assert data["top_scores"] == [[round(float(scores[i, k]), 4) for k in top[i]] for i in range(n)]
    assert data["multilabel"] and data["correct"] is None and data["rank"] is None and data["groups"] == []
    assert data["classnames"][2] == HOSTILE and data["item"][3] == HOSTILE  # kept as data, set as text
    assert data["title"] == "ResNet-50 · voc2007_multilabel · zeroshot" and data["thumbs"] == {"7": "thumbs/x/7.jpg"}
    assert data["summary"].startswith(f"{n} samples: mean_average_precision_11pt ")


def test_a_binary_page_orders_by_the_margin_towards_the_true_class(tmp_path):
    n = 10
    scores = RNG.normal(size=(n, 2)).astype(np.float32)
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    t = ScoredTargets.from_scores(scores, labels)
    record, samples = _written(tmp_path, "hateful_memes", t, ["not hateful", "hateful"])
    data = targets_page_data(record, samples, {})

    towards = [float(scores[i, labels[i]] - scores[i, 1 - labels[i]]) for i in range(n)]
    assert data["order"] == _worst_first(towards)
    assert data["margin"] == [round(float(scores[i, 1] - scores[i, 0]), 4) for i in range(n)]
    right = [int(scores[i, labels[i]] > scores[i, 1 - labels[i]]) for i in range(n)]
    assert data["correct"] == right and data["rank"] == [2 - r for r in right] and 0 < sum(right) < n
    assert data["labels"] == [[int(v)] for v in labels] and data["top"] == [[int(np.argmax(s))] for s in scores]
    assert data["item"] is None and data["top_scores"] is None and not data["multilabel"]


def test_a_grouped_page_orders_by_rank_and_lists_every_group_variable(tmp_path):
    n, c = 12, 6
    scores = RNG.normal(size=(n, c)).astype(np.float32)
    labels = RNG.integers(0, c, n)
    region, income = RNG.integers(0, 3, n), RNG.integers(0, 2, n)
    groups = {"region": (region, ["Africa", HOSTILE, "Europe"]), "income": (income, ["low", "high"])}
    t = ScoredTargets.from_scores(scores, labels, groups=groups, group_by="region")
    record, samples = _written(tmp_path, "dollar_street", t, [f"class {k}" for k in range(c)])
    data = targets_page_data(record, samples, {})

    rank = [sum(scores[i, k] > scores[i, labels[i]] for k in range(c)) + 1 for i in range(n)]  # no ties here
    assert data["rank"] == rank and data["order"] == _worst_first([-r for r in rank])
    assert data["correct"] == [int(r == 1) for r in rank]
    assert data["groups"] == [
        {"name": "region", "names": ["Africa", HOSTILE, "Europe"], "codes": region.tolist(), "worst": True},
        {"name": "income", "names": ["low", "high"], "codes": income.tolist(), "worst": False}]
    assert data["margin"] is None and data["lowest"] is None


def test_the_block_writes_a_page_for_a_targets_record_with_thumbnails_worst_first(tmp_path):
    positives = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], bool)
    scores = np.array([[0.9, 0.1, 0.2], [0.3, 0.8, 0.1], [0.1, 0.7, 0.4], [0.5, 0.2, 0.6]], np.float32)
    t = ScoredTargets.from_scores(scores, np.argmax(positives, 1), multilabel=positives)
    record, _ = _written(tmp_path, "voc2007_multilabel", t, ["cat", HOSTILE, "dog"], ["a.jpg", HOSTILE, "c.jpg", "d.jpg"])
    asked = []
    block, pages = browser_block([record], tmp_path, {}, tmp_path / "report", lambda r, wanted: asked.append(wanted) or {})
    assert [p.name for p in pages] == ["RN50_voc2007_multilabel_zeroshot.html"] and block.rows[0][3] == "4"
    assert asked == [[2, 0, 3, 1]]  # lowest true-class score: 0.1, 0.2, 0.6, 0.8
    assert "grouped sets" in block.note and "onerror" not in pages[0].read_text()
    text = (tmp_path / "report" / "browser" / "RN50_voc2007_multilabel_zeroshot.js").read_text()
    data = json.loads(text.removeprefix("window.CLIPBENCH_BROWSER = ").rstrip().removesuffix(";"))
    assert data["kind"] == "targets" and data["item"][1] == HOSTILE and data["classnames"][1] == HOSTILE
    assert "function targets()" in (tmp_path / "report" / "browser" / "browser.js").read_text()
