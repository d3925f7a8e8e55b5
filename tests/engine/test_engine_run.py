"""End to end through clipbench.run with fake models and datasets: numbers, caching, records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeAdapter, FakeModel

import clipbench
from clipbench.features import FORWARD_STATS
from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.classification import classification_metrics
from clipbench.suites import parse_suite

ZS = parse_suite({"version": 3, "datasets": ["fake10"], "tasks": ["zeroshot"], "options": {"batch_size": 7}},
                 "test suite", "zs", check_dataset=None)


def _direct_zeroshot(model, adapter):
    """The CLIP paper's zero-shot computed directly, one class at a time, image by image."""
    split = adapter.load_split("test", None)
    ds = split.torch_dataset(model.preprocess)
    rows = []
    for prompts in adapter.class_prompts():
        emb = model.encode_text(model.tokenize(prompts))
        emb = emb / emb.norm(dim=-1, keepdim=True)
        rows.append(emb.mean(0) / emb.mean(0).norm())
    weights = torch.stack(rows)
    logits = []
    for i in range(len(split)):
        f = model.encode_image(ds[i][0][None])[0]
        logits.append(100 * (f / f.norm()) @ weights.T)
    return classification_metrics(torch.stack(logits).numpy(), split.labels)


def test_zeroshot_run_matches_direct_computation_and_second_run_is_cached(tmp_path):
    model, adapter = FakeModel(seed=3), FakeAdapter(sizes={"train": 20, "test": 45})
    kwargs = dict(suite=ZS, datasets=[adapter], cache_dir=tmp_path / "cache", results_dir=tmp_path / "res",
                  device="cpu", progress=False)
    (rec,) = clipbench.run(model, **kwargs)
    expected = _direct_zeroshot(FakeModel(seed=3), adapter)
    assert rec["metrics"] == pytest.approx(expected, abs=1e-9)
    assert rec["metrics"]["top1"] > 10  # the fake model does better than chance: numbers are not degenerate
    assert rec["ci95"]["low"] <= rec["metrics"]["top1"] <= rec["ci95"]["high"]
    assert rec["suite"] == "zs" and rec["suite_version"] == 3 and rec["n_samples"] == 45 and rec["batch_size"] == 7
    assert rec["model_identity"] == model.identity and rec["prompt_hash"] and rec["dataset_fingerprint"]

    calls = model.image_calls
    FORWARD_STATS.reset()
    model.encode_text = None  # text classifier must come from its cache too
    (again,) = clipbench.run(model, **kwargs)
    assert model.image_calls == calls and FORWARD_STATS.batches == 0
    assert again["metrics"] == rec["metrics"] and again["ci95"] == rec["ci95"]

    lines = (tmp_path / "res" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["record_id"] for line in lines] == [rec["record_id"], again["record_id"]]
    assert (tmp_path / "res" / "leaderboard.csv").is_file() and (tmp_path / "res" / "leaderboard_pivot.csv").is_file()


def test_limit_changes_fingerprint_and_is_seeded(tmp_path):
    model, adapter = FakeModel(), FakeAdapter(sizes={"train": 10, "test": 50})
    common = dict(suite=ZS, datasets=[adapter], cache_dir=tmp_path, write=False, device="cpu", progress=False)
    (full,) = clipbench.run(model, **common)
    (a,) = clipbench.run(model, limit=20, **common)
    (b,) = clipbench.run(model, limit=20, **common)
    assert a["n_samples"] == 20 and a["dataset_fingerprint"] != full["dataset_fingerprint"]
    assert a["dataset_fingerprint"] == b["dataset_fingerprint"] and a["metrics"] == b["metrics"]
    assert a["limit"] == 20


@pytest.mark.parametrize("kwargs, message", [
    (dict(seeds=[0, 1]), "--seeds only applies to few-shot"),
    (dict(solver="sklearn"), "--solver applies to the linear probe"),
    (dict(precision="fp16"), "fp16 needs a CUDA device"),
    (dict(batch_size=0), "batch-size must be a positive integer"),
])
def test_conflicting_options_are_errors(tmp_path, kwargs, message):
    with pytest.raises(ClipbenchError, match=message):
        clipbench.run(FakeModel(), suite=ZS, datasets=[FakeAdapter()], cache_dir=tmp_path, write=False,
                      device="cpu", **kwargs)


def test_nan_features_stop_the_run_without_a_record(tmp_path):
    with pytest.raises(ClipbenchError, match="NaN/Inf"):
        clipbench.run(FakeModel(nan=True), suite=ZS, datasets=[FakeAdapter()], cache_dir=tmp_path,
                      results_dir=tmp_path / "res", device="cpu", progress=False)
    assert not (tmp_path / "res" / "results.jsonl").exists()


def test_mean_per_class_recall_primary_metric(tmp_path):
    adapter = FakeAdapter(name="fakepc", num_classes=4, sizes={"test": 30}, primary_metric="mean_per_class_recall")
    (rec,) = clipbench.run(FakeModel(), suite=ZS, datasets=[adapter], cache_dir=tmp_path, write=False,
                           device="cpu", progress=False)
    assert rec["primary_metric"] == "mean_per_class_recall" and "top5" not in rec["metrics"]
    assert np.isfinite(rec["ci95"]["low"])


def test_limit_indices_stratified_exact_and_seeded():
    from clipbench.api import limit_indices

    labels = np.repeat(np.arange(5), [50, 30, 10, 5, 5])  # class-sorted, imbalanced
    picked = limit_indices(labels, 20, seed=1)
    assert len(picked) == 20 and np.all(np.diff(picked) > 0)
    assert np.bincount(labels[picked], minlength=5).tolist() == [10, 6, 2, 1, 1]
    assert np.array_equal(picked, limit_indices(labels, 20, seed=1))
    assert not np.array_equal(picked, limit_indices(labels, 20, seed=2))
    assert np.bincount(labels[limit_indices(labels, 6, 0)], minlength=5).min() == 1  # every class kept
    assert len(limit_indices(labels, 3, 0)) == 3


def test_limit_of_an_image_text_split_is_a_seeded_random_sample_not_the_first_images():
    """Image-text splits label every image as its own class, so every class ties on its share of the
    limit; the tie goes to a seeded random order, not to the lowest labels (the first N images)."""
    from clipbench.api import limit_indices

    labels = np.arange(1000)
    picked = limit_indices(labels, 100, seed=0)
    assert len(picked) == 100 and len(set(picked.tolist())) == 100 and np.all(np.diff(picked) > 0)
    assert picked.max() > 500 and not np.array_equal(picked, np.arange(100))
    assert np.array_equal(picked, limit_indices(labels, 100, seed=0))
    assert not np.array_equal(picked, limit_indices(labels, 100, seed=1))
    balanced = np.repeat(np.arange(10), 20)  # 25 of 200: five classes get a third sample, not always 0-4
    thirds = {tuple(np.flatnonzero(np.bincount(balanced[limit_indices(balanced, 25, s)]) == 3)) for s in range(6)}
    assert len(thirds) > 1 and all(len(t) == 5 for t in thirds)


def test_threads_option_is_pinned_for_the_run_recorded_and_restored(tmp_path, monkeypatch):
    model, adapter = FakeModel(seed=4), FakeAdapter(sizes={"train": 20, "test": 20})
    before = torch.get_num_threads()
    seen = []
    real_encode = model.encode_image

    def spy(images, projected=True):
        seen.append(torch.get_num_threads())
        return real_encode(images, projected=projected)

    monkeypatch.setattr(model, "encode_image", spy)
    (rec,) = clipbench.run(model, suite=ZS, datasets=[adapter], cache_dir=tmp_path / "c", results_dir=tmp_path / "r",
                           device="cpu", progress=False, threads=1)
    assert rec["torch_threads"] == 1 and seen and set(seen) == {1}
    assert torch.get_num_threads() == before
    (default,) = clipbench.run(model, suite=ZS, datasets=[adapter], cache_dir=tmp_path / "c2",
                               results_dir=tmp_path / "r2", device="cpu", progress=False)
    assert default["torch_threads"] == before
    with pytest.raises(ClipbenchError, match="threads must be a positive integer"):
        clipbench.run(model, suite=ZS, datasets=[adapter], cache_dir=tmp_path / "c", write=False, threads=0)
