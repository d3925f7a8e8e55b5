"""Linear probe: torch solver vs scikit-learn on the same objective, the documented C search,
few-shot subsets, and input validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import clipbench
from clipbench.foundations.errors import ClipbenchError
from clipbench.tasks import linear_probe as lp
from clipbench.tasks.fewshot import fewshot_linear_probe, fewshot_subset
from clipbench.tasks.probe_newton import TorchSolver
from clipbench.tasks.probe_sklearn import SklearnSolver


def make_problem(n: int, dim: int = 32, classes: int = 5, *, noise: float = 0.15, seed: int = 0):
    """Gaussian classes with an offset, correlated features and label noise: ~70-85% top-1."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim)) * 0.45
    mixing = np.eye(dim) + 0.3 * rng.standard_normal((dim, dim)) / np.sqrt(dim)
    y = rng.integers(0, classes, n)
    X = (means[y] + rng.standard_normal((n, dim))) @ mixing + 2.0
    flip = rng.random(n) < noise
    y = np.where(flip, rng.integers(0, classes, n), y)
    return X.astype(np.float32), y.astype(np.int64)


@pytest.fixture(scope="module")
def problem():
    X, y = make_problem(1600, seed=0)
    return (X[:600], y[:600]), (X[600:], y[600:])


def sklearn_objective(X, y, weight, bias, C):
    """C * summed cross-entropy + 0.5 ||W||^2 in float64, written out independently."""
    logits = X.astype(np.float64) @ weight.T.astype(np.float64) + bias
    logits -= logits.max(axis=1, keepdims=True)
    log_prob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return C * -log_prob[np.arange(len(y)), y].sum() + 0.5 * np.sum(weight.astype(np.float64) ** 2)


@pytest.mark.peer
@pytest.mark.parametrize("C", [0.01, 0.1, 1.0])
def test_torch_fit_matches_sklearn_for_fixed_C(problem, C):
    (X, y), (X_test, y_test) = problem
    ours = TorchSolver(X, y, 5).fit(C)
    ref = SklearnSolver(X, y, 5).fit(C)
    exact = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X.astype(np.float64), y)
    best = sklearn_objective(X, y, exact.coef_, exact.intercept_, C)
    # both reach the optimum of the same objective to well within the solvers' tolerance
    ours_obj = sklearn_objective(X, y, ours.weight, ours.bias, C)
    ref_obj = sklearn_objective(X, y, ref.weight, ref.bias, C)
    assert ours_obj == pytest.approx(best, rel=1e-5)
    assert ref_obj == pytest.approx(best, rel=1e-4)
    assert ours_obj <= ref_obj * (1 + 1e-6)  # at least as close to the optimum as the reference
    assert ours.converged and ours.n_iter > 0
    scale = np.abs(exact.coef_).max()
    assert np.abs(ours.weight - exact.coef_).max() <= 0.02 * scale
    assert np.abs(ours.weight - ref.weight).max() <= 0.02 * scale
    agree = np.mean(ours.scores(X_test).argmax(1) == ref.scores(X_test).argmax(1))
    assert agree >= 0.99
    acc = np.mean(ours.scores(X_test).argmax(1) == y_test)
    assert 0.6 <= acc <= 0.9  # the fixture is non-trivial


@pytest.mark.peer
def test_binary_uses_sklearn_parametrisation(problem):
    """Two classes: sklearn fits one weight vector (penalty on it alone); so must we."""
    (X, y), _ = problem
    keep = y < 2
    Xb, yb = X[keep], y[keep]
    ours = TorchSolver(Xb, yb, 2).fit(0.5)
    exact = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(Xb.astype(np.float64), yb)
    assert ours.weight.shape == (2, X.shape[1])
    np.testing.assert_array_equal(ours.weight[0], 0.0)
    np.testing.assert_allclose(ours.weight[1], exact.coef_[0], atol=0.02 * np.abs(exact.coef_).max())
    assert ours.bias[1] - ours.bias[0] == pytest.approx(exact.intercept_[0], abs=0.02)


def test_warm_start_reaches_the_same_solution(problem):
    (X, y), _ = problem
    solver = TorchSolver(X, y, 5)
    cold = solver.fit(0.1)
    warm = solver.fit(0.1, init=solver.fit(1.0))
    assert warm.converged
    assert np.abs(warm.weight - cold.weight).max() <= 0.02 * np.abs(cold.weight).max()


def test_full_sweep_torch_matches_sklearn(problem):
    train, test = problem
    ours = clipbench.linear_probe(train=train, test=test, solver="torch", seed=0)
    ref = clipbench.linear_probe(train=train, test=test, solver="sklearn_exact", seed=0)
    # both solve every fit to its optimum, so the protocol's outcome is the same
    assert ours.C == pytest.approx(ref.C) and ours.top1 == pytest.approx(ref.top1)
    assert ours.convergence["all_converged"] and ref.convergence["all_converged"]
    assert 60.0 <= ours.top1 <= 90.0
    assert len(ours.sweep) == len(ref.sweep) == 15
    # metrics are the definitions applied to the returned predictions
    assert ours.top1 == pytest.approx(100 * np.mean(ours.predictions == test[1]))
    recalls = [np.mean(ours.predictions[test[1] == c] == c) for c in range(5)]
    assert ours.mean_per_class_recall == pytest.approx(100 * np.mean(recalls))
    assert ours.top5 == pytest.approx(100.0)  # 5 classes: top-5 is everything
    assert ours.val_split == {"seed": 0, "fraction": 0.2}
    assert (ours.n_train, ours.n_val, ours.n_test) == (480, 120, 1000)
    json.dumps(ours.to_dict())  # the record is JSON-serialisable


def expected_sequence(scores_by_point):
    """The documented search, replayed from recorded scores."""
    seq = [6.0, 4.0, 2.0, 0.0, -2.0, -4.0, -6.0]
    centre = max(seq, key=lambda p: (scores_by_point[p], p))
    for step in (1.0, 0.5, 0.25, 0.125):
        cands = [centre]
        for p in (centre + step, centre - step):
            if -6 <= p <= 6 and p not in seq:
                seq.append(p)
            if -6 <= p <= 6:
                cands.append(p)
        centre = max(cands, key=lambda p: (scores_by_point[p], p))
    return seq, centre


def test_sweep_visits_exactly_the_documented_lambdas():
    peak = 0.3  # val score peaks at lambda = 10^0.3
    visited, inits = [], []

    def evaluate(point, init):
        visited.append(point)
        inits.append(None if init is None else init["at"])
        return -abs(point - peak), {"at": point}

    best, state = lp.sweep_lambdas(evaluate)
    assert visited == [6, 4, 2, 0, -2, -4, -6, 1, -1, 0.5, -0.5, 0.75, 0.25, 0.375, 0.125]
    assert best == 0.25  # nearest 1/8-decade point to 0.3 reachable by the search
    # each fit warm-starts from the nearest earlier point (ties to the larger lambda)
    assert inits == [None, 6, 4, 2, 0, -2, -4, 2, 0, 1, 0, 1, 0.5, 0.5, 0.25]
    assert visited == expected_sequence({p: -abs(p - peak) for p in visited})[0]


def test_sweep_ties_go_to_stronger_regularisation_and_respect_the_range():
    visited = []

    def flat(point, init):
        visited.append(point)
        return 50.0, None

    best, _ = lp.sweep_lambdas(flat)
    assert best == 6.0  # all tied -> largest lambda, i.e. smallest C = 1e-6
    assert visited == [6, 4, 2, 0, -2, -4, -6, 5, 5.5, 5.75, 5.875]  # 7, 6.5, ... are out of range


def test_real_sweep_follows_the_documented_search(problem):
    train, test = problem
    result = clipbench.linear_probe(train=train, test=test, solver="torch", metric="mean_per_class_recall")
    points = [float(-np.log10(c)) for c, _ in result.sweep]
    points = [round(p * 8) / 8 for p in points]
    scores = dict(zip(points, (s for _, s in result.sweep), strict=True))
    seq, centre = expected_sequence(scores)
    assert points == seq
    assert result.C == pytest.approx(10.0 ** -centre)
    assert result.metric == "mean_per_class_recall"


def test_explicit_val_and_probabilities(problem):
    (X, y), test = problem
    result = clipbench.linear_probe(train=(X[:400], y[:400]), val=(X[400:], y[400:]), test=test,
                                    return_probabilities=True, num_threads=1)
    assert result.val_split is None and result.n_val == 200
    assert result.probabilities.shape == (1000, 5)
    np.testing.assert_allclose(result.probabilities.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(result.probabilities.argmax(1), result.predictions)


def test_top5_absent_below_five_classes_and_tensor_inputs(problem):
    (X, y), (Xt, yt) = problem
    keep, keep_t = y < 3, yt < 3
    result = clipbench.linear_probe(train=(torch.from_numpy(X[keep]), torch.from_numpy(y[keep])),
                                    test=(Xt[keep_t], yt[keep_t]))
    assert result.top5 is None and "top5" not in result.metrics


def test_stratified_val_split_is_seeded_and_stratified():
    y = np.repeat(np.arange(4), [10, 20, 5, 2])
    tr, va = lp.stratified_val_split(y, 0.2, seed=3)
    assert np.bincount(y[va]).tolist() == [2, 4, 1, 1]
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(y)))
    assert np.array_equal(va, lp.stratified_val_split(y, 0.2, seed=3)[1])
    assert not np.array_equal(va, lp.stratified_val_split(y, 0.2, seed=4)[1])


def test_fewshot_subset_exact_k_deterministic_and_seed_dependent():
    y = np.repeat(np.arange(6), 30)
    a = fewshot_subset(y, 4, seed=0)
    assert np.bincount(y[a]).tolist() == [4] * 6
    assert np.array_equal(a, fewshot_subset(y, 4, seed=0))
    assert not np.array_equal(a, fewshot_subset(y, 4, seed=1))
    with pytest.raises(ClipbenchError, match="class 2 has 3"):
        fewshot_subset(np.array([0] * 5 + [1] * 5 + [2] * 3), 4, seed=0)


def test_fewshot_probe_mean_and_spread(problem):
    train, test = problem
    result = fewshot_linear_probe(train, test, k=8, seeds=(0, 1, 2), num_threads=1)
    top1 = np.array([run.top1 for run in result.runs])
    assert result.mean["top1"] == pytest.approx(top1.mean())
    assert result.std["top1"] == pytest.approx(top1.std(ddof=1))
    assert result.std["top1"] > 0  # different subsets, different probes
    assert all(run.n_train + run.n_val == 40 for run in result.runs)
    json.dumps(result.to_dict())


def bad_inputs():
    X, y = make_problem(60, dim=4, classes=3)
    good = (X, y)
    nan = X.copy()
    nan[3, 1] = np.nan
    inf = X.copy()
    inf[0, 0] = np.inf
    one_sample = y.copy()
    one_sample[:] = np.where(np.arange(60) < 59, one_sample % 2, 2)  # class 2 once
    return [
        (dict(train=(X, y[:-1]), test=good), "one label per row"),
        (dict(train=(X[0], y), test=good), "2-D"),
        (dict(train=(nan, y), test=good), "NaN or Inf in 1 row"),
        (dict(train=good, test=(inf, y)), "test features contain NaN or Inf"),
        (dict(train=good, test=(X[:, :3], y)), "test features have 3 dimensions, train has 4"),
        (dict(train=good, test=(X, y + 1), num_classes=3), r"test labels must be in \[0, 2\]"),
        (dict(train=(X, y - 1), test=good), r"train labels must be in"),
        (dict(train=(X, one_sample), test=good), "class 2 has 1 training sample"),
        (dict(train=good, test=good, solver="liblinear"), "unknown solver"),
        (dict(train=good, test=good, metric="f1"), "unknown metric"),
        (dict(train=good), "test=.* is required"),
        (dict(train=good, test=good, val_fraction=1.5), "val_fraction"),
        (dict(train=good, test=good, num_classes=5), "no training samples"),
        (dict(train=X, test=good), "must be a pair"),
    ]


@pytest.mark.parametrize(("kwargs", "message"), bad_inputs())
def test_bad_input_is_one_line_clipbench_error(kwargs, message):
    with pytest.raises(ClipbenchError, match=message) as info:
        clipbench.linear_probe(**kwargs)
    assert "\n" not in str(info.value)
