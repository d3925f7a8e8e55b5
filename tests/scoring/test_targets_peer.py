"""Peer agreement of the metrics of issue 29 (``clipbench.scoring.multilabel``, ``groups``, ``targets``).

Peers on identical inputs: scikit-learn's ``average_precision_score`` / ``roc_auc_score`` /
``f1_score`` / ``jaccard_score`` / ``precision_recall_curve``, CLIP_benchmark 1.6.2's VOC mAP
(``average_precision_per_class``), and the WILDS/DataComp worst-group rule (lowest group accuracy
among the groups with samples), written out by hand. Hand-made cases with known answers cover
ties, an empty group and a class with no positives.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clip_benchmark.metrics.zeroshot_classification import average_precision_per_class
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    jaccard_score,
    precision_recall_curve,
    roc_auc_score,
)

from clipbench.scoring import groups as G
from clipbench.scoring import multilabel as M
from clipbench.scoring.resample import Draws
from clipbench.scoring.targets import ScoredTargets

pytestmark = pytest.mark.peer

ONE = np.ones((1, 8))


def _ones(n: int) -> np.ndarray:
    return np.ones((1, n))


def _eleven_point_from_sklearn(y, s) -> float:
    """VOC 2007's 11-point AP over scikit-learn's precision-recall points (its appended (r=0, p=1) point left out)."""
    precision, recall, _ = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]
    return float(np.mean([max([p for p, r in zip(precision, recall, strict=True) if r >= i / 10 - 1e-12] or [0.0])
                          for i in range(11)]))


def test_average_precision_known_answers_and_ties():
    # ranks 1..4 with positives at 1 and 3: AP = (1/1 + 2/3) / 2
    s, y = np.array([4.0, 3.0, 2.0, 1.0]), np.array([True, False, True, False])
    assert M.average_precision(s, y, _ones(4))[0] == pytest.approx((1 + 2 / 3) / 2)
    # 11-point: precision 1 up to recall 0.5, then 2/3 up to recall 1 -> (6 x 1 + 5 x 2/3) / 11
    assert M.average_precision_11pt(s, y, _ones(4))[0] == pytest.approx((6 + 5 * 2 / 3) / 11)
    # a tie between a positive and a negative at the top is one threshold: precision 1/2 at recall 1
    s, y = np.array([1.0, 1.0]), np.array([False, True])
    assert M.average_precision(s, y, _ones(2))[0] == pytest.approx(0.5) == average_precision_score(y, s)
    assert M.average_precision_11pt(s, y, _ones(2))[0] == pytest.approx(0.5)
    # recall of exactly 3/10 reaches the 0.3 point (the devkit's float comparison would miss it)
    y = np.array([True] * 3 + [False] * 7 + [True] * 7)
    s = -np.arange(17.0)
    assert M.average_precision_11pt(s, y, _ones(17))[0] == pytest.approx(_eleven_point_from_sklearn(y, s))
    # precision 1 at recall 0 ... 0.3; after the 7 negatives precision only grows, to 10/17 at recall 1
    assert M.average_precision_11pt(s, y, _ones(17))[0] == pytest.approx((4 * 1.0 + 7 * 10 / 17) / 11)


def test_average_precision_matches_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(3, 40))
        s = rng.integers(0, 4, n).astype(float) if trial % 2 else rng.normal(size=n)  # heavy ties on odd trials
        y = rng.random(n) < 0.4
        y[0], y[1] = True, False
        assert M.average_precision(s, y, _ones(n))[0] == pytest.approx(average_precision_score(y, s), abs=1e-12)
        assert M.average_precision_11pt(s, y, _ones(n))[0] == pytest.approx(_eleven_point_from_sklearn(y, s),
                                                                           abs=1e-12)
        assert M.roc_auc(s, y, _ones(n))[0] == pytest.approx(100 * roc_auc_score(y, s), abs=1e-10)
        # a resample's counts weigh each sample as if it were repeated: the peer on the repeated samples
        w = rng.integers(1, 3, n)
        assert M.average_precision(s, y, w[None].astype(float))[0] == pytest.approx(
            average_precision_score(np.repeat(y, w), np.repeat(s, w)), abs=1e-12)
        assert M.roc_auc(s, y, w[None].astype(float))[0] == pytest.approx(
            100 * roc_auc_score(np.repeat(y, w), np.repeat(s, w)), abs=1e-10)


def test_mean_average_precision_matches_clip_benchmark_and_sklearn_macro():
    rng = np.random.default_rng(1)
    scores, targets = rng.normal(size=(30, 6)), rng.random((30, 6)) < 0.3
    targets[0] = True
    ours = M.mean_average_precision(scores, targets, _ones(30))[0]
    peer = average_precision_per_class(torch.from_numpy(scores), torch.from_numpy(targets.astype(np.int64)))
    assert ours == pytest.approx(100 * float(peer.mean()), abs=1e-4)
    assert ours == pytest.approx(100 * average_precision_score(targets, scores, average="macro"), abs=1e-10)


def test_a_class_without_positives_is_left_out_of_the_mean():
    """sklearn and CLIP_benchmark give such a class AP 0 and average it in; clipbench leaves it out."""
    rng = np.random.default_rng(2)
    scores, targets = rng.normal(size=(20, 4)), rng.random((20, 4)) < 0.4
    targets[:, 2] = False
    targets[0, [0, 1, 3]] = True
    assert np.isnan(M.per_class_average_precision(scores, targets)[2])
    ours = M.mean_average_precision(scores, targets, _ones(20))[0]
    kept = [0, 1, 3]
    assert ours == pytest.approx(100 * average_precision_score(targets[:, kept], scores[:, kept], average="macro"))
    peer = average_precision_per_class(torch.from_numpy(scores), torch.from_numpy(targets.astype(np.int64)))
    assert float(peer[2]) == 0.0 and ours == pytest.approx(100 * float(peer[kept].mean()), abs=1e-4)
    assert np.isnan(M.mean_average_precision(scores, np.zeros_like(targets), _ones(20))[0])


def test_roc_auc_undefined_without_both_classes():
    assert np.isnan(M.roc_auc(np.arange(3.0), np.array([True] * 3), _ones(3))[0])
    assert M.roc_auc(np.array([0.0, 0.0]), np.array([False, True]), _ones(2))[0] == 50.0  # a tie counts one half


def test_worst_group_and_empty_group():
    correct = np.array([1, 1, 0, 1, 0, 0, 1, 1], float)
    codes = np.array([0, 0, 0, 2, 2, 2, 2, 0])  # group 1 ("b") has no samples; "d" is excluded
    names = ["a", "b", "c", "d"]
    accuracy, support = G.group_accuracy(correct, codes, 4, ONE)
    assert np.isnan(accuracy[0, 1]) and support[0].tolist() == [4, 0, 4, 0]
    assert accuracy[0, 0] == pytest.approx(75.0) and accuracy[0, 2] == pytest.approx(50.0)
    assert G.worst_group(correct, codes, names, ONE)[0] == pytest.approx(50.0)
    assert G.worst_group(correct, codes, names, ONE, excluded=["c"])[0] == pytest.approx(75.0)
    # peer: WILDS' rule written out (the minimum over groups with count > 0)
    peer = min(correct[codes == g].mean() * 100 for g in range(4) if (codes == g).any())
    assert G.worst_group(correct, codes, names, ONE)[0] == pytest.approx(peer)
    tables = G.group_tables({"top1": correct.astype(bool)}, {"region": (codes, names)})
    assert tables["region"][1] == {"group": "b", "n": 0, "top1": None}


def test_macro_f1_matches_sklearn_over_the_labels_present():
    rng = np.random.default_rng(3)
    for _ in range(30):
        labels, predicted = rng.integers(0, 6, 25), rng.integers(0, 7, 25)  # class 6 is only ever predicted
        peer = f1_score(labels, predicted, average="macro", labels=np.unique(labels))  # WILDS' call
        assert G.macro_f1(labels, predicted, 7, _ones(25))[0] == pytest.approx(100 * peer)
        w = rng.integers(0, 3, 25)
        w[0] = 1
        peer = f1_score(np.repeat(labels, w), np.repeat(predicted, w), average="macro",
                        labels=np.unique(np.repeat(labels, w)))
        assert G.macro_f1(labels, predicted, 7, w[None].astype(float))[0] == pytest.approx(100 * peer)


def test_jaccard_of_choices_matches_sklearn_and_breaks_ties_by_index():
    scores = [np.array([0.9, 0.1, 0.5, 0.5]), np.array([0.3, 0.2, 0.1, 0.0, 0.4])]
    gold = [np.array([True, False, False, True]), np.array([False, True, True, False, False])]
    ours = G.jaccard_of_choices(scores, gold)
    # item 0 picks 2: 0.9 (0) and the lower-index 0.5 (2): {0, 2} vs {0, 3} -> 1/3
    assert ours[0] == pytest.approx(1 / 3)
    chosen1 = np.array([True, False, False, False, True])
    assert ours[1] == pytest.approx(jaccard_score(gold[1], chosen1)) == 0.0
    assert ours[0] == pytest.approx(jaccard_score(gold[0], np.array([True, False, True, False])))


def test_scored_targets_metrics_and_interval():
    rng = np.random.default_rng(4)
    n = 40
    scores, labels = rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 6, n)
    codes = rng.integers(0, 3, n)
    t = ScoredTargets.from_scores(scores, labels, groups={"income": (codes, ["low", "mid", "high"])},
                                  group_by="income")
    m = t.metrics()
    top1, top5 = (t.label_rank < 1).mean() * 100, (t.label_rank < 5).mean() * 100
    assert m["mean_top1_top5"] == pytest.approx((top1 + top5) / 2)
    assert m["macro_f1"] == pytest.approx(100 * f1_score(labels, scores.argmax(1), average="macro",
                                                         labels=np.unique(labels)))
    assert m["worst_group_top5"] == pytest.approx(min(100 * (t.label_rank[codes == g] < 5).mean() for g in range(3)))
    ci = t.interval("worst_group_top5", 200, 0)
    assert ci["low"] <= m["worst_group_top5"] <= ci["high"]
    binary = ScoredTargets.from_scores(scores[:, :2], labels % 2)
    assert binary.value("roc_auc") == pytest.approx(100 * roc_auc_score(labels % 2, scores[:, 1] - scores[:, 0]))
    assert binary.statistic("roc_auc")(Draws.whole(n)).shape == (1,)


def test_targets_samples_pair_a_group_metric_on_the_same_draws(tmp_path):
    """Two records of a grouped set, written and read back as ``targets`` per-sample files: the gate's paired
    bootstrap of the worst-group metric is new - baseline, and each side's point equals its own metric."""
    from clipbench.results.samples import read_samples, write_sample_table
    from clipbench.scoring.resample import paired
    from clipbench.scoring.samples import build_kind_table
    from clipbench.scoring.samples.targets import targets_meta

    rng = np.random.default_rng(5)
    labels, codes = rng.integers(0, 6, 50), rng.integers(0, 3, 50)
    groups = {"income": (codes, ["low", "mid", "high"]), "region": (codes % 2, ["a", "b"])}
    logs = []
    for seed in (6, 7):
        t = ScoredTargets.from_scores(np.random.default_rng(seed).normal(size=(50, 6)), labels, groups=groups,
                                      group_by="income")
        record = {"record_id": f"r{seed}", "model": "m", "dataset": "d", "task": "zeroshot", "dataset_fingerprint": "f"}
        record["samples"] = write_sample_table(tmp_path, record, build_kind_table("targets", {"targets": t}), "targets",
                                               targets_meta(t, list("abcdef")))
        logs.append((t, read_samples(tmp_path, record)))
    (base_t, base), (new_t, new) = logs
    assert base.same_samples(new) and base.supports("worst_group_top5") and not base.supports("roc_auc")
    result = base.paired("worst_group_top5", new, 300, 0)
    d = new_t.value("worst_group_top5") - base_t.value("worst_group_top5")
    s_new, s_base = new_t.statistic("worst_group_top5"), base_t.statistic("worst_group_top5")
    assert result.test == "bootstrap" and result.difference == pytest.approx(d)
    assert (result.difference, result.ci_low, result.ci_high, result.p_value) == pytest.approx(
        paired(lambda dr: s_new(dr) - s_base(dr), d, 50, 300, 0))
    assert base.paired("top1", new, 300, 0).test == "mcnemar"
    assert any("Accuracy per income" in line for line in base.describe({}))
