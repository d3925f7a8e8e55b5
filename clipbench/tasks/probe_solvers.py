"""Solvers for the linear probe: one objective, two implementations.

Both minimise scikit-learn's multinomial logistic-regression objective

    C * sum_i CE(x_i W^T + b, y_i) + 0.5 * ||W||^2        (the bias b is not penalised)

in scikit-learn's own scaling (divided by C * n): mean cross-entropy + ||W||^2 / (2 C n), stopping
when the largest absolute gradient entry of that scaled objective is below ``tol`` (scipy's
``gtol``) or after ``max_iter`` L-BFGS iterations. With two classes scikit-learn fits a binary
logistic regression (one weight vector); the torch solver does the same so that C means the same.

* ``SklearnSolver``: the reference, ``LogisticRegression(C=C, solver="lbfgs", max_iter=...)``,
  fitted from scratch for every C, like the CLIP paper's protocol did.
* ``TorchSolver``: float32 on CPU or GPU, full-batch, analytic gradient, ``torch.optim.LBFGS`` with
  a strong-Wolfe line search, warm-started from the caller's nearest previous solution. It fits
  on mean-centred features, an exact reparametrisation (the unpenalised bias absorbs the mean),
  which only improves the conditioning; solutions are reported in the original coordinates.

A solver is built once per training set (``prepare``) and then fitted for many values of C.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_TOL = 1e-4
DEFAULT_MAX_ITER = 1000


@dataclass
class LinearFit:
    """A fitted linear classifier in the original feature coordinates: scores = X @ weight.T + bias.

    ``weight`` is (num_classes, dim) float32 even for a binary fit (row 0 is then all zeros).
    """

    C: float
    weight: np.ndarray
    bias: np.ndarray
    n_iter: int
    converged: bool
    seconds: float

    def scores(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32) @ self.weight.T + self.bias


def _as_full(weight: np.ndarray, bias: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary fits have one row; expand to (num_classes, dim) with class 0's scores fixed at 0."""
    weight = np.asarray(weight, dtype=np.float32)
    bias = np.asarray(bias, dtype=np.float32).reshape(-1)
    if num_classes == 2 and weight.shape[0] == 1:
        weight = np.concatenate([np.zeros_like(weight), weight], axis=0)
        bias = np.concatenate([np.zeros(1, dtype=np.float32), bias])
    return weight, bias


class SklearnSolver:
    """scikit-learn's LogisticRegression, a fresh fit per C (the reference)."""

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

    def fit(self, C: float, init: LinearFit | None = None) -> LinearFit:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        start = time.perf_counter()
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=self.max_iter, tol=self.tol)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(self.X, self.y)
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        weight, bias = _as_full(model.coef_, model.intercept_, self.num_classes)
        return LinearFit(C=C, weight=weight, bias=bias, n_iter=int(np.max(model.n_iter_)),
                         converged=converged, seconds=time.perf_counter() - start)


class TorchSolver:
    """Full-batch float32 L-BFGS in torch on the same objective, warm-startable."""

    name = "torch"

    def __init__(self, X: np.ndarray, y: np.ndarray, num_classes: int, *,
                 max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL, device: str = "cpu",
                 history_size: int = 20):
        self.device = torch.device(device)
        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)
        self.mean = X_t.mean(dim=0)
        self.X = X_t - self.mean  # centred copy; the bias absorbs the shift exactly
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=self.device)
        self.n, self.dim = self.X.shape
        self.num_classes = num_classes
        self.rows = 1 if num_classes == 2 else num_classes  # binary: one vector, like sklearn
        self.max_iter = max_iter
        self.tol = tol
        self.history_size = history_size
        self._row_index = torch.arange(self.n, device=self.device)

    def _logits(self, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        raw = torch.addmm(bias, self.X, weight.T)
        if self.rows == 1:
            raw = torch.cat([torch.zeros_like(raw), raw], dim=1)
        return raw

    def objective(self, weight: torch.Tensor, bias: torch.Tensor, C: float,
                  with_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """sklearn-scaled objective and its analytic gradient (centred coordinates)."""
        logits = self._logits(weight, bias)
        lse = torch.logsumexp(logits, dim=1)
        picked = logits[self._row_index, self.y]
        reg = 1.0 / (C * self.n)
        # float64 reductions: float32 sums would quantise the loss (~5e-7 relative), which stalls
        # the line search on strongly regularised, nearly flat problems
        loss = (lse - picked).sum(dtype=torch.float64) / self.n \
            + 0.5 * reg * weight.pow(2).sum(dtype=torch.float64)
        if not with_grad:
            return loss, None, None
        resid = torch.exp(logits - lse[:, None])
        resid[self._row_index, self.y] -= 1.0
        if self.rows == 1:
            resid = resid[:, 1:]
        resid /= self.n
        grad_w = torch.addmm(weight, resid.T, self.X, beta=reg)
        grad_b = resid.sum(dim=0)
        return loss, grad_w, grad_b

    def _initial(self, init: LinearFit | None) -> tuple[torch.Tensor, torch.Tensor]:
        if init is None:
            # W = 0 with the bias at log class priors: the exact optimum as C -> 0 on centred
            # features, so strongly regularised fits start where they end
            weight = torch.zeros(self.rows, self.dim, device=self.device)
            counts = torch.bincount(self.y, minlength=self.num_classes).to(torch.float32)
            log_prior = torch.log(counts / self.n)
            bias = log_prior[1:] - log_prior[:1] if self.rows == 1 else log_prior - log_prior.mean()
            return weight, bias
        weight = torch.as_tensor(init.weight, device=self.device, dtype=torch.float32)
        bias = torch.as_tensor(init.bias, device=self.device, dtype=torch.float32)
        if self.rows == 1:  # keep class 1's scores relative to class 0's
            weight = weight[1:] - weight[:1]
            bias = bias[1:] - bias[:1]
        bias = bias + weight @ self.mean  # original -> centred coordinates
        return weight.clone(), bias.clone()

    def fit(self, C: float, init: LinearFit | None = None) -> LinearFit:
        start = time.perf_counter()
        weight, bias = self._initial(init)
        weight.requires_grad_(True)
        bias.requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=self.max_iter, max_eval=self.max_iter * 5,
            tolerance_grad=self.tol, tolerance_change=1e-12, history_size=self.history_size,
            line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            with torch.no_grad():
                loss, grad_w, grad_b = self.objective(weight, bias, C)
            weight.grad = grad_w
            bias.grad = grad_b
            return loss

        optimizer.step(closure)
        state = optimizer.state[optimizer._params[0]]
        n_iter = int(state.get("n_iter", 0))
        with torch.no_grad():
            _, grad_w, grad_b = self.objective(weight, bias, C)
            max_grad = max(grad_w.abs().max().item(), grad_b.abs().max().item())
            full_bias = bias - weight @ self.mean  # centred -> original coordinates
        w_np, b_np = _as_full(weight.detach().cpu().numpy(), full_bias.cpu().numpy(), self.num_classes)
        return LinearFit(C=C, weight=w_np, bias=b_np, n_iter=n_iter, converged=max_grad <= self.tol,
                         seconds=time.perf_counter() - start)


SOLVERS = {"torch": TorchSolver, "sklearn": SklearnSolver}


def make_solver(name: str, X: np.ndarray, y: np.ndarray, num_classes: int, **options):
    return SOLVERS[name](X, y, num_classes, **options)
