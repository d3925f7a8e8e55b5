"""The linear probe's numbers are the protocol's, not the optimiser's: every sweep fit of the default
solver reaches its C's optimum (checked against an independent float64 Newton solve written here),
and the chosen C and test top-1 equal those of the same sweep run on the reference fits.

Problems: clipbench-tiny's digits features on five validation-split seeds (the features the ci suite
probes), isotropic synthetic features, and synthetic features with a large shared offset (as real
CLIP features have). ``--solver sklearn`` is checked to be scikit-learn's literal lbfgs, point for
point, with its own convergence verdict."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from _probe_fixtures import many_parameters
from sklearn.linear_model import LogisticRegression

import clipbench
from clipbench.datasets import get_dataset
from clipbench.datasets.splits import stratified_indices
from clipbench.foundations.errors import ClipbenchError
from clipbench.models import load_model
from clipbench.tasks import linear_probe as lp
from clipbench.tasks.fewshot import fewshot_linear_probe
from clipbench.tasks.probe_newton import TorchSolver
from clipbench.tasks.probe_objective import HESSIAN_LIMIT

REL_OBJECTIVE = 1e-6


# --- the independent reference: float64 Newton with the full Hessian, in numpy ------------------------

def objective(X, y, weight, bias, C):
    """scikit-learn's scaled objective, mean CE + ||W||^2 / (2 C n), in float64."""
    X = np.asarray(X, dtype=np.float64)
    logits = X @ np.asarray(weight, dtype=np.float64).T + np.asarray(bias, dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    log_prob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_prob[np.arange(len(y)), y].mean() + np.sum(np.asarray(weight, np.float64) ** 2) / (2 * C * len(y))


def newton_reference(X, y, k, C, theta=None, tol=1e-14, max_iter=100):
    """Minimise the objective over theta = [W | b] (k x (d+1)) by damped Newton on uncentred features,
    until the Newton decrement is below ``tol`` relative; returns theta."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    aug = np.hstack([X, np.ones((n, 1))])
    onehot = np.eye(k)[y]
    reg = np.full(d + 1, 1.0 / (C * n))
    reg[-1] = 0.0
    theta = np.zeros((k, d + 1)) if theta is None else theta.copy()

    def value(th):
        return objective(X, y, th[:, :-1], th[:, -1], C)

    for _ in range(max_iter):
        z = aug @ theta.T
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot).T @ aug / n + reg * theta
        outer = (p[:, :, None] * aug[:, None, :]).reshape(n, -1)
        hess = -(outer.T @ outer) / n
        for c in range(k):
            block = slice(c * (d + 1), (c + 1) * (d + 1))
            hess[block, block] += (aug * p[:, c:c + 1]).T @ aug / n
        hess += np.diag(np.tile(reg, k)) + 1e-13 * np.eye(k * (d + 1))
        step = -np.linalg.solve(hess, grad.reshape(-1)).reshape(k, d + 1)
        decrement = -np.sum(grad * step)
        f0 = value(theta)
        if decrement / 2 <= tol * f0:
            break
        t = 1.0
        while value(theta + t * step) > f0 - 1e-4 * t * decrement and t > 1e-12:
            t /= 2
        theta = theta + t * step
    return theta


def top1(X, y, weight, bias):
    return 100.0 * float(np.mean((np.asarray(X, np.float64) @ weight.T + bias).argmax(1) == y))


def nearest_start(solutions, point):
    nearest = min(solutions, key=lambda p: (abs(p - point), -p), default=None)
    return None if nearest is None else solutions[nearest]


def reference_sweep(X_tr, y_tr, X_val, y_val, X_te, y_te, k):
    """The documented sweep on reference fits: (chosen C, test top-1, {log10 lambda: theta})."""
    solutions = {}

    def evaluate(point, init):
        solutions[point] = newton_reference(X_tr, y_tr, k, 10.0 ** -point, nearest_start(solutions, point))
        theta = solutions[point]
        return top1(X_val, y_val, theta[:, :-1], theta[:, -1]), None

    best, _ = lp.sweep_lambdas(evaluate)
    X_full, y_full = np.concatenate([X_tr, X_val]), np.concatenate([y_tr, y_val])
    theta = newton_reference(X_full, y_full, k, 10.0 ** -best, solutions[best])
    return 10.0 ** -best, top1(X_te, y_te, theta[:, :-1], theta[:, -1]), solutions


def reference_objective(X, y, k, C, solutions):
    """The reference optimum's objective at C (solved here if the reference sweep did not visit C)."""
    point = round(-np.log10(C) * 8) / 8
    if point not in solutions:
        solutions[point] = newton_reference(X, y, k, C, nearest_start(solutions, point))
    theta = solutions[point]
    return objective(X, y, theta[:, :-1], theta[:, -1], C)


def assert_probe_matches_reference(train, val, test, k):
    """The default probe's every sweep fit is at its C's optimum; its choice and top-1 are the reference's."""
    C_ref, top1_ref, solutions = reference_sweep(*train, *val, *test, k)
    result = clipbench.linear_probe(train=train, val=val, test=test, num_classes=k)
    assert result.convergence["all_converged"]
    for fit in result.convergence["sweep"]:
        ref = reference_objective(*train, k, fit["C"], solutions)
        assert abs(fit["objective"] - ref) <= REL_OBJECTIVE * ref, (fit["C"], fit["objective"], ref)
        assert fit["decrement"] <= fit["tol"]
    assert result.C == pytest.approx(C_ref) and result.top1 == pytest.approx(top1_ref)
    return result, solutions


def replay_sweep_with_independent_objectives(train, val, k, solutions):
    """The sweep driven by TorchSolver directly, each fit's weights scored by this file's objective."""
    fitter = TorchSolver(*train, k)

    def evaluate(point, init):
        fit = fitter.fit(10.0 ** -point, init=init)
        ref = reference_objective(*train, k, fit.C, solutions)
        got = objective(*train, fit.weight64, fit.bias64, fit.C)
        assert abs(got - ref) <= REL_OBJECTIVE * ref, (fit.C, got, ref)
        assert got >= ref * (1 - 1e-12)  # the reference is the optimum
        return top1(*val, fit.weight64, fit.bias64), fit

    return lp.sweep_lambdas(evaluate)[0]


# --- problems ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_features():
    """clipbench-tiny's projected image features of the bundled digits (what the ci suite probes)."""
    model = load_model("clipbench-tiny")
    adapter = get_dataset("digits")
    out = {}
    for split in ("train", "test"):
        data = adapter.load_split(split)
        dataset = data.torch_dataset(model.preprocess)
        images = torch.stack([dataset[i][0] for i in range(len(dataset))])
        with torch.no_grad():
            out[split] = (model.encode_image(images).numpy(), np.asarray(data.labels))
    return out


def digits_split(features, seed):
    X, y = features["train"]
    kept, carved = stratified_indices(y, fraction=0.2, seed=seed)
    return (X[kept], y[kept]), (X[carved], y[carved]), features["test"]


def synthetic(offset: float, seed: int = 0, n: int = 900, dim: int = 24, classes: int = 5):
    """Gaussian classes; ``offset`` adds a large shared vector to every feature (CLIP-like)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim)) * 0.5
    y = rng.integers(0, classes, n)
    X = means[y] + rng.standard_normal((n, dim)) + offset * rng.standard_normal(dim)
    X, y = X.astype(np.float32), y.astype(np.int64)
    return (X[:480], y[:480]), (X[480:600], y[480:600]), (X[600:], y[600:])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_digits_every_sweep_fit_is_optimal_and_the_choice_is_the_reference_choice(digits_features, seed):
    assert_probe_matches_reference(*digits_split(digits_features, seed), k=10)


@pytest.mark.parametrize("offset", [0.0, 30.0], ids=["isotropic", "shared-offset"])
def test_synthetic_every_sweep_fit_is_optimal_and_the_choice_is_the_reference_choice(offset):
    train, val, test = synthetic(offset)
    result, solutions = assert_probe_matches_reference(train, val, test, k=5)
    assert 10.0 ** -replay_sweep_with_independent_objectives(train, val, 5, solutions) == pytest.approx(result.C)


@pytest.mark.slow
def test_no_warm_started_fit_at_split_seed_1_stops_before_moving(digits_features):
    """Before the fix, 8 of the 15 sweep fits at split seed 1 returned their warm start after 0
    iterations and reported themselves converged: the same model scored under different C."""
    train, val, test = digits_split(digits_features, 1)
    result = clipbench.linear_probe(train=train, val=val, test=test, num_classes=10)
    assert len(result.n_iter["sweep"]) == 15 and min(result.n_iter["sweep"]) >= 1, result.n_iter["sweep"]
    sweep = result.convergence["sweep"]
    assert [fit["iterations"] for fit in sweep] == result.n_iter["sweep"]
    assert all(fit["converged"] and fit["decrement"] <= fit["tol"] <= 1e-9 for fit in sweep)
    assert [fit["C"] for fit in sweep] == pytest.approx([c for c, _ in result.sweep])
    objectives = [fit["objective"] for fit in sweep]
    assert len(set(np.round(objectives, 12))) == 15  # 15 distinct problems, 15 distinct optima
    json.dumps(result.to_dict())


@pytest.mark.peer
def test_sklearn_solver_is_the_literal_protocol_point_for_point_and_reports_its_own_convergence():
    train, val, test = synthetic(30.0, seed=1)
    result = clipbench.linear_probe(train=train, val=val, test=test, solver="sklearn", num_classes=5)
    for (C, score), fit in zip(result.sweep, result.convergence["sweep"], strict=True):
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=1000).fit(train[0], train[1])
        assert score == pytest.approx(100.0 * np.mean(model.predict(val[0]) == val[1]))
        assert fit["iterations"] == int(model.n_iter_.max())
        assert fit["converged"] == (model.n_iter_.max() < 1000)
        assert fit["criterion"] == "sklearn" and fit["max_iter"] == 1000
    assert "lbfgs" in result.convergence["method"]


def test_unconverged_fits_are_flagged_not_silently_scored(caplog):
    train, val, test = synthetic(30.0)
    with caplog.at_level(logging.WARNING, logger="clipbench.tasks.linear_probe"):
        result = clipbench.linear_probe(train=train, val=val, test=test, solver="sklearn", max_iter=3)
    assert not result.convergence["all_converged"]
    assert not any(fit["converged"] for fit in result.convergence["sweep"])
    assert result.converged["refit"] is False and result.convergence["refit"]["iterations"] == 3
    assert "did not converge" in caplog.text
    with caplog.at_level(logging.WARNING, logger="clipbench.tasks.linear_probe"):
        capped = clipbench.linear_probe(train=train, val=val, test=test, max_iter=1)
    assert not capped.convergence["all_converged"]


def test_fewshot_runs_carry_their_convergence_per_seed():
    train, _, test = synthetic(30.0)
    result = fewshot_linear_probe(train, test, k=8, seeds=(0, 1))
    record = result.to_dict()
    assert [run["convergence"]["all_converged"] for run in record["runs"]] == [True, True]
    assert result.convergence == [{"seed": s, **run.convergence} for s, run in zip((0, 1), result.runs,
                                                                                     strict=True)]
    json.dumps(record)


# --- the conjugate-gradient path (problems above HESSIAN_LIMIT parameters) ----------------------------

def test_cg_path_reaches_the_full_hessian_optimum_and_its_record_is_honest():
    X, y = many_parameters()
    cg = TorchSolver(X, y, 21)
    full = TorchSolver(X, y, 21, hessian_limit=10**6)  # the same objective, forced onto Cholesky steps
    assert 21 * 101 > HESSIAN_LIMIT and not cg.objective.direct and full.objective.direct
    for C in (1.0, 1e3):
        fit = cg.fit(C)
        record = fit.convergence
        assert record["converged"] and record["decrement"] <= record["tol"] == 1e-9
        assert record["hessians"] == 0 and record["cg_iterations"] > record["iterations"] > 0
        assert record["matmuls"] + record["matmuls32"] >= 2 * record["cg_iterations"]
        # the full-Hessian decrement at the CG answer (independent of CG): far below the tolerance
        weight, bias = full.objective.to_centred(fit)
        loss, _, decrement = full.objective.optimality(weight, bias, C)
        assert loss == pytest.approx(record["objective"], rel=1e-12)
        assert 0 <= decrement <= 1e-9
        # a full-Hessian Newton step from there gains at most the tolerance: the decrement estimates (F - F*) / F
        polished = full.fit(C, init=fit)
        assert polished.convergence["hessians"] >= 1 and polished.n_iter <= 2
        best = polished.convergence["objective"]
        gap = record["objective"] - best
        assert -1e-15 * best <= gap <= 1e-9 * best
        # F is 1/(C n)-strongly convex in W (b minimised out), so ||W - W*||^2 <= 2 (F - F*) C n
        n = len(y)
        assert np.sum((fit.weight64 - polished.weight64) ** 2) <= 2 * max(gap, 1e-16 * best) * C * n * 1.01


@pytest.mark.peer
def test_cg_path_matches_a_converged_sklearn_fit():
    X, y = many_parameters(seed=1)
    mean = X.astype(np.float64).mean(axis=0)
    for C in (0.1, 10.0):
        fit = TorchSolver(X, y, 21).fit(C)
        ref = LogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=20_000).fit(X.astype(np.float64) - mean, y)
        ref_bias = ref.intercept_ - ref.coef_ @ mean
        ours, theirs = objective(X, y, fit.weight64, fit.bias64, C), objective(X, y, ref.coef_, ref_bias, C)
        assert ours == pytest.approx(theirs, rel=1e-9)  # both within the 1e-9 tolerance of the optimum
        assert np.abs(fit.weight64 - ref.coef_).max() <= 1e-4 * np.abs(ref.coef_).max()
        assert top1(X, y, fit.weight64, fit.bias64) == top1(X, y, ref.coef_, ref_bias)


def test_forced_cg_sweep_equals_the_full_hessian_sweep():
    """The same small problem through both paths (``hessian_limit=0`` forces CG): same fits, same choice."""
    train, val, _ = synthetic(30.0)

    def sweep(solver):
        fits = {}

        def evaluate(point, init):
            fits[point] = solver.fit(10.0 ** -point, init=init)
            return top1(*val, fits[point].weight64, fits[point].bias64), fits[point]

        return lp.sweep_lambdas(evaluate)[0], fits

    best_full, full = sweep(TorchSolver(*train, 5))
    best_cg, cg = sweep(TorchSolver(*train, 5, hessian_limit=0))
    assert best_cg == best_full and list(cg) == list(full)
    for point, fit in cg.items():
        assert fit.convergence["hessians"] == 0 < fit.convergence["cg_iterations"]
        assert full[point].convergence["hessians"] > 0 and fit.converged
        assert fit.convergence["objective"] == pytest.approx(full[point].convergence["objective"], rel=1e-10)


def test_float32_cg_iterations_reach_the_float64_optimum():
    """CG iterations in float32 (the default) are checked by a float64 residual: same optimum, same verdict."""
    X, y = many_parameters(seed=2)
    mixed_solver, plain_solver = TorchSolver(X, y, 21), TorchSolver(X, y, 21, float32_cg=False)
    assert "float32 iterations" in mixed_solver.method and "float32" not in plain_solver.method
    for C in (1.0, 1e4):
        mixed, plain = mixed_solver.fit(C).convergence, plain_solver.fit(C).convergence
        assert mixed["converged"] and plain["converged"] and mixed["decrement"] <= 1e-9
        assert mixed["matmuls32"] > 0 and plain["matmuls32"] == 0
        assert mixed["objective"] == pytest.approx(plain["objective"], rel=2e-9)


def anisotropic(n: int = 240, dim: int = 100, classes: int = 12, seed: int = 3):
    """Features on a rank-8 subspace plus weak noise, like image features' spectrum: the CG path (12 x 101
    parameters), and the case a diagonal preconditioner cannot fix (the large directions are rotated)."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, 8)))
    y = np.arange(n) % classes
    rng.shuffle(y)
    latent = rng.standard_normal((classes, 8))[y] + rng.standard_normal((n, 8))
    X = 3.0 * latent @ basis.T + 0.05 * rng.standard_normal((n, dim))
    return X.astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("classes", [2, 12])
def test_kronecker_and_jacobi_preconditioners_reach_the_full_hessian_optimum(classes):
    """The preconditioner moves the path, not the answer: both stop on the same decrement, at the optimum
    the Cholesky path reaches, and on anisotropic features the Kronecker-factored one needs fewer CG steps."""
    X, y = anisotropic(classes=classes)
    full = TorchSolver(X, y, classes, hessian_limit=10**6)
    solvers = {kind: TorchSolver(X, y, classes, hessian_limit=0, preconditioner=kind)
               for kind in ("kronecker", "jacobi")}
    assert full.objective.direct and "kronecker preconditioner" in solvers["kronecker"].method
    assert TorchSolver(X, y, classes, hessian_limit=0).objective.preconditioner_kind == "kronecker"
    cg_steps = {kind: 0 for kind in solvers}
    for C in (1.0, 1e3):
        best = full.fit(C).convergence["objective"]
        for kind, solver in solvers.items():
            fit = solver.fit(C)
            record = fit.convergence
            assert record["converged"] and record["decrement"] <= 1e-9 and record["hessians"] == 0
            assert record["objective"] == pytest.approx(best, rel=2e-9)
            cg_steps[kind] += record["cg_iterations"]
    assert cg_steps["kronecker"] < cg_steps["jacobi"]


def test_an_unknown_preconditioner_is_one_clear_error():
    X, y = anisotropic()
    with pytest.raises(ValueError, match="unknown preconditioner 'cholesky'"):
        TorchSolver(X, y, 12, preconditioner="cholesky")
    with pytest.raises(ClipbenchError, match="preconditioner must be one of kronecker, jacobi"):
        clipbench.linear_probe(train=(X, y), test=(X, y), preconditioner="cholesky")
    with pytest.raises(ClipbenchError, match="apply to the torch solver"):
        clipbench.linear_probe(train=(X, y), test=(X, y), solver="sklearn", preconditioner="jacobi")
