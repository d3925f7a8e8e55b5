"""One resampling engine: the intervals of zero-shot, retrieval, selection and image retrieval, and the
paired tests of `compare`, all draw their resamples from `clipbench.scoring.resample`, and the same seed
and unit count give every one of them the same draws."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.scoring import resample
from clipbench.scoring.classification import score_classification
from clipbench.scoring.paired import paired_bootstrap, paired_bootstrap_units, paired_outcomes
from clipbench.scoring.retrieval import RetrievalRanks, metrics_from_counts, score_retrieval
from clipbench.tasks.image_retrieval import query_ci
from clipbench.tasks.selection import SelectionScores, score_selection

N, B, SEED = 40, 130, 7  # 130 resamples: two full chunks and a partial one


@pytest.fixture
def recorded(monkeypatch):
    """Every chunk of draws any caller takes from the engine, per call: [(n_units, [index arrays])]."""
    calls: list[tuple[int, list[np.ndarray]]] = []
    original = resample.draws

    def spy(n_units, n_resamples, seed=0):
        taken: list[np.ndarray] = []
        calls.append((n_units, taken))
        for d in original(n_units, n_resamples, seed):
            taken.append(d.index.copy())
            yield d

    monkeypatch.setattr(resample, "draws", spy)
    return calls


def reference() -> np.ndarray:
    """The draws of (N units, B resamples, SEED), straight from the generator: [B, N]."""
    rng = np.random.default_rng(SEED)
    return np.concatenate([rng.integers(0, N, size=(min(64, B - s), N)) for s in range(0, B, 64)])


def assert_engine_draws(calls, expected_calls: int) -> None:
    assert len(calls) == expected_calls
    for n_units, taken in calls:
        assert n_units == N
        np.testing.assert_array_equal(np.concatenate(taken), reference())


def interval_of(values: np.ndarray) -> tuple[float, float]:
    low, high = np.quantile(values, [0.025, 0.975])
    return pytest.approx(float(low), abs=1e-9), pytest.approx(float(high), abs=1e-9)


def test_zeroshot_interval_draws_from_the_engine(recorded):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, N)
    scores = rng.normal(size=(N, 4)).astype(np.float32)
    result = score_classification(scores, labels, "top1", n_bootstrap=B, seed=SEED)
    assert_engine_draws(recorded, 1)
    correct = (scores.argmax(1) == labels).astype(np.float64)
    low, high = interval_of(100.0 * correct[reference()].mean(axis=1))
    assert (result.ci95["low"], result.ci95["high"]) == (low, high)


def test_retrieval_intervals_resample_images_with_the_same_draws(recorded):
    rng = np.random.default_rng(1)
    text_image = np.repeat(np.arange(N), 2)  # two captions per image
    ranks = RetrievalRanks(rng.integers(1, 20, N), rng.integers(1, 20, 2 * N), None, None)
    result = score_retrieval(ranks, text_image, (1, 5), n_bootstrap=B, seed=SEED)
    assert_engine_draws(recorded, 1)
    counts = np.stack([np.bincount(row, minlength=N) for row in reference()]).astype(np.float64)
    expected = metrics_from_counts(ranks.i2t_rank, ranks.t2i_rank, text_image, (1, 5), counts)["mean_recall"]
    assert (result.ci95["mean_recall"]["low"], result.ci95["mean_recall"]["high"]) == interval_of(expected)


def test_selection_and_image_retrieval_intervals_use_the_same_draws(recorded):
    rng = np.random.default_rng(2)
    correct = rng.random(N) < 0.6
    scores = SelectionScores(correct, np.zeros(N, bool), np.zeros(N), [], np.zeros(0, bool), np.zeros(0, bool))
    out = score_selection(scores, ["all"] * N, [1] * N, n_bootstrap=B, seed=SEED)
    ap = rng.random(N)
    ci = query_ci(ap, B, SEED)
    assert_engine_draws(recorded, 3)  # accuracy, acc/all (one subset of all N items), MAP@R
    assert (out["metric_ci95"]["accuracy"]["low"], out["metric_ci95"]["accuracy"]["high"]) == interval_of(
        100.0 * correct[reference()].mean(axis=1))
    assert out["metric_ci95"]["acc/all"] == out["metric_ci95"]["accuracy"]
    assert (ci["low"], ci["high"]) == interval_of(100.0 * ap[reference()].mean(axis=1))


def test_compare_paired_tests_use_the_same_draws(recorded):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, N)
    base, new = rng.random(N) < 0.5, rng.random(N) < 0.6
    d, low, high, _ = paired_bootstrap("top1", labels, base, new, n_resamples=B, seed=SEED)
    outcome = paired_outcomes("map_at_r", rng.random(N), rng.random(N), n_resamples=B, seed=SEED)
    ranks = rng.integers(1, 9, N).astype(np.float64)
    paired_bootstrap_units(lambda c: np.zeros(len(c)), lambda c: c @ ranks / N, N, n_resamples=B, seed=SEED)
    assert_engine_draws(recorded, 3)
    diff = 100.0 * (new.astype(float) - base.astype(float))[reference()].mean(axis=1)
    assert (low, high) == interval_of(diff)
    assert d == pytest.approx(100.0 * (new.mean() - base.mean()))
    assert outcome.test == "bootstrap"


def test_the_record_interval_and_the_paired_test_see_the_same_resamples():
    """A record's interval (CIs) and `compare`'s paired test draw identically for one seed and unit count."""
    values = np.random.default_rng(4).random(N)
    ci = resample.interval(resample.mean_statistic(values), N, B, SEED)
    _, low, high, _ = paired_bootstrap_units(lambda c: np.zeros(len(c)), lambda c: 100.0 * (c @ values) / N, N,
                                             n_resamples=B, seed=SEED)
    assert (ci["low"], ci["high"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))


def test_counts_are_the_draws_and_the_whole_split_is_all_ones():
    (first, *_) = resample.draws(N, 10, SEED)
    counts = first.counts
    assert counts.shape == (10, N) and (counts.sum(axis=1) == N).all()
    np.testing.assert_array_equal(counts[3], np.bincount(first.index[3], minlength=N))
    np.testing.assert_array_equal(resample.Draws.whole(N).counts, np.ones((1, N)))
    assert resample.interval(resample.mean_statistic(np.ones(N)), N, 0) is None
