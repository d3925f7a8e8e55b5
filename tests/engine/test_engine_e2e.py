"""End to end through the CLI: a small random native CLIP (state-dict file) on the bundled digits for
zero-shot, and the linear probe wired through ``clipbench.run`` on fake data (a random CLIP's
features on 40 digits are separable, which sends L-BFGS to its 1000-iteration cap at large C: a
minute per probe, too slow for a unit test).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeAdapter, FakeModel, write_tiny_clip

import clipbench
from clipbench.api import limit_split
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.features import FORWARD_STATS, FeatureStore, feature_key
from clipbench.scoring.classification import bootstrap_ci, classification_metrics
from clipbench.suites import parse_suite
from clipbench.tasks.linear_probe import linear_probe

SUITE = "version: 1\ndatasets: [digits]\ntasks: [zeroshot]\noptions: {batch_size: 16, bootstrap: 200}\n"
LIMIT = 40


def _direct_features(model, split, projected=True):
    ds = split.torch_dataset(model.preprocess)
    with torch.inference_mode():
        return np.stack([model.encode_image(ds[i][0][None], projected=projected)[0].numpy() for i in range(len(split))])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    ckpt = write_tiny_clip(base / "tiny.pt")
    (base / "suite.yaml").write_text(SUITE)
    argv = ["run", "--model", str(ckpt), "--suite", str(base / "suite.yaml"), "--limit", str(LIMIT),
            "--cache-dir", str(base / "cache"), "--results-dir", str(base / "res"), "--device", "cpu",
            "--no-progress"]
    assert main(argv) == 0
    return base, ckpt, argv


def test_cli_zeroshot_matches_direct_computation(tiny_run):
    base, ckpt, _ = tiny_run
    (zs,) = [json.loads(line) for line in (base / "res" / "results.jsonl").read_text().splitlines()]
    model = clipbench.load_model(ckpt)
    adapter = get_dataset("digits")
    test = limit_split(adapter.load_split("test", base), LIMIT, 0)
    # the CLIP paper's zero-shot computed here without the engine: per-class prompt ensemble, cosine logits
    rows = []
    for prompts in adapter.class_prompts():
        emb = model.encode_text(model.tokenize(prompts)).float()
        emb = emb / emb.norm(dim=-1, keepdim=True)
        rows.append(emb.mean(0) / emb.mean(0).norm())
    feats = torch.from_numpy(_direct_features(model, test))
    logits = 100 * (feats / feats.norm(dim=-1, keepdim=True)) @ torch.stack(rows).T
    assert zs["metrics"] == pytest.approx(classification_metrics(logits.numpy(), test.labels), abs=1e-6)
    assert zs["n_samples"] == LIMIT and zs["limit"] == LIMIT and zs["model_identity"] == model.identity
    assert zs["weights_sha256"] == model.weights_sha256 and zs["dataset_fingerprint"] == test.fingerprint
    stored = FeatureStore(base / "cache" / "features").load(feature_key(model, test, batch_size=16))
    np.testing.assert_allclose(stored.features, feats.numpy(), rtol=1e-4, atol=1e-5)
    pivot = (base / "res" / "leaderboard_pivot.csv").read_text().splitlines()
    assert pivot[0] == "model,task,variant,digits,mean,n_datasets" and len(pivot) == 2


def test_second_cli_run_does_no_image_forward_and_compare_passes(tiny_run, capsys):
    base, _, argv = tiny_run
    FORWARD_STATS.reset()
    second = [str(base / "res2") if a == str(base / "res") else a for a in argv]
    assert main(second) == 0
    assert FORWARD_STATS.batches == 0  # every feature came from the store
    capsys.readouterr()
    assert main(["compare", str(base / "res2" / "leaderboard.csv"), "--baseline",
                 str(base / "res" / "leaderboard.csv")]) == 0
    assert "PASS" in capsys.readouterr().out


PROBE = parse_suite({"version": 1, "datasets": ["fake10"], "tasks": ["linear_probe"]}, "t", "lp", check_dataset=None)


def test_linear_probe_record_matches_probe_api_on_stored_features(tmp_path):
    model, adapter = FakeModel(), FakeAdapter(sizes={"train": 100, "test": 40})
    (rec,) = clipbench.run(model, suite=PROBE, datasets=[adapter], cache_dir=tmp_path, results_dir=tmp_path / "r",
                           device="cpu", progress=False)
    from clipbench.datasets import probe_splits

    store = FeatureStore(tmp_path / "features")
    train, val, test = (store.load(feature_key(model, s), s.labels) for s in probe_splits(adapter, tmp_path, 0.2, 0))
    direct = linear_probe(train=(train.features, train.labels), val=(val.features, val.labels),
                          test=(test.features, test.labels), solver="torch", seed=0, num_classes=10)
    assert rec["metrics"] == pytest.approx({"top1": direct.top1, "top5": direct.top5,
                                            "mean_per_class_recall": direct.mean_per_class_recall})
    assert rec["C"] == pytest.approx(direct.C) and len(rec["sweep"]) == len(direct.sweep)
    low, high = bootstrap_ci(direct.predictions, test.labels, "top1", 10, 1000, 0)
    assert rec["ci95"] == pytest.approx({"low": low, "high": high})
    assert rec["linear_probe"]["n_train"] == 80 and rec["linear_probe"]["n_val"] == 20 and rec["n_samples"] == 40
    (pre,) = clipbench.run(model, suite=PROBE, datasets=[adapter], cache_dir=tmp_path, write=False, device="cpu",
                           probe_features="pre_projection", progress=False)
    assert pre["linear_probe"]["features"] == "pre_projection"
    assert store.load(feature_key(model, probe_splits(adapter, tmp_path, 0.2, 0)[2], projected=False)).features.shape[1] == 16


def test_fewshot_probe_reports_mean_and_spread_over_seeds(tmp_path):
    suite = parse_suite({"version": 1, "datasets": ["fake10"], "tasks": ["linear_probe"]}, "t", "fs",
                        check_dataset=None)
    adapter = FakeAdapter(sizes={"train": 80, "test": 30})
    (rec,) = clipbench.run(FakeModel(), suite=suite, datasets=[adapter], cache_dir=tmp_path, write=False,
                           device="cpu", fewshot_k=4, seeds=[0, 1], progress=False)
    assert rec["task"] == "linear_probe_4shot" and rec["linear_probe"]["fewshot_k"] == 4 and rec["linear_probe"]["seeds"] == [0, 1]
    per_seed = [s["metrics"]["top1"] for s in rec["linear_probe"]["per_seed"]]
    assert rec["metrics"]["top1"] == pytest.approx(np.mean(per_seed))
    assert rec["linear_probe"]["spread"]["top1"] == pytest.approx(np.std(per_seed, ddof=1))  # sample std over seeds
