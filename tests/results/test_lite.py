"""`clipbench lite` (issue 31): subsets chosen from per-sample files, their leave-one-model-out rank agreement,
and the suite that scores exactly those samples."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from scipy.stats import kendalltau, spearmanr

import clipbench
from clipbench.cli import main
from clipbench.results.lite import agreement, choose_subset, held_out_scores
from clipbench.results.records import read_records, record_variant
from clipbench.results.samples import read_samples, write_sample_table
from clipbench.scoring.samples.classification import build_table
from clipbench.suites import parse_suite


def test_the_subset_keeps_only_disagreements_stratified_by_difficulty():
    rng = np.random.default_rng(0)
    correct = rng.random((6, 400)) < np.linspace(0.05, 0.95, 400)  # easy to hard
    correct[:, :50] = True  # everyone right: no ranking information
    correct[:, 50:80] = False  # everyone wrong
    subset = choose_subset(correct, 100, seed=3)
    assert len(subset) == 100 and np.all(subset >= 80) and np.all(np.diff(subset) > 0)
    assert np.array_equal(subset, choose_subset(correct, 100, seed=3))  # seeded
    share = correct.mean(0)
    informative = np.flatnonzero((share > 0) & (share < 1))
    bins = np.minimum((share * 10).astype(int), 9)
    expected = 100 * np.bincount(bins[informative], minlength=10) / len(informative)
    assert np.all(np.abs(np.bincount(bins[subset], minlength=10) - expected) < 1)  # proportional allocation
    assert np.array_equal(choose_subset(correct, 10_000), informative)  # a budget past them: all of them


def test_held_out_scores_are_hand_computable():
    correct = np.array([[1, 1, 0, 1, 0],
                        [1, 0, 0, 1, 1],
                        [1, 0, 1, 0, 0],
                        [1, 1, 1, 1, 0]], dtype=bool)
    scores, sizes = held_out_scores(correct, budget=10)
    # sample 0 is right for everyone, so it never counts. Without model 0 the others disagree on 1..4: it gets
    # 2 of 4. Without model 1: on 1, 2, 3 (4 is wrong for 0, 2, 3): 1 of 3. Without model 2: on 1, 2, 4 (3 is
    # right for 0, 1, 3): 1 of 3. Without model 3: on 1..4: 3 of 4.
    assert sizes == [4, 3, 3, 4]
    assert scores.tolist() == pytest.approx([50.0, 100 / 3, 100 / 3, 75.0])


@pytest.mark.peer
def test_agreement_is_scipys_spearman_and_kendall_with_intervals_over_models():
    full = np.array([70.0, 65.0, 60.0, 52.0, 40.0, 38.0])
    lite = np.array([72.0, 60.0, 61.0, 50.0, 45.0, 30.0])
    a = agreement(full, lite, list("abcdef"), np.zeros((6, 2)), n_resamples=200, seed=1)
    assert a.spearman == pytest.approx(spearmanr(lite, full).statistic)
    assert a.kendall == pytest.approx(kendalltau(lite, full).statistic)
    assert a.spearman_ci[0] <= a.spearman <= a.spearman_ci[1] <= 1.0
    assert a.kendall_ci[0] <= a.kendall <= a.kendall_ci[1]


def _fake_model(res, base: dict, name: str, flip: float, seed: int) -> dict:
    """Another model's record on the same split: the base model's per-sample file with ``flip`` of its answers
    made wrong (or right), so the models' accuracies differ in a known order."""
    log = read_samples(res, base)
    rng = np.random.default_rng(seed)
    scores = np.zeros((len(log), 10), np.float32)
    right = log.correct ^ (rng.random(len(log)) < flip)
    scores[np.arange(len(log)), np.where(right, log.label, (log.label + 1) % 10)] = 1.0
    record = {**base, "model": name, "record_id": f"{name}-rec", "metrics": {"top1": 100.0 * right.mean()}}
    record["samples"] = write_sample_table(res, record, build_table(scores, log.label, "logits"), "classification",
                                           {"classnames": log.meta["classnames"], "score_kind": "logits"})
    with open(res / "results.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")
    return record


def test_lite_command_writes_a_suite_that_scores_exactly_its_samples(tmp_path, capsys):
    suite = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                         "options": {"bootstrap": 0, "offline": True, "threads": 1}}, "t", "full", check_dataset=None)
    kw = dict(cache_dir=tmp_path / "cache", results_dir=tmp_path / "res", device="cpu", progress=False)
    (base,) = clipbench.run("clipbench-tiny", suite=suite, **kw)
    res = tmp_path / "res"
    for i, flip in enumerate((0.1, 0.2, 0.3, 0.4)):
        _fake_model(res, base, f"m{i}", flip, seed=i)
    assert main(["lite", str(res), "--budget", "60", "--out", str(tmp_path / "lite.yaml"), "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "spearman" in out and "each model scored on a subset chosen without it" in out
    spec = yaml.safe_load((tmp_path / "lite.yaml").read_text())
    entry = spec["subsets"]["digits"]
    assert entry["fingerprint"] == base["dataset_fingerprint"] and len(entry["indices"]) == 60
    # the suite scores exactly those samples, as a variant of its own
    (lite,) = clipbench.run("clipbench-tiny", suite=str(tmp_path / "lite.yaml"), **{**kw, "results_dir": tmp_path / "r2"})
    assert lite["n_samples"] == 60 and record_variant(lite) == f"lite={entry['digest']}"
    full_log = pq.read_table(res / base["samples"]["path"]).column("correct").to_numpy(zero_copy_only=False)
    assert lite["metrics"]["top1"] == pytest.approx(100.0 * full_log[entry["indices"]].mean())
    assert read_records(tmp_path / "r2")[0]["lite"] == entry["digest"]
    # another copy of the data (another fingerprint) is refused with one line
    spec["subsets"]["digits"]["fingerprint"] = "0" * 32
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(spec))
    code = main(["run", "--model", "clipbench-tiny", "--suite", str(tmp_path / "other.yaml"), "--results-dir",
                 str(tmp_path / "r3"), "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert code == 2 and "was chosen on split fingerprint 000" in capsys.readouterr().err


def test_lite_needs_three_models_and_a_positive_budget(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text("")
    assert main(["lite", str(tmp_path), "--budget", "0"]) == 2
    assert "--budget must be a positive number" in capsys.readouterr().err
    with pytest.raises(Exception, match="increasing list"):
        parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                     "subsets": {"digits": {"split": "test", "fingerprint": "x", "indices": [3, 1]}}}, "s", "s",
                    check_dataset=None)
