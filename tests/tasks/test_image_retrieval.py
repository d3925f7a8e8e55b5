"""Image -> image retrieval: recall@k and MAP@R against hand-computed cases and pytorch-metric-learning's
AccuracyCalculator on identical features; through `clipbench run` on a labelled folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

from clipbench.cli import main
from clipbench.tasks.image_retrieval import retrieval_scores


def test_hand_computed_ranking_ties_and_singletons():
    # 1-D "directions" in 2-D: cosine similarity is set by the angle
    angles = np.array([0.0, 0.1, 0.3, 3.0, 3.1, 1.5])
    feats = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array([0, 0, 1, 1, 1, 2])  # class 2 has one image: not a query
    out = retrieval_scores(feats, labels, ks=(1, 2))
    assert list(out["queries"]) == [0, 1, 2, 3, 4]
    # query 0 ranks 1 (class 0), 2, 5, 3/4 -> R = 1, AP@R = 1; query 2 ranks 1, 0, 5, ... -> R = 2, no hit in 2
    assert out["hits"][1].tolist() == [True, True, False, True, True]
    assert out["hits"][2].tolist() == [True, True, False, True, True]
    assert out["ap_at_r"].tolist() == pytest.approx([1.0, 1.0, 0.0, 0.5, 0.5])
    # exact ties: equal features, the lower index is nearer (stable sort)
    tied = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    tie = retrieval_scores(tied, np.array([0, 1, 0, 1]), ks=(1,))
    # query 0: candidates 1 (other class) and 2 (same) tie; 1 ranks first -> miss at k=1, AP@R = 0
    assert tie["hits"][1].tolist()[0] is False and tie["ap_at_r"][0] == 0.0
    # query 2: 0 (same class) and 1 tie; 0 is first -> hit
    assert tie["hits"][1].tolist()[2] is True


@pytest.mark.peer
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_pytorch_metric_learning_on_identical_features(seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 16))
    labels = rng.integers(0, 6, size=300)
    feats = (centres[labels] + rng.normal(scale=1.2, size=(300, 16))).astype(np.float32)
    ours = retrieval_scores(feats, labels, ks=(1,), block_elements=300 * 7)  # several blocks
    x = torch.from_numpy(feats)
    x = x / x.norm(dim=1, keepdim=True)
    peer = AccuracyCalculator(include=("mean_average_precision_at_r", "precision_at_1"), device=torch.device("cpu"))
    acc = peer.get_accuracy(x, torch.from_numpy(labels), x, torch.from_numpy(labels), ref_includes_query=True)
    assert ours["ap_at_r"].mean() == pytest.approx(acc["mean_average_precision_at_r"], abs=1e-6)
    assert ours["hits"][1].mean() == pytest.approx(acc["precision_at_1"], abs=1e-9)


def test_blocks_do_not_change_the_result():
    rng = np.random.default_rng(3)
    feats, labels = rng.normal(size=(120, 8)), rng.integers(0, 4, size=120)
    whole = retrieval_scores(feats, labels, ks=(1, 5, 10))
    blocked = retrieval_scores(feats, labels, ks=(1, 5, 10), block_elements=120 * 9)
    for k in (1, 5, 10):
        assert np.array_equal(whole["hits"][k], blocked["hits"][k])
    assert np.array_equal(whole["ap_at_r"], blocked["ap_at_r"])


def test_cli_run_on_a_labelled_product_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    for name, rgb in colours.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(4):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 20, size=(24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{i}.png")
    argv = ["run", "--suite", "image_retrieval", "--dataset", f"folder:{tmp_path / 'photos'}", "--bootstrap", "50",
            "--image-retrieval-k", "1,3", "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
            "--no-progress"]
    assert main(argv) == 0
    assert "map_at_r" in capsys.readouterr().out
    (record,) = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert record["task"] == "image_retrieval" and record["primary_metric"] == "map_at_r"
    assert set(record["metrics"]) == {"map_at_r", "recall_at_1", "recall_at_3"}
    assert record["image_retrieval"] == {"features": "projected", "k": [1, 3], "n_queries": 12, "n_excluded": 0}
    assert record["ci95"]["low"] <= record["metrics"]["map_at_r"] <= record["ci95"]["high"]
    lines = (tmp_path / "r" / "leaderboard.csv").read_text().splitlines()
    assert any(",image_retrieval,k=1/3,map_at_r," in line for line in lines)
