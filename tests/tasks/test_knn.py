"""The k-NN task: blockwise neighbours against the full matrix, the tie rules, DINO's votes, a peer
test against scikit-learn's KNeighborsClassifier, and the task end to end through ``clipbench run``."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

import clipbench
from clipbench.cli import main
from clipbench.datasets import get_dataset, probe_splits
from clipbench.features import FeatureStore, feature_key
from clipbench.foundations.errors import ClipbenchError
from clipbench.results.records import record_variant
from clipbench.scoring.classification import mean_per_class_recall, score_classification
from clipbench.scoring.similarity import top_k as top_k_lowest_index
from clipbench.tasks.knn import KnnTask, knn_class_scores, knn_neighbours


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Many tiny blocks: on a loaded 2-core machine torch's thread pool costs more than the arithmetic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _full_matrix_neighbours(queries, database, k):
    """The reference: the whole float64 cosine matrix, ranked by (-similarity, database index)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = database / np.linalg.norm(database, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ d.astype(np.float64).T
    order = np.array([np.lexsort((np.arange(len(d)), -row))[:k] for row in sims])
    return np.take_along_axis(sims, order, 1), order


def test_top_k_lowest_index_breaks_ties_by_column():
    values = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0, 4.0]])
    assert top_k_lowest_index(values, 2).tolist() == [[1, 2], [0, 1]]
    assert top_k_lowest_index(values, 4).tolist() == [[1, 2, 4, 3], [0, 1, 2, 3]]
    assert top_k_lowest_index(values, 5).tolist() == [[1, 2, 4, 3, 0], [0, 1, 2, 3, 4]]


@pytest.mark.parametrize("block_elements, database_block", [(1 << 24, 65536), (64, 7), (1, 100), (500, 33)])
def test_blockwise_equals_full_matrix_on_random_features(block_elements, database_block):
    rng = np.random.default_rng(0)
    queries, database = rng.normal(size=(57, 16)).astype(np.float32), rng.normal(size=(203, 16)).astype(np.float32)
    sims, idx = knn_neighbours(queries, database, 20, block_elements=block_elements, database_block=database_block)
    ref_sims, ref_idx = _full_matrix_neighbours(queries, database, 20)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(sims.numpy(), ref_sims, atol=1e-6)


@pytest.mark.parametrize("database_block", [65536, 5, 20, 21])
def test_blockwise_equal_similarities_take_the_lower_database_index(database_block):
    """Vectors with four entries of +-1 have similarities in steps of 1/4, exact in float32 whatever the
    summation order, so almost every neighbour list ends in a tie, in and across database blocks."""
    rng = np.random.default_rng(1)

    def sparse_signs(n):
        x = np.zeros((n, 8), dtype=np.float32)
        for row in x:
            row[rng.choice(8, 4, replace=False)] = rng.choice([-1.0, 1.0], 4)
        return x

    queries, database = sparse_signs(40), sparse_signs(120)
    database[60:90] = database[:30]  # exact duplicates, in other blocks
    sims, idx = knn_neighbours(queries, database, 20, block_elements=100, database_block=database_block)
    ref_sims, ref_idx = _full_matrix_neighbours(queries, database, 20)
    assert (np.diff(ref_sims, axis=1) == 0).mean() > 0.5  # the test is about ties
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_array_equal(sims.numpy(), ref_sims.astype(np.float32))


def test_knn_rejects_a_database_smaller_than_k_and_bad_features():
    with pytest.raises(ClipbenchError, match="k=20 needs at least 20 database images, the database has 5"):
        knn_neighbours(np.ones((3, 4)), np.ones((5, 4)), 20)
    with pytest.raises(ClipbenchError, match="do not share a dimension"):
        knn_neighbours(np.ones((3, 4)), np.ones((30, 5)), 20)
    bad = np.ones((30, 4))
    bad[3, 1] = np.nan
    with pytest.raises(ClipbenchError, match="database features contain NaN"):
        knn_neighbours(np.ones((3, 4)), bad, 20)


def test_dino_votes_and_vote_ties():
    sims = torch.tensor([[0.5, 0.3, 0.2], [0.4, 0.4, 0.1]], dtype=torch.float64)
    labels = torch.tensor([[2, 0, 2], [1, 0, 3]])
    dino = knn_class_scores(sims, labels, 4, "dino", 0.1)
    np.testing.assert_allclose(dino[0], [math.exp(3), 0, math.exp(5) + math.exp(2), 0], rtol=1e-12)
    np.testing.assert_allclose(dino[1], [math.exp(4), math.exp(4), 0, math.exp(1)], rtol=1e-12)
    uniform = knn_class_scores(sims, labels, 4, "uniform")
    assert uniform.tolist() == [[1, 0, 2, 0], [1, 1, 0, 1]]
    # equal votes: the lower class index is the prediction and ranks first in top-k
    result = score_classification(dino, np.array([2, 1]), n_bootstrap=0)
    assert result.metrics["top1"] == 50.0  # row 1: classes 0 and 1 tie, class 0 wins


@pytest.mark.peer
def test_peer_sklearn_kneighbors_classifier_uniform():
    """Same neighbours, votes and predictions as KNeighborsClassifier(metric='cosine', weights='uniform',
    algorithm='brute') on clustered random features whose k-th and (k+1)-th neighbours are well apart."""
    rng = np.random.default_rng(3)
    n_classes, k = 6, 10
    centres = rng.normal(size=(n_classes, 24))
    y_db, y_q = rng.integers(0, n_classes, 400), rng.integers(0, n_classes, 150)
    database = (centres[y_db] + 2.0 * rng.normal(size=(400, 24))).astype(np.float32)
    queries = (centres[y_q] + 2.0 * rng.normal(size=(150, 24))).astype(np.float32)
    ref_sims, _ = _full_matrix_neighbours(queries, database, k + 1)
    assert (ref_sims[:, k - 1] - ref_sims[:, k]).min() > 1e-6  # no neighbour set hangs on rounding

    sims, idx = knn_neighbours(queries, database, k, block_elements=256, database_block=64)
    scores = knn_class_scores(sims, torch.from_numpy(y_db)[idx], n_classes, "uniform")
    peer = KNeighborsClassifier(n_neighbors=k, metric="cosine", weights="uniform", algorithm="brute")
    peer.fit(database, y_db)
    _, peer_idx = peer.kneighbors(queries)
    assert [set(r) for r in idx.tolist()] == [set(r) for r in peer_idx.tolist()]
    np.testing.assert_allclose(scores / k, peer.predict_proba(queries), atol=1e-12)
    ties = (np.sort(scores, axis=1)[:, -1] == np.sort(scores, axis=1)[:, -2]).sum()
    assert ties > 0  # vote ties occur here and are resolved the same way (lowest class)
    np.testing.assert_array_equal(scores.argmax(axis=1), peer.predict(queries))


def test_variant_parts_name_non_default_options():
    task = KnnTask()
    base = {"task": "knn", "limit": None, "precision": "fp32"}
    assert record_variant({**base, "knn": {"k": 20, "temperature": 0.07, "weighting": "dino",
                                           "features": "projected"}}) == ""
    assert record_variant({**base, "knn": {"k": 5, "temperature": 0.1, "weighting": "dino",
                                           "features": "pre_projection"}}) == "pre_projection,k=5,T=0.1"
    # the temperature does not change uniform votes, so it does not split the leaderboard there
    assert task.variant_parts({"knn": {"k": 20, "temperature": 0.1, "weighting": "uniform"}}) == ["uniform"]


@pytest.mark.parametrize("argv, message", [
    (["--knn-k", "0"], "knn-k must be a positive integer"),
    (["--knn-temperature", "-1"], "knn-temperature must be a positive number"),
])
def test_cli_rejects_bad_knn_options(argv, message, capsys):
    assert main(["run", "--suite", "smoke-knn", "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_knn_weighting_is_a_choice(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--suite", "smoke-knn", "--knn-weighting", "cosine"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_cli_knn_option_on_a_suite_without_knn_is_an_error(capsys):
    assert main(["run", "--suite", "smoke", "--knn-k", "5", "--no-progress"]) == 2
    assert "k-nn classification" in capsys.readouterr().err


@pytest.fixture(scope="module")
def smoke_knn(tmp_path_factory):
    base = tmp_path_factory.mktemp("knn")
    common = ["--offline", "--no-progress", "--device", "cpu", "--cache-dir", str(base / "c")]
    assert main(["run", "--suite", "smoke-knn", "--results-dir", str(base / "r"), *common]) == 0
    assert main(["run", "--suite", "smoke-knn", "--results-dir", str(base / "r"), "--knn-k", "5",
                 "--knn-weighting", "uniform", "--bootstrap", "0", *common]) == 0
    return base


def test_cli_smoke_knn_record(smoke_knn):
    dino, uniform = (json.loads(line) for line in (smoke_knn / "r" / "results.jsonl").read_text().splitlines())
    assert dino["task"] == "knn" and dino["dataset"] == "digits" and dino["split"] == "test"
    assert dino["n_samples"] == 797 and dino["suite"] == "smoke-knn" and dino["primary_metric"] == "top1"
    assert set(dino["metrics"]) == {"top1", "top5", "mean_per_class_recall", "top1_k1", "mean_per_class_recall_k1"}
    assert dino["ci95"]["low"] < dino["metrics"]["top1"] < dino["ci95"]["high"]
    knn = dino["knn"]
    assert (knn["k"], knn["temperature"], knn["weighting"], knn["features"]) == (20, 0.07, "dino", "projected")
    # the database is the whole digits train split (the probe's train + val carve, 800 + 200)
    assert (knn["database"], knn["n_database"], knn["n_train"], knn["n_val"]) == ("train+val", 1000, 800, 200)
    assert knn["ci95_k1"]["low"] < dino["metrics"]["top1_k1"] < knn["ci95_k1"]["high"]
    assert 10 < dino["metrics"]["top1"] <= 100 and dino["metrics"]["top5"] >= dino["metrics"]["top1"]

    assert (uniform["knn"]["k"], uniform["knn"]["weighting"], uniform["ci95"]) == (5, "uniform", None)
    assert uniform["metrics"]["top1_k1"] == dino["metrics"]["top1_k1"]  # the nearest neighbour is the same
    with open(smoke_knn / "r" / "leaderboard.csv", newline="") as fh:
        variants = {(row["variant"], row["metric"]): float(row["value"]) for row in csv.DictReader(fh)}
    assert variants[("", "top1")] == pytest.approx(dino["metrics"]["top1"], abs=1e-4)
    assert variants[("k=5,uniform", "top1")] == pytest.approx(uniform["metrics"]["top1"], abs=1e-4)


@pytest.mark.peer
def test_cli_smoke_knn_matches_sklearn_on_the_cached_digits_features(smoke_knn):
    """The uniform k=5 run's numbers, recomputed by scikit-learn from the features the run cached."""
    _, uniform = (json.loads(line) for line in (smoke_knn / "r" / "results.jsonl").read_text().splitlines())
    model, adapter = clipbench.load_model("clipbench-tiny"), get_dataset("digits")
    store = FeatureStore(smoke_knn / "c" / "features")
    train, val, test = (store.load(feature_key(model, s, batch_size=128), s.labels)  # smoke-knn's batch size
                        for s in probe_splits(adapter, smoke_knn, 0.2, 0))
    peer = KNeighborsClassifier(n_neighbors=5, metric="cosine", weights="uniform", algorithm="brute")
    peer.fit(np.concatenate([train.features, val.features]), np.concatenate([train.labels, val.labels]))
    predictions = peer.predict(test.features)
    assert uniform["metrics"]["top1"] == pytest.approx(100 * (predictions == test.labels).mean(), abs=1e-9)
    assert uniform["metrics"]["mean_per_class_recall"] == pytest.approx(
        mean_per_class_recall(predictions, test.labels, 10), abs=1e-9)


def test_knn_records_log_per_sample_predictions_for_the_paired_gate(smoke_knn):
    from clipbench.results.samples import read_samples

    dino, _ = (json.loads(line) for line in (smoke_knn / "r" / "results.jsonl").read_text().splitlines())
    log = read_samples(smoke_knn / "r", dino)
    assert len(log.index) == dino["n_samples"]
    assert 100 * np.mean(log.correct) == pytest.approx(dino["metrics"]["top1"], abs=1e-9)
