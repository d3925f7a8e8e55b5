"""Retrieval metrics on hand-built similarity matrices, blockwise == full matrix, bootstrap, chance, memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipbench.foundations.errors import ClipbenchError
from clipbench.scoring.retrieval import (
    RetrievalRanks,
    block_sizes,
    bytes_per_element,
    chance_recalls,
    metrics_from_counts,
    retrieval_ranks,
    score_retrieval,
    zeroshot_retrieval,
)


def from_similarity(sim: np.ndarray, text_image, **kw) -> RetrievalRanks:
    """Ranks for an exact similarity matrix [images, captions]: one-hot images, captions = columns of ``sim``."""
    sim = np.asarray(sim, dtype=np.float32)
    return retrieval_ranks(np.eye(sim.shape[0], dtype=np.float32), np.ascontiguousarray(sim.T), text_image, **kw)


def reference_ranks(sim: np.ndarray, text_image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full-matrix reference: sort every row/column by (score desc, index asc) and read off positions."""
    sim = np.asarray(sim, dtype=np.float64)
    n_img, n_txt = sim.shape
    i2t, t2i, top_i2t, top_t2i = [], [], [], []
    for i in range(n_img):
        order = np.lexsort((np.arange(n_txt), -sim[i]))
        i2t.append(1 + int(np.flatnonzero(text_image[order] == i).min()))
        top_i2t.append(order)
    for t in range(n_txt):
        order = np.lexsort((np.arange(n_img), -sim[:, t]))
        t2i.append(1 + int(np.flatnonzero(order == text_image[t])[0]))
        top_t2i.append(order)
    return np.array(i2t), np.array(t2i), np.array(top_i2t), np.array(top_t2i)


def test_hand_built_ranks_with_one_and_seven_captions():
    # image 0: 1 caption (t0); image 1: 7 captions (t1..t7); image 2: 2 captions (t8, t9)
    owner = np.array([0, 1, 1, 1, 1, 1, 1, 1, 2, 2])
    sim = np.array([
        # t0   t1   t2   t3   t4   t5   t6   t7   t8   t9
        [0.5, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.8, 0.2],  # image 0: its caption is 3rd (after t1, t8)
        [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 0.8],  # image 1: best own caption t7 is 3rd
        [0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.1, 0.6],  # image 2: t9 first
    ])
    ranks = from_similarity(sim, owner, topk=3)
    assert ranks.i2t_rank.tolist() == [3, 3, 1]
    # text->image: t0: image 0 (0.5) beats 2 (0.3) and 1 (0.0) -> 1; t1: 0.9 (image 0) > 0.2 (2) > 0.1 (1) -> 3;
    # t2: images 1 and 2 tie at 0.2 and image 1 has the lower index -> 1; t8: image 2 last -> 3; t9: 0.8 > 0.6 -> 2
    assert ranks.t2i_rank.tolist() == [1, 3, 1, 1, 1, 1, 1, 1, 3, 2]
    assert ranks.i2t_topk.tolist() == [[1, 8, 0], [8, 9, 7], [9, 0, 1]]
    result = score_retrieval(ranks, owner, ks=(1, 2, 5), n_bootstrap=0)
    m = result.metrics
    assert m["i2t_recall@1"] == pytest.approx(100 / 3) and m["i2t_recall@2"] == pytest.approx(100 / 3)
    assert m["i2t_recall@5"] == 100.0
    assert m["t2i_recall@1"] == pytest.approx(70.0) and m["t2i_recall@2"] == pytest.approx(80.0)
    assert m["t2i_recall@5"] == 100.0
    recalls = [m[f"{d}_recall@{k}"] for d in ("i2t", "t2i") for k in (1, 2, 5)]
    assert m["mean_recall"] == pytest.approx(np.mean(recalls))
    assert m["i2t_mean_rank"] == pytest.approx(7 / 3) and m["i2t_median_rank"] == 3.0
    assert m["t2i_mean_rank"] == pytest.approx(15 / 10) and m["t2i_median_rank"] == 1.0
    assert result.ci95 is None


def test_ties_are_broken_by_index_in_both_directions():
    owner = np.array([0, 1, 2])
    sim = np.full((3, 3), 0.5)  # everything ties
    ranks = from_similarity(sim, owner, topk=3)
    # image i's caption is t_i: the lower-index captions t_0..t_{i-1} rank ahead of it
    assert ranks.i2t_rank.tolist() == [1, 2, 3]
    assert ranks.t2i_rank.tolist() == [1, 2, 3]
    assert ranks.i2t_topk.tolist() == [[0, 1, 2]] * 3 and ranks.t2i_topk.tolist() == [[0, 1, 2]] * 3
    # -0.0 and +0.0 are equal scores, so the index decides there too
    zero = np.array([[0.0, -0.0], [-0.0, 0.0]])
    assert from_similarity(zero, np.array([0, 1])).i2t_rank.tolist() == [1, 2]
    # a strictly higher score always wins over a lower index
    assert from_similarity(np.array([[0.4, 0.5], [0.5, 0.4]]), np.array([1, 0])).i2t_rank.tolist() == [1, 1]


def test_duplicate_captions_tie_and_the_lower_index_wins():
    # captions t0 (image 0) and t1 (image 1) are the same text: identical features, identical scores
    rng = np.random.default_rng(3)
    images = rng.standard_normal((2, 8)).astype(np.float32)
    shared = rng.standard_normal(8).astype(np.float32)
    texts = np.stack([shared, shared, rng.standard_normal(8).astype(np.float32)])
    owner = np.array([0, 1, 1])
    ranks = retrieval_ranks(images, texts, owner, topk=3)
    sim = images.astype(np.float64) @ texts.astype(np.float64).T
    ref = reference_ranks(sim, owner)
    assert ranks.i2t_rank.tolist() == ref[0].tolist() and ranks.t2i_rank.tolist() == ref[1].tolist()
    # for image 1 the duplicate t0 (lower index) always ranks directly ahead of its own copy t1
    top = ranks.i2t_topk[1].tolist()
    assert top.index(0) + 1 == top.index(1)


def test_k_larger_than_the_set():
    owner = np.array([0, 0, 1])
    sim = np.array([[0.1, 0.2, 0.9], [0.8, 0.7, 0.1]])
    ranks = from_similarity(sim, owner, topk=50)
    assert ranks.i2t_topk.shape == (2, 3) and ranks.t2i_topk.shape == (3, 2)
    result = score_retrieval(ranks, owner, ks=(1, 10, 50), n_bootstrap=0)
    assert result.metrics["i2t_recall@10"] == result.metrics["t2i_recall@50"] == 100.0
    assert result.metrics["i2t_recall@1"] == 0.0
    assert result.chance["i2t_recall@10"] == result.chance["t2i_recall@50"] == 100.0


@pytest.mark.parametrize("blocks", [(2, 3), (3, 7), (16, 5), (64, 1), (1, 300), (None, None)])
def test_blockwise_equals_full_matrix_exactly(blocks):
    rng = np.random.default_rng(11)
    n_img, n_txt = 40, 157
    owner = np.sort(np.concatenate([np.arange(n_img), rng.integers(0, n_img, n_txt - n_img)]))
    images = rng.standard_normal((n_img, 32)).astype(np.float32)
    texts = rng.standard_normal((n_txt, 32)).astype(np.float32)
    full = retrieval_ranks(images, texts, owner, topk=10, block_rows=n_img, block_cols=n_txt)
    part = retrieval_ranks(images, texts, owner, topk=10, block_rows=blocks[0], block_cols=blocks[1],
                           budget_bytes=4096)
    for name in ("i2t_rank", "t2i_rank", "i2t_topk", "t2i_topk"):
        assert np.array_equal(getattr(full, name), getattr(part, name)), name
    # and both equal an independent sort of the full matrix (integer features: exact arithmetic, many ties)
    ints_i = rng.integers(-2, 3, (n_img, 6)).astype(np.float32)
    ints_t = rng.integers(-2, 3, (n_txt, 6)).astype(np.float32)
    got = retrieval_ranks(ints_i, ints_t, owner, topk=10, block_rows=blocks[0], block_cols=blocks[1], budget_bytes=4096)
    ref = reference_ranks(ints_i.astype(np.float64) @ ints_t.astype(np.float64).T, owner)
    assert np.array_equal(got.i2t_rank, ref[0]) and np.array_equal(got.t2i_rank, ref[1])
    assert np.array_equal(got.i2t_topk, ref[2][:, :10]) and np.array_equal(got.t2i_topk, ref[3][:, :10])


def test_unsorted_caption_owners_and_input_checks():
    rng = np.random.default_rng(5)
    owner = rng.permutation(np.repeat(np.arange(6), 3))
    images, texts = rng.standard_normal((6, 4)), rng.standard_normal((18, 4))
    ref = reference_ranks(images.astype(np.float32).astype(np.float64) @ texts.astype(np.float32).astype(np.float64).T,
                          owner)
    got = retrieval_ranks(images, texts, owner, block_rows=2, block_cols=4)
    assert np.array_equal(got.i2t_rank, ref[0]) and np.array_equal(got.t2i_rank, ref[1]) and got.i2t_topk is None
    with pytest.raises(ClipbenchError, match="embedding dimension"):
        retrieval_ranks(images, texts[:, :3], owner)
    with pytest.raises(ClipbenchError, match="at least one caption"):
        retrieval_ranks(images, texts[:2], np.array([0, 1]))
    with pytest.raises(ClipbenchError, match="all zeros"):
        zeroshot_retrieval(np.zeros((1, 4)), texts[:1], np.array([0]))


def test_bootstrap_resamples_images_with_their_captions():
    i2t = np.array([1, 3, 1])
    t2i = np.array([1, 2, 2, 1, 5, 1])
    owner = np.array([0, 0, 0, 1, 2, 2])
    counts = np.array([[2, 0, 1], [1, 1, 1]])
    out = metrics_from_counts(i2t, t2i, owner, (1,), counts)
    # resample 0: image 0 twice (both times with its 3 captions) and image 2 once (its 2 captions)
    assert out["i2t_recall@1"][0] == pytest.approx(100.0)
    assert out["t2i_recall@1"][0] == pytest.approx(100 * (2 * 1 + 1) / (2 * 3 + 2))
    repeated = np.concatenate([t2i[:3], t2i[:3], t2i[4:]])
    assert out["t2i_median_rank"][0] == np.median(repeated) and out["t2i_mean_rank"][0] == repeated.mean()
    assert out["i2t_median_rank"][1] == np.median(i2t)
    ranks = RetrievalRanks(i2t, t2i, None, None)
    a = score_retrieval(ranks, owner, (1, 5), n_bootstrap=200, seed=0)
    b = score_retrieval(ranks, owner, (1, 5), n_bootstrap=200, seed=0)
    assert a.ci95 == b.ci95 and set(a.ci95) == set(a.metrics)
    for name, value in a.metrics.items():
        assert a.ci95[name]["low"] <= value + 1e-9 <= a.ci95[name]["high"] + 2e-9
    assert score_retrieval(ranks, owner, (1, 5), n_bootstrap=200, seed=1).ci95 != a.ci95


def test_chance_matches_random_rankings():
    owner = np.repeat(np.arange(4), [1, 2, 3, 4])  # 10 captions
    chance = chance_recalls(owner, 4, (1, 2, 5))
    # image with c captions: P(hit@k) = 1 - C(10 - c, k) / C(10, k)
    expected = np.mean([1 - math.comb(10 - c, 2) / math.comb(10, 2) for c in (1, 2, 3, 4)]) * 100
    assert chance["i2t_recall@2"] == pytest.approx(expected) and chance["t2i_recall@1"] == 25.0
    rng = np.random.default_rng(0)
    sims = [zeroshot_retrieval(rng.standard_normal((4, 16)), rng.standard_normal((10, 16)), owner, (1, 2, 5),
                               n_bootstrap=0).metrics["mean_recall"] for _ in range(200)]
    assert np.mean(sims) == pytest.approx(chance["mean_recall"], abs=2.0)


def test_block_sizes_respect_the_budget():
    for n_img, n_txt, budget in [(5000, 25000, 256 << 20), (200_000, 50_000, 64 << 20), (10, 10, 1), (7, 3, 10 ** 9)]:
        for topk in (False, True):
            rows, cols = block_sizes(n_img, n_txt, budget, topk)
            assert 1 <= rows <= n_img and 1 <= cols <= n_txt
            assert rows * cols * bytes_per_element(topk) <= max(budget, bytes_per_element(topk))
    assert block_sizes(1000, 5000, 256 << 20) == (1000, 5000)  # Flickr30k's test split fits one block




def test_one_metric_per_draw_equals_that_metric_of_all():
    """The gate's bootstrap asks ``metrics_from_counts`` for one metric: same numbers, the rest not computed."""
    rng = np.random.default_rng(3)
    i2t, t2i, owner = rng.integers(1, 9, 12), rng.integers(1, 13, 36), np.repeat(np.arange(12), 3)
    counts = rng.multinomial(12, np.full(12, 1 / 12), size=50)
    full = metrics_from_counts(i2t, t2i, owner, (1, 5), counts)
    for name, values in full.items():
        only = metrics_from_counts(i2t, t2i, owner, (1, 5), counts, (name,))
        np.testing.assert_array_equal(only[name], values)
        assert len(only) == (5 if name == "mean_recall" else 1)
