"""One top-k and one tie rule: every ranking clipbench reports (k-NN neighbours, retrieval's top-k lists,
image retrieval, folder search, the per-sample top-5, predict) agrees with a stable full sort on
scores full of ties (equal scores: the lower index first), whatever the blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipbench.engine.vector_search import exact_search, vector_search
from clipbench.scoring.retrieval import retrieval_ranks
from clipbench.scoring.samples.classification import build_table
from clipbench.scoring.similarity import blockwise_top_k, l2_normalise, top_k
from clipbench.tasks.image_retrieval import retrieval_scores
from clipbench.tasks.knn import knn_neighbours


def stable_top(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def one_hot_rows(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit rows that are copies of a few basis vectors: every cosine is exactly 0 or 1 (ties everywhere)."""
    return np.eye(dim, dtype=np.float32)[np.random.default_rng(seed).integers(0, dim, n)]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_top_k_is_a_stable_full_sort(backend):
    scores = np.random.default_rng(0).integers(0, 3, size=(200, 17)).astype(np.float32)
    values = torch.from_numpy(scores) if backend == "torch" else scores
    for k in (1, 5, 17):
        got = top_k(values, k, rows=33)
        np.testing.assert_array_equal(np.asarray(got), stable_top(scores, k))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("database_block", [7, 10, 64, 1000])
def test_blockwise_top_k_is_a_stable_full_sort(backend, database_block):
    queries, database = one_hot_rows(23, 4, 1), one_hot_rows(150, 4, 2)
    full = queries @ database.T
    to = torch.from_numpy if backend == "torch" else np.asarray
    values, index = blockwise_top_k(to(queries), to(database), 10, block_elements=50, database_block=database_block)
    np.testing.assert_array_equal(np.asarray(index), stable_top(full, 10))
    np.testing.assert_array_equal(np.asarray(values), np.take_along_axis(full, stable_top(full, 10), 1))


def test_knn_neighbours_and_folder_search_agree_with_a_stable_sort():
    queries, database = one_hot_rows(31, 5, 3), one_hot_rows(120, 5, 4)
    want = stable_top(queries @ database.T, 12)
    _, idx = knn_neighbours(queries, database, 12, block_elements=64, database_block=25)
    np.testing.assert_array_equal(idx.numpy(), want)
    _, idx = exact_search(database, queries, 12, block_rows=9)
    np.testing.assert_array_equal(idx, want)
    _, idx, info = vector_search(database, queries, 12, backend="exact", block_rows=40)
    assert info == {"backend": "exact"}
    np.testing.assert_array_equal(idx, want)


def test_retrieval_top_k_lists_agree_with_a_stable_sort():
    images, texts = one_hot_rows(30, 4, 5), one_hot_rows(60, 4, 6)
    owner = np.repeat(np.arange(30), 2)
    sims = images @ texts.T
    for blocks in ((30, 60), (7, 11), (1, 5)):
        ranks = retrieval_ranks(images, texts, owner, topk=8, block_rows=blocks[0], block_cols=blocks[1])
        np.testing.assert_array_equal(ranks.i2t_topk, stable_top(sims, 8))
        np.testing.assert_array_equal(ranks.t2i_topk, stable_top(sims.T, 8))


def test_image_retrieval_ranks_by_a_stable_sort_without_the_query():
    features = one_hot_rows(40, 3, 7)
    labels = np.random.default_rng(8).integers(0, 4, 40)
    sims = features @ features.T
    np.fill_diagonal(sims, -np.inf)
    order = stable_top(sims, 39)
    got = retrieval_scores(features, labels, ks=(1, 5), block_elements=40 * 3)
    rel = labels[order] == labels[:, None]
    np.testing.assert_array_equal(got["hits"][1], rel[got["queries"], :1].any(axis=1))
    np.testing.assert_array_equal(got["hits"][5], rel[got["queries"], :5].any(axis=1))


def test_per_sample_top5_agrees_with_a_stable_sort():
    scores = np.random.default_rng(9).integers(0, 3, size=(50, 8)).astype(np.float32)
    table = build_table(scores, np.arange(50) % 8, "logits")
    top5 = np.stack(table.column("top5").to_pylist())
    np.testing.assert_array_equal(top5, stable_top(scores, 5))


def test_l2_normalise_is_one_rule_for_numpy_and_torch():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(l2_normalise(x), np.array([[0.6, 0.8], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_array_equal(l2_normalise(torch.from_numpy(x)).numpy(), l2_normalise(x))
    with pytest.raises(Exception, match="all zeros"):
        l2_normalise(x, reject_zero=True)
