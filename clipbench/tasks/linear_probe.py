"""Linear probe under the CLIP paper's protocol: C sweep on validation, refit on train+val, score test.

Objective (every solver, see ``probe_objective``): scikit-learn's multinomial logistic regression,
C * summed cross-entropy + 0.5 * ||W||^2, bias unpenalised. The default solver (``torch``) solves
each C's problem to its optimum (float64 Newton, stopped on a relative Newton decrement of 1e-9);
``sklearn`` is the paper's literal ``LogisticRegression(lbfgs, max_iter=1000)``, which can stop at
its cap, unconverged; ``sklearn_exact`` is scikit-learn driven to the optimum (the reference; also
``--solver sklearn_exact`` on the CLI).

The sweep, on lambda = 1/C, in log10(lambda) units:

1. Grid: log10(lambda) = 6, 4, 2, 0, -2, -4, -6, evaluated in that order (strongest regularisation
   first, so each fit warm-starts from a nearby, easier solution).
2. Binary search: with ``centre`` = the best grid point, for step = 1, 1/2, 1/4, 1/8 decade:
   evaluate ``centre + step`` then ``centre - step`` (skipping points outside [-6, 6]), and move
   ``centre`` to the best of the three. The search ends at a resolution of 8 steps per decade, so
   the chosen lambda is always on the 97-point grid 10^(k/8), k = -48..48.
3. "Best" = highest validation score (top-1, or mean per-class recall with
   ``metric="mean_per_class_recall"``); ties go to the larger lambda (stronger regularisation).
   Ties are common (a 200-sample validation split moves in 0.5-point steps). One fixed rule makes
   the choice a function of the validation scores alone, identical for every solver that produces
   the same scores; the larger lambda is the conservative choice among models that validate
   equally (the simpler, better-conditioned model), and it is the end of a flat optimum that is
   cheapest to fit. The whole validation curve is in ``sweep`` so a reader can see a flat optimum.
4. Refit on train+val with the chosen C (warm-started from the sweep's fit at that C) and score
   the test split.

Every sweep fit warm-starts (torch) from the solution at the nearest already-evaluated lambda;
the exact solver's stopping rule makes that path-independent. scikit-learn fits from scratch.

``LinearProbeResult.convergence`` (JSON-able, for the record) is
``{"sweep": [per-fit record, in evaluation order], "refit": per-fit record, "all_converged": bool,
"method": str}``; a per-fit record is ``{"C", "iterations", "objective", "grad_norm", "decrement",
"tol", "criterion", "converged", ...}`` (field meanings in ``probe_solvers``). An unconverged fit
is logged as a warning and flagged there (``converged: false``, ``all_converged: false``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from clipbench.datasets.splits import stratified_indices
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.progress import progress_bar
from clipbench.foundations.threads import torch_threads
from clipbench.scoring.classification import mean_per_class_recall, topk_accuracy
from clipbench.tasks.probe_fit import LinearFit
from clipbench.tasks.probe_precondition import PRECONDITIONERS
from clipbench.tasks.probe_rows import STORAGES
from clipbench.tasks.probe_solvers import SOLVERS, make_solver

log = logging.getLogger(__name__)

#: log10(lambda) of the initial grid, in evaluation order
GRID_LOG10_LAMBDA = (6.0, 4.0, 2.0, 0.0, -2.0, -4.0, -6.0)
#: half-widths (decades) of the binary-search rounds; the last one is the final resolution
SEARCH_STEPS = (1.0, 0.5, 0.25, 0.125)
LOG10_LAMBDA_RANGE = (-6.0, 6.0)
METRICS = ("top1", "mean_per_class_recall")


@dataclass
class LinearProbeResult:
    """Test-split metrics (percent) plus everything needed to reproduce the choice of C."""

    top1: float
    top5: float | None
    mean_per_class_recall: float
    C: float
    sweep: list[tuple[float, float]]  # (C, validation score in percent), in evaluation order
    solver: str
    metric: str
    num_classes: int
    n_train: int
    n_val: int
    n_test: int
    n_iter: dict[str, Any]  # {"sweep": [...per sweep point...], "refit": int}
    converged: dict[str, Any]  # same shape as n_iter
    convergence: dict[str, Any]  # {"sweep": [per-fit record], "refit": record, "all_converged", "method"}
    val_split: dict[str, Any] | None  # {"seed", "fraction"} when val was carved from train
    time_sweep_s: float
    time_refit_s: float
    predictions: np.ndarray | None = field(default=None, repr=False)
    probabilities: np.ndarray | None = field(default=None, repr=False)

    @property
    def metrics(self) -> dict[str, float]:
        out = {"top1": self.top1, "mean_per_class_recall": self.mean_per_class_recall}
        if self.top5 is not None:
            out["top5"] = self.top5
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no per-sample arrays)."""
        data = asdict(self)
        data.pop("predictions")
        data.pop("probabilities")
        data["sweep"] = [list(point) for point in self.sweep]
        return data


def score_metric(scores: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """Validation score (percent) that selects C."""
    if metric == "top1":
        return topk_accuracy(scores, labels, 1)
    return mean_per_class_recall(scores.argmax(1), labels, scores.shape[1])


# --- input validation ---------------------------------------------------------------------------

def _as_arrays(pair: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ClipbenchError(f"linear_probe: {name} must be a pair (features, labels)")
    X, y = pair
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ClipbenchError(f"linear_probe: {name} features must be a non-empty 2-D array, got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float32)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ClipbenchError(
            f"linear_probe: {name} labels must be 1-D with one label per row, got shape {y.shape} "
            f"for {X.shape[0]} feature rows")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating)
                                                   and np.all(np.mod(y, 1) == 0))):
        raise ClipbenchError(f"linear_probe: {name} labels must be integers, got dtype {y.dtype}")
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.isfinite(X).all(axis=1)))
        raise ClipbenchError(f"linear_probe: {name} features contain NaN or Inf in {bad} row(s)")
    return X.astype(np.float32, copy=False), y.astype(np.int64)


def _check_labels(y: np.ndarray, num_classes: int, name: str) -> None:
    if y.min() < 0 or y.max() >= num_classes:
        raise ClipbenchError(
            f"linear_probe: {name} labels must be in [0, {num_classes - 1}], found {int(y.min())}..{int(y.max())}")


def stratified_val_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class-stratified seeded split of indices into (train, val): round(fraction * n_c) per class,
    at least one sample on each side."""
    if not 0.0 < fraction < 1.0:
        raise ClipbenchError(f"linear_probe: val_fraction must be in (0, 1), got {fraction}")
    for c, n in zip(*np.unique(y, return_counts=True), strict=True):
        if n < 2:
            raise ClipbenchError(
                f"linear_probe: class {int(c)} has {n} training sample(s); "
                "at least 2 are needed to carve a validation split (pass val= explicitly)")
    return stratified_indices(y, fraction=fraction, seed=seed)


# --- the sweep driver ---------------------------------------------------------------------------

def _c_of(log10_lambda: float) -> float:
    return float(10.0 ** (-log10_lambda))


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(score, log10_lambda) a beats b: higher score, ties to the larger lambda."""
    return (a[0], a[1]) > (b[0], b[1])


@dataclass
class _SweepState:
    scores: dict[float, float] = field(default_factory=dict)  # log10 lambda -> val score
    fits: dict[float, LinearFit] = field(default_factory=dict)
    order: list[float] = field(default_factory=list)


def sweep_lambdas(evaluate) -> tuple[float, _SweepState]:
    """Run the documented grid + binary search; ``evaluate(log10_lambda, init)`` -> (score, fit)."""
    state = _SweepState()
    low, high = LOG10_LAMBDA_RANGE

    def visit(point: float) -> None:
        if point in state.scores or not low <= point <= high:
            return
        nearest = min(state.fits, key=lambda p: (abs(p - point), -p), default=None)
        score, fit = evaluate(point, state.fits[nearest] if nearest is not None else None)
        state.scores[point] = score
        state.fits[point] = fit
        state.order.append(point)

    for point in GRID_LOG10_LAMBDA:
        visit(point)
    centre = max(GRID_LOG10_LAMBDA, key=lambda p: (state.scores[p], p))
    for step in SEARCH_STEPS:
        candidates = [centre]
        for point in (centre + step, centre - step):
            visit(point)
            if point in state.scores:
                candidates.append(point)
        centre = max(candidates, key=lambda p: (state.scores[p], p))
    return centre, state


def linear_probe(
    train: Any,
    val: Any = None,
    test: Any = None,
    *,
    solver: str = "torch",
    seed: int = 0,
    val_fraction: float = 0.2,
    max_iter: int | None = None,
    tol: float | None = None,
    device: str = "cpu",
    num_classes: int | None = None,
    metric: str = "top1",
    num_threads: int | None = None,
    return_probabilities: bool = False,
    progress: bool = False,
    block_rows: int | None = None,
    storage: str | None = None,
    preconditioner: str | None = None,
) -> LinearProbeResult:
    """Fit the CLIP-paper linear probe on (features, labels) pairs and score ``test``.

    ``val=None`` carves a class-stratified split of ``val_fraction`` from ``train`` with ``seed``.
    ``num_threads`` sets torch's intra-op threads for the duration of the call. ``block_rows`` and
    ``storage`` ("device" or "host") override how the torch solver holds its rows (default: chosen from
    the problem's size and the device's free memory, see ``probe_rows``); ``preconditioner`` ("kronecker",
    the default, or "jacobi") sets its conjugate-gradient preconditioner (``probe_precondition``). Neither
    moves the optimum, only the path to it.
    """
    if solver not in SOLVERS:
        raise ClipbenchError(f"linear_probe: unknown solver {solver!r}; expected one of {sorted(SOLVERS)}")
    if metric not in METRICS:
        raise ClipbenchError(f"linear_probe: unknown metric {metric!r}; expected one of {list(METRICS)}")
    if test is None:
        raise ClipbenchError("linear_probe: test=(features, labels) is required")
    if max_iter is not None and max_iter < 1:
        raise ClipbenchError(f"linear_probe: max_iter must be >= 1, got {max_iter}")
    if SOLVERS[solver].cpu_only and str(device) != "cpu":
        raise ClipbenchError(f"linear_probe: the {solver} solver runs on the CPU only, got device={device!r}")
    if solver != "torch" and (block_rows is not None or storage is not None or preconditioner is not None):
        raise ClipbenchError(
            f"linear_probe: block_rows, storage and preconditioner apply to the torch solver, not {solver}")
    if block_rows is not None and block_rows < 1:
        raise ClipbenchError(f"linear_probe: block_rows must be >= 1, got {block_rows}")
    if storage not in (None, *STORAGES):
        raise ClipbenchError(f"linear_probe: storage must be one of {', '.join(STORAGES)}, got {storage!r}")
    if preconditioner not in (None, *PRECONDITIONERS):
        raise ClipbenchError(f"linear_probe: preconditioner must be one of {', '.join(PRECONDITIONERS)}, "
                             f"got {preconditioner!r}")
    X_train, y_train = _as_arrays(train, "train")
    X_test, y_test = _as_arrays(test, "test")
    val_split = None
    if val is None:
        train_idx, val_idx = stratified_val_split(y_train, val_fraction, seed)
        X_train, y_train, X_val, y_val = X_train[train_idx], y_train[train_idx], X_train[val_idx], y_train[val_idx]
        val_split = {"seed": seed, "fraction": val_fraction}
    else:
        X_val, y_val = _as_arrays(val, "val")
    dim = X_train.shape[1]
    for name, X in (("val", X_val), ("test", X_test)):
        if X.shape[1] != dim:
            raise ClipbenchError(f"linear_probe: {name} features have {X.shape[1]} dimensions, train has {dim}")
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_val.max(), y_test.max())) + 1
    if num_classes < 2:
        raise ClipbenchError(f"linear_probe: need at least 2 classes, got {num_classes}")
    for name, y in (("train", y_train), ("val", y_val), ("test", y_test)):
        _check_labels(y, num_classes, name)
    missing = np.setdiff1d(np.arange(num_classes), y_train)
    if missing.size:
        raise ClipbenchError(
            f"linear_probe: {missing.size} class(es) have no training samples (first: {int(missing[0])})")

    options: dict[str, Any] = {"device": device}
    if max_iter is not None:
        options["max_iter"] = max_iter
    if tol is not None:
        options["tol"] = tol
    if solver == "torch":
        options.update(block_rows=block_rows, storage=storage)
        if preconditioner is not None:
            options["preconditioner"] = preconditioner
    with torch_threads(num_threads):
        start = time.perf_counter()
        fitter = make_solver(solver, X_train, y_train, num_classes, **options)
        method = fitter.method
        bar = progress_bar(total=len(GRID_LOG10_LAMBDA) + 2 * len(SEARCH_STEPS), desc=f"C sweep ({solver})",
                   disable=not progress, leave=False)

        def evaluate(log10_lambda: float, init: LinearFit | None) -> tuple[float, LinearFit]:
            fit = fitter.fit(_c_of(log10_lambda), init=init)
            score = score_metric(fit.scores(X_val), y_val, metric)
            log.debug("lambda=1e%+.3f C=%.4g val %s=%.3f iters=%d (%.2fs)", log10_lambda, fit.C, metric,
                      score, fit.n_iter, fit.seconds)
            bar.update(1)
            return score, fit

        best, state = sweep_lambdas(evaluate)
        bar.close()
        fitter = None  # free its copy of the features before the refit
        time_sweep = time.perf_counter() - start

        start = time.perf_counter()
        X_full = np.concatenate([X_train, X_val])
        y_full = np.concatenate([y_train, y_val])
        final = make_solver(solver, X_full, y_full, num_classes, **options).fit(
            _c_of(best), init=state.fits[best])
        test_scores = final.scores(X_test)
        time_refit = time.perf_counter() - start

    convergence = {
        "sweep": [state.fits[p].convergence for p in state.order],
        "refit": final.convergence,
        "all_converged": bool(all(state.fits[p].converged for p in state.order) and final.converged),
        "method": method,
    }
    if not convergence["all_converged"]:
        bad = [f"{fit['C']:.3g}" for fit in convergence["sweep"] if not fit["converged"]]
        log.warning("linear probe (%s): %d of %d sweep fits%s did not converge (C = %s); the record flags them",
                    solver, len(bad), len(state.order), "" if final.converged else " and the refit",
                    ", ".join(bad) or "-")
    predictions = test_scores.argmax(1)
    probabilities = None
    if return_probabilities:
        shifted = test_scores - test_scores.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    return LinearProbeResult(
        top1=topk_accuracy(test_scores, y_test, 1),
        top5=topk_accuracy(test_scores, y_test, 5) if num_classes >= 5 else None,
        mean_per_class_recall=mean_per_class_recall(predictions, y_test, num_classes),
        C=_c_of(best),
        sweep=[(_c_of(p), state.scores[p]) for p in state.order],
        solver=solver,
        metric=metric,
        num_classes=num_classes,
        n_train=len(y_train),
        n_val=len(y_val),
        n_test=len(y_test),
        n_iter={"sweep": [state.fits[p].n_iter for p in state.order], "refit": final.n_iter},
        converged={"sweep": [state.fits[p].converged for p in state.order], "refit": final.converged},
        convergence=convergence,
        val_split=val_split,
        time_sweep_s=time_sweep,
        time_refit_s=time_refit,
        predictions=predictions,
        probabilities=probabilities,
    )
