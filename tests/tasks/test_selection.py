"""image_caption_selection: metrics on hand-made features (Winoground 2x2, ties, several negatives, subsets,
chance, bootstrap) and the task end to end on the bundled shapes model (smoke-compositional)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipbench import api
from clipbench.datasets import get_dataset
from clipbench.datasets.shapes import COMPOSITIONAL_SUBSETS
from clipbench.tasks.registry import get_task
from clipbench.tasks.selection import score_selection, selection_scores


def _unit(*angles_deg):
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def test_one_negative_and_several_negatives():
    images = _unit(0, 90)
    # item 0: positive at 10 deg (cos .98) beats 50 deg; item 1 (image at 90): positive at 0 deg loses to 80 and 100
    texts = np.concatenate([_unit(10, 50), _unit(0, 80, 100, 180)])
    s = selection_scores(images * 3.0, texts * 0.5, [2, 4])  # unnormalised inputs: cosine is scale-free
    assert s.correct.tolist() == [True, False] and s.tie.tolist() == [False, False]
    assert s.margin[0] == pytest.approx(np.cos(np.deg2rad(10)) - np.cos(np.deg2rad(50)), abs=1e-6)
    out = score_selection(s, ["a", "b"], [1, 3], n_bootstrap=0)
    assert out["metrics"] == {"accuracy": 50.0, "acc/a": 100.0, "acc/b": 0.0}
    assert out["chance"] == {"accuracy": pytest.approx((50 + 25) / 2), "acc/a": 50.0, "acc/b": 25.0}
    assert out["per_subset"]["b"]["n_items"] == 1 and out["metric_ci95"] is None


def test_positive_must_beat_the_best_of_several_negatives():
    images = _unit(0)
    texts = _unit(20, 30, 40, 10)  # only the last negative beats the positive
    assert selection_scores(images, texts, [4]).correct.tolist() == [False]
    assert selection_scores(images, _unit(5, 30, 40, 10), [4]).correct.tolist() == [True]


def test_a_tie_counts_as_wrong():
    images = _unit(0, 0)
    texts = np.concatenate([_unit(30, 30), _unit(30, -30)])  # item 0: identical texts; item 1: mirror images
    s = selection_scores(images, texts, [2, 2])
    assert s.tie.tolist() == [True, True] and s.correct.tolist() == [False, False]
    assert score_selection(s, ["x", "x"], [1, 1], n_bootstrap=0)["per_subset"]["x"]["n_ties"] == 2


def _winoground(s00, s01, s10, s11):
    """Features whose cosine matrix [image i, caption j] is the given one (3-d: a free third axis)."""
    scores = np.array([[s00, s01], [s10, s11]], dtype=np.float64)
    # images as orthonormal e0, e1; caption j = (s0j, s1j, rest) so image i . caption j = sij
    images = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    captions = np.array([[scores[0, j], scores[1, j], np.sqrt(1 - scores[0, j] ** 2 - scores[1, j] ** 2)]
                         for j in range(2)], dtype=np.float32)
    # item 0 = image 0 with (caption 0, caption 1); item 1 = image 1 with (caption 1, caption 0)
    texts = np.stack([captions[0], captions[1], captions[1], captions[0]])
    return selection_scores(images, texts, [2, 2], ["g", "g"])


@pytest.mark.parametrize("matrix, text, image", [
    ((0.5, 0.2, 0.1, 0.4), True, True),  # both images prefer their caption, both captions their image
    ((0.5, 0.2, 0.6, 0.4), False, False),  # image 1 prefers caption 0; caption 0 prefers image 1
    ((0.3, 0.1, 0.4, 0.6), True, False),  # text ok (0.3>0.1, 0.6>0.4) but caption 0 prefers image 1 (0.4 > 0.3)
    ((0.3, 0.4, 0.1, 0.5), False, True),  # image 0 prefers caption 1; each caption prefers its own image
])
def test_winoground_scores_on_known_2x2(matrix, text, image):
    s = _winoground(*matrix)
    assert s.group_text.tolist() == [text] and s.group_image.tolist() == [image]
    full = score_selection(s, ["wino", "wino"], [1, 1], n_bootstrap=0)
    out = full["metrics"]
    assert full["per_subset"]["wino"]["group_score"] == 100.0 * (text and image)
    assert out["text_score"] == 100.0 * text and out["image_score"] == 100.0 * image
    assert out["group_score"] == 100.0 * (text and image)
    # item accuracy = per image, own caption first: the text score's two halves
    assert out["accuracy"] == 50.0 * sum(s.correct)


def test_winoground_definition_by_hand():
    # third row of the table above, spelled out: s(c0,i0)=.5 > s(c1,i0)=.4, s(c1,i1)=.45 > s(c0,i1)=.1 -> text;
    # image: s(c0,i0)=.5 > s(c0,i1)=.1 but s(c1,i1)=.45 > s(c1,i0)=.4 -> also image
    s = _winoground(0.5, 0.4, 0.1, 0.45)
    assert s.group_text.tolist() == [True] and s.group_image.tolist() == [True]


def test_a_group_of_one_is_rejected():
    from clipbench.foundations.errors import DataError

    with pytest.raises(DataError, match="group 'g' has one item"):
        selection_scores(_unit(0, 10), _unit(0, 5, 0, 5), [2, 2], ["g", None])


def test_bootstrap_interval_brackets_the_accuracy():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(200, 8)).astype(np.float32)
    texts = rng.normal(size=(400, 8)).astype(np.float32)
    texts[0::2] = images + 0.8 * rng.normal(size=(200, 8))  # positives close to their image
    s = selection_scores(images, texts, [2] * 200)
    out = score_selection(s, ["a"] * 100 + ["b"] * 100, [1] * 200, n_bootstrap=500, seed=1)
    acc, ci = out["metrics"]["accuracy"], out["metric_ci95"]["accuracy"]
    assert 60 < acc < 100 and ci["low"] < acc < ci["high"] and ci["high"] - ci["low"] < 15
    again = score_selection(s, ["a"] * 100 + ["b"] * 100, [1] * 200, n_bootstrap=500, seed=1)
    assert again["metric_ci95"] == out["metric_ci95"]


# ------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def smoke_record(shapes_data_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("selection-smoke")
    (record,) = api.run(suite="smoke-compositional", data_root=shapes_data_root, cache_dir=base / "cache",
                        results_dir=base / "results", progress=False)
    return record


def test_smoke_compositional_record(smoke_record):
    r = smoke_record
    assert r["task"] == "image_caption_selection" and r["dataset"] == "shapes_compositional"
    assert r["primary_metric"] == "accuracy" and r["image_caption_selection"]["chance"]["accuracy"] == 50.0
    assert list(r["image_caption_selection"]["per_subset"]) == list(COMPOSITIONAL_SUBSETS)
    assert sum(v["n_items"] for v in r["image_caption_selection"]["per_subset"].values()) == r["n_samples"] and r["image_caption_selection"]["n_captions"] == 2 * r["n_samples"]
    m = r["metrics"]
    assert m["accuracy"] > 60  # well above chance overall (72.6 measured)
    assert m["acc/replace_colour"] > 95  # colour words are learned
    assert r["ci95"]["low"] < m["accuracy"] < r["ci95"]["high"]
    assert r["image_caption_selection"]["tie_rule"].startswith("a positive tied") and r["image_caption_selection"]["n_groups"] == 0
    assert get_task("image_caption_selection").accepts(get_dataset("shapes_compositional"))
    assert not get_task("image_caption_selection").accepts(get_dataset("shapes"))


def test_swapped_positive_and_negative_mirror_the_accuracy(smoke_record, shapes_data_root, tmp_path):
    """The same items through choices:FILE with positive and negative exchanged: accuracy becomes 100 - acc - ties."""
    split = get_dataset("shapes_compositional").load_split("test", shapes_data_root)
    rows = [{"image": split.paths[i], "positive": split.negatives[i][0], "negatives": [split.positives[i]],
             "subset": split.subsets[i]} for i in range(len(split))]
    file = tmp_path / "swapped.jsonl"
    file.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (swapped,) = api.run(suite="smoke-compositional", datasets=[f"choices:{file}"], data_root=shapes_data_root,
                         cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False, bootstrap=0)
    ties = 100.0 * smoke_record["image_caption_selection"]["n_ties"] / smoke_record["n_samples"]
    assert swapped["metrics"]["accuracy"] == pytest.approx(100 - smoke_record["metrics"]["accuracy"] - ties, abs=1e-9)
    for name in COMPOSITIONAL_SUBSETS:
        assert swapped["metrics"][f"acc/{name}"] + smoke_record["metrics"][f"acc/{name}"] <= 100 + 1e-9
