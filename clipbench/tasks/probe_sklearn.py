"""scikit-learn's solvers for the probe: the CLIP paper's literal one and one driven to the optimum.

``SklearnSolver`` (``sklearn``): the CLIP paper's literal setting,
``LogisticRegression(C=C, solver="lbfgs", max_iter=1000)`` on the features as given, from
scratch for every C. It can stop at the iteration cap; ``converged`` is then False
(``n_iter_ >= max_iter`` or a ConvergenceWarning), and the float64 decrement of its answer is
reported alongside, so the record shows how far from the optimum it stopped.
``ExactSklearnSolver`` (``sklearn_exact``, also ``--solver sklearn_exact``): scikit-learn driven
to the optimum (``newton-cholesky`` for small problems, else lbfgs; centred float64 features,
``tol=1e-12``), judged by the same decrement: the converged scikit-learn protocol for tests and
benchmarks.

Both fit on the CPU from scratch for every C and are judged by the float64 Newton decrement of
``probe_objective`` (``check_s`` in their convergence record: its seconds, not part of scikit-learn's cost).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import torch

from clipbench.tasks.probe_fit import DEFAULT_RTOL, EXACT_MAX_ITER, LinearFit, as_full
from clipbench.tasks.probe_objective import Objective

DEFAULT_TOL = 1e-4  # scikit-learn's own tol (the literal solver)
DEFAULT_MAX_ITER = 1000  # the paper's cap (the literal solver)
SKLEARN_HESSIAN_LIMIT = 4096  # parameters up to which sklearn_exact uses newton-cholesky


class SklearnSolver:
    """The paper's literal setting: scikit-learn's lbfgs, a fresh fit per C, on the features as given."""

    name = "sklearn"

    def __init__(self, X: np.ndarray, y: np.ndarray, num_classes: int, *,
                 max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, device: str = "cpu"):
        if str(device) != "cpu":
            raise ValueError("the sklearn solver runs on the CPU only")
        self.X = np.ascontiguousarray(X)
        self.y = np.asarray(y)
        self.num_classes = num_classes
        self.max_iter = max_iter
        self.tol = tol
        self._checker: Objective | None = None
        self.method = f"sklearn lbfgs, max_iter={max_iter}, tol={tol:g}, features as given"

    def _sklearn_fit(self, X: np.ndarray, C: float, solver: str = "lbfgs") -> tuple[Any, bool, int]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=C, solver=solver, max_iter=self.max_iter, tol=self.tol)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(X, self.y)
        n_iter = int(np.max(model.n_iter_))
        warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        return model, not warned and n_iter < self.max_iter, n_iter

    def checker(self) -> Objective:
        if self._checker is None:
            self._checker = Objective(self.X, self.y, self.num_classes)
        return self._checker

    def _check(self, weight: np.ndarray, bias: np.ndarray, C: float, n_iter: int, converged: bool,
               criterion: str, tol: float) -> dict[str, Any]:
        """The convergence record of a scikit-learn answer, with the float64 optimality check."""
        start = time.perf_counter()
        obj = self.checker()
        w = torch.as_tensor(np.asarray(weight, dtype=np.float64))
        b = torch.as_tensor(np.asarray(bias, dtype=np.float64).reshape(-1))
        loss, g_norm, decrement = obj.optimality(w, b + w @ obj.mean, C)
        return {"C": float(C), "iterations": int(n_iter), "objective": loss, "grad_norm": g_norm,
                "decrement": decrement, "tol": tol, "criterion": criterion, "converged": bool(converged),
                "max_iter": self.max_iter, "check_s": time.perf_counter() - start}

    def fit(self, C: float, init: LinearFit | None = None) -> LinearFit:
        start = time.perf_counter()
        model, converged, n_iter = self._sklearn_fit(self.X, C)
        seconds = time.perf_counter() - start
        convergence = self._check(model.coef_, model.intercept_, C, n_iter, converged, "sklearn", self.tol)
        weight, bias = as_full(model.coef_, model.intercept_, self.num_classes)
        return LinearFit(C=C, weight=weight, bias=bias, n_iter=n_iter, converged=converged, seconds=seconds,
                         convergence=convergence)


class ExactSklearnSolver(SklearnSolver):
    """scikit-learn driven to the optimum: centred float64 features, tight tol, large cap; newton-cholesky
    where the (d+1)k x (d+1)k Hessian is small, lbfgs otherwise. Judged by the Newton decrement."""

    name = "sklearn_exact"

    def __init__(self, X: np.ndarray, y: np.ndarray, num_classes: int, *,
                 max_iter: int = EXACT_MAX_ITER, tol: float = DEFAULT_RTOL, device: str = "cpu"):
        super().__init__(X, y, num_classes, max_iter=max_iter, tol=1e-12, device=device)
        self.rtol = tol
        self.mean = np.asarray(X, dtype=np.float64).mean(axis=0)
        self.X_centred = np.asarray(X, dtype=np.float64) - self.mean
        rows = 1 if num_classes == 2 else num_classes
        self.solver = "newton-cholesky" if rows * (X.shape[1] + 1) <= SKLEARN_HESSIAN_LIMIT else "lbfgs"
        self.method = f"sklearn {self.solver}, max_iter={max_iter}, tol=1e-12, float64, centred"

    def fit(self, C: float, init: LinearFit | None = None) -> LinearFit:
        start = time.perf_counter()
        model, _, n_iter = self._sklearn_fit(self.X_centred, C, solver=self.solver)
        seconds = time.perf_counter() - start
        bias = model.intercept_ - model.coef_ @ self.mean  # centred -> original coordinates
        convergence = self._check(model.coef_, bias, C, n_iter, False, self.solver, self.rtol)
        convergence["converged"] = bool(n_iter < self.max_iter and convergence["decrement"] <= 100 * self.rtol)
        w64, b64 = as_full(model.coef_, bias, self.num_classes, dtype=np.float64)
        return LinearFit(C=C, weight=w64.astype(np.float32), bias=b64.astype(np.float32), n_iter=n_iter,
                         converged=convergence["converged"], seconds=seconds, convergence=convergence,
                         weight64=w64, bias64=b64)
