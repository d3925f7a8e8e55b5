"""Solvers for the linear probe: one objective, an exact solver, the paper's literal one, and a check.

Every solver minimises scikit-learn's multinomial logistic-regression objective

    C * sum_i CE(x_i W^T + b, y_i) + 0.5 * ||W||^2        (the bias b is not penalised)

which in scikit-learn's scaling (divided by C * n) is F(W, b) = mean CE + ||W||^2 / (2 C n).
With two classes scikit-learn fits a binary logistic regression (one weight vector); every solver
here does the same, so that C means the same.

The stopping rule, and why
--------------------------
An absolute gradient tolerance (scikit-learn's ``tol=1e-4`` on max |dF|) does not say how far a fit
is from its optimum: F is only 1/(C n)-strongly convex, so at large C a small gradient can sit far
from the minimum, and a warm start from the neighbouring C (whose gradient at the new C is
max|W| * |1/C_new - 1/C_old| / n) passes it after 0 iterations. The exact solver stops instead on
the *Newton decrement* of the problem being solved, relative to the objective:

    decrement = 0.5 * g^T H^-1 g / F        (g, H: gradient and Hessian of F at this C and point)

which is the second-order estimate of (F - F*) / F. It depends only on the point and on this C's
problem, never on the path: a warm start passes it only if it already is within ``rtol`` of this
C's optimum (moving C by the sweep's 1/8 decade changes the optimum by far more, so in practice no
warm-started fit stops before its first Newton step), and it accounts for the flatness at large C
that a gradient norm hides. When the decrement falls below ``rtol`` (``DEFAULT_RTOL`` = 1e-9) the
Newton step is still taken, so the returned point is closer still (Newton converges quadratically).
Objectives, gradients, line searches and the decrement run in float64: 1e-9 of F is below
float32's resolution (only the CG iterations inside a Newton step may run in float32, checked in
float64, see below). Warm starts stay (they save Newton steps) and stay exact. Two rules were tried
and dropped: L-BFGS (on clipbench-tiny's digits features it needed >3,000 evaluations at C = 1e4
for a 4e-4 relative objective error, where Newton needs 10-15 steps at every C), and the
strong-convexity certificate F - F* <= 0.5 C n ||dF/dW||^2, which is exact but 1e4-1e6 times
pessimistic at large C.

* ``TorchSolver`` (default, ``torch``): damped Newton in float64 torch (CPU or GPU) on mean-centred
  features (an exact reparametrisation: the unpenalised bias absorbs the mean). Newton steps come
  from the full Hessian (Cholesky) when it has at most ``hessian_limit`` (``HESSIAN_LIMIT``) rows,
  i.e. rows * (d + 1) <= 2048 (about where building it costs as much as the conjugate-gradient
  iterations it replaces), otherwise from conjugate gradients on Hessian-vector products (two
  n x d x k matrix products each), preconditioned by a Kronecker-factored approximation of each
  class's Hessian block (``probe_precondition``; ``preconditioner="jacobi"``, the diagonal, was the
  default before it and is kept for comparison). A fit that reaches ``max_iter``
  Newton steps is reported unconverged, never silently scored as converged.

  Speed without giving up the check (CG path; measured in benchmarks/README.md "probe"):

  - *Warm starts along the path.* Each fit starts from the caller's nearest previous solution, or
    from a point on the line through it and this solver's solution nearest to it, extrapolated
    linearly in log C (``START_GRID`` multiples of the ratio, the one of lowest objective at the
    new C; two matrix products, as the scores are linear in the parameters). Any start is exact:
    the stopping rule does not depend on it.
  - *Inexact Newton.* CG stops at a relative residual eta = min(0.25, sqrt(||g|| / ||g_0||)) (g_0:
    the fit's first gradient), loosened to 0.1 sqrt(rtol / predicted decrement) where that is
    larger: no step solves more accurately than the next decrement's distance to ``rtol`` needs.
  - *float32 CG iterations.* The products inside CG run in float32 (2.4x faster on this CPU); one
    float64 product then gives the true residual of the float32 direction, and float64 CG goes on
    from it wherever float32 fell short (and for the rest of that fit). Gradients, objectives,
    line searches and the decrement stay float64.
  - *A decrement that bounds its own CG error.* For an inexact d with float64 residual
    r = -g - H d, g^T H^-1 g = -g^T d + d^T r + r^T H^-1 r <= -g^T d + d^T r + ||r||^2 C n (every
    weight direction has curvature >= 1/(C n)). The decrement recorded and tested is that bound
    over 2F; where the test might pass, CG continues (float64, from d) until ||r||^2 C n is at most
    a quarter of the budget.
    So a loose step can never pass the test by under-estimating. (The bias directions are
    unpenalised; their curvature is the class-probability variance, in practice far above 1/(C n).)
  - *Line searches on the scores' line*: one product for X dW^T per Newton step, however many
    backtracking trials; the curvature comes from the gradient's softmax.

  ``hessian_limit`` forces either path (tests compare both on one problem); ``float32_cg=False``
  keeps every product in float64.
* ``SklearnSolver`` (``sklearn``): the CLIP paper's literal setting,
  ``LogisticRegression(C=C, solver="lbfgs", max_iter=1000)`` on the features as given, from
  scratch for every C. It can stop at the iteration cap; ``converged`` is then False
  (``n_iter_ >= max_iter`` or a ConvergenceWarning), and the float64 decrement of its answer is
  reported alongside, so the record shows how far from the optimum it stopped.
* ``ExactSklearnSolver`` (``sklearn_exact``, also ``--solver sklearn_exact``): scikit-learn driven
  to the optimum (``newton-cholesky`` for small problems, else lbfgs; centred float64 features,
  ``tol=1e-12``), judged by the same decrement: the converged scikit-learn protocol for tests and
  benchmarks.

Each fit's ``convergence`` is JSON-able: ``{"C", "iterations", "objective", "grad_norm",
"decrement", "tol", "criterion", "converged"}`` plus ``cg_iterations``, ``hessians``, ``matmuls``
(float64 n x d x k matrix products) and ``matmuls32`` (float32 ones, inside CG) for the torch
solver, and ``max_iter`` and ``check_s`` (the seconds of the float64 check, not part of
scikit-learn's own cost) for scikit-learn.
``iterations`` are Newton steps (torch) or L-BFGS iterations (scikit-learn); ``grad_norm`` is
||dF/d(W, b)||_2 at the returned point in float64; ``decrement`` is the relative Newton decrement
(torch: before the last step; scikit-learn: at its answer); ``tol`` is the tolerance of
``criterion``: ``"newton_decrement"`` (torch; ``converged`` = decrement <= tol, the decrement
including the CG error bound), ``"sklearn"`` (the literal solver; ``tol`` is scikit-learn's
gradient tol, ``converged`` its own verdict) or the scikit-learn solver's name (``sklearn_exact``;
converged = below the cap and decrement <= 100 tol).

The torch solver holds its rows (features and every n x k array) as blocks (``probe_rows``): sums
over rows accumulate block by block, and a problem whose state does not fit the device's free
memory streams its blocks from pinned host memory. One block (every problem of under ~11M n x k scores)
computes exactly what it did before blocks existed; more blocks reach the same optimum, only the
order of float summation differs. ``method`` names the blocks when there is more than one.

A solver is built once per training set and then fitted for many values of C.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from clipbench.tasks.probe_precondition import (
    DEFAULT_PRECONDITIONER,
    PRECONDITIONERS,
    Jacobi,
    Kronecker,
    feature_eigenbasis,
)
from clipbench.tasks.probe_rows import RowBlocks, plan_rows

DEFAULT_TOL = 1e-4  # scikit-learn's own tol (the literal solver)
DEFAULT_MAX_ITER = 1000  # the paper's cap (the literal solver)
DEFAULT_RTOL = 1e-9  # certified relative suboptimality of the exact solvers
EXACT_MAX_ITER = 1000  # the exact solvers' cap (Newton steps): a safety net, reported if hit
HESSIAN_LIMIT = 2048  # parameters up to which Newton uses the full Hessian (Cholesky) by default
SKLEARN_HESSIAN_LIMIT = 4096  # parameters up to which sklearn_exact uses newton-cholesky


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
    convergence: dict[str, Any] = field(default_factory=dict)
    weight64: np.ndarray | None = field(default=None, repr=False)  # exact solvers: full precision
    bias64: np.ndarray | None = field(default=None, repr=False)

    def scores(self, X: np.ndarray) -> np.ndarray:
        if self.weight64 is not None:
            return (np.asarray(X, dtype=np.float64) @ self.weight64.T + self.bias64).astype(np.float32)
        return np.asarray(X, dtype=np.float32) @ self.weight.T + self.bias


def _as_full(weight: np.ndarray, bias: np.ndarray, num_classes: int,
             dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Binary fits have one row; expand to (num_classes, dim) with class 0's scores fixed at 0."""
    weight = np.asarray(weight, dtype=dtype)
    bias = np.asarray(bias, dtype=dtype).reshape(-1)
    if num_classes == 2 and weight.shape[0] == 1:
        weight = np.concatenate([np.zeros_like(weight), weight], axis=0)
        bias = np.concatenate([np.zeros(1, dtype=dtype), bias])
    return weight, bias


class Objective:
    """F(W, b) = mean CE + ||W||^2 / (2 C n) on centred features, its gradient and certificate.

    The rows (features and every n x k array) are held as row blocks (``probe_rows``): sums over rows
    are accumulated block by block, so a problem larger than the device's memory streams through it."""

    def __init__(self, X: np.ndarray | torch.Tensor, y: np.ndarray, num_classes: int, *,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64,
                 hessian_limit: int = HESSIAN_LIMIT, block_rows: int | None = None, storage: str | None = None,
                 preconditioner: str = DEFAULT_PRECONDITIONER):
        if preconditioner not in PRECONDITIONERS:
            raise ValueError(f"unknown preconditioner {preconditioner!r}; expected one of {PRECONDITIONERS}")
        self.device = torch.device(device)
        self.preconditioner_kind = preconditioner
        self.dtype = dtype
        self.n, self.dim = X.shape
        self.num_classes = num_classes
        self.rows = 1 if num_classes == 2 else num_classes  # binary: one vector, like sklearn
        self.plan = plan_rows(self.n, self.dim, self.rows, self.device, block_rows=block_rows, storage=storage,
                              squares=preconditioner == "jacobi")
        self.ranges = [(lo, min(lo + self.plan.block_rows, self.n)) for lo in range(0, self.n, self.plan.block_rows)]
        self.blocks = self._centred_blocks(X)
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=self.device)
        self._row_index = torch.arange(self.plan.block_rows, device=self.device)
        #: small problems get Newton steps from the full Hessian, large ones from conjugate gradients
        self.direct = self.rows * (self.dim + 1) <= hessian_limit
        counts = torch.bincount(self.y, minlength=num_classes).to(dtype)
        self.priors = counts / self.n
        self._blocks32: list[torch.Tensor] | None = None  # float32 copies for low-precision CG iterations
        self._squares: list[torch.Tensor] | None = None  # squared features (float32), Jacobi preconditioner
        self._eigen: tuple[torch.Tensor, torch.Tensor] | None = None  # X^T X / n's eigendecomposition (Kronecker)

    def _centred_blocks(self, X: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Centred feature blocks on the storage device (the bias absorbs the shift exactly) and ``self.mean``."""
        if len(self.ranges) == 1 and not self.plan.streams:
            X_t = torch.as_tensor(np.asarray(X), device=self.device).to(self.dtype)
            self.mean = X_t.mean(dim=0)
            return [X_t - self.mean]
        X = np.asarray(X)
        blocks = []
        for lo, hi in self.ranges:  # each block is its own copy, centred in place: no second copy of X
            part = torch.as_tensor(X[lo:hi])
            block = self._empty(part.shape, self.dtype)
            block.copy_(part)
            blocks.append(block)
        mean = sum(block.sum(dim=0) for block in blocks) / self.n
        for block in blocks:
            block.sub_(mean)
        self.mean = mean.to(self.device)
        return blocks

    def _empty(self, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised tensor on the storage device (pinned when that is the host of a CUDA device)."""
        pinned = self.plan.streams and self.device.type == "cuda"
        return torch.empty(shape, dtype=dtype, device=self.plan.storage, pin_memory=pinned)

    def _stored(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on the storage device (a pinned host copy when the blocks stream)."""
        if not self.plan.streams:
            return tensor
        out = self._empty(tensor.shape, tensor.dtype)
        out.copy_(tensor)
        return out

    def _on_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True) if self.plan.streams else tensor

    def _features(self, low: bool = False) -> list[torch.Tensor]:
        if not low:
            return self.blocks
        if self._blocks32 is None:
            self._blocks32 = [self._stored(block.float()) for block in self.blocks]
        return self._blocks32

    def raw_scores(self, weight: torch.Tensor, bias: torch.Tensor) -> RowBlocks:
        """X W^T + b (one matrix product). The scores are linear in (W, b): those of every point on a line
        through parameter space are combinations of two of these (warm starts, line searches)."""
        return RowBlocks([self._stored(torch.addmm(bias, self._on_device(X), weight.T)) for X in self.blocks])

    def _logits(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(raw), raw], dim=1) if self.rows == 1 else raw

    def __call__(self, weight: torch.Tensor, bias: torch.Tensor, C: float,
                 with_grad: bool = True) -> tuple[float, torch.Tensor | None, torch.Tensor | None]:
        """(F, dF/dW, dF/db) at (weight, bias): two matrix products (one without the gradient)."""
        return self.evaluate(self.raw_scores(weight, bias), weight, C, with_grad)[:3]

    def evaluate(self, raw: RowBlocks, weight: torch.Tensor, C: float, with_grad: bool = True
                 ) -> tuple[float, torch.Tensor | None, torch.Tensor | None, RowBlocks | None]:
        """(F, dF/dW, dF/db, softmax probabilities as ``curvature`` gives them) from ``raw_scores``: one
        matrix product for the gradient, none without it."""
        reg = 1.0 / (C * self.n)
        total = None
        grad_w = grad_b = None
        probs_blocks = []
        for (lo, hi), X, block in zip(self.ranges, self.blocks, raw.blocks, strict=True):
            logits = self._logits(self._on_device(block))
            rows, y = self._row_index[: hi - lo], self.y[lo:hi]
            picked = logits[rows, y]
            # CE = softplus(logsumexp over the wrong classes of z_j - z_y): accurate even when CE ~ 1e-10,
            # where lse - z_y would cancel (well-separated fits at large C)
            others = logits - picked[:, None]
            others[rows, y] = -math.inf
            margin = torch.logsumexp(others, dim=1)
            part = torch.nn.functional.softplus(margin).sum(dtype=torch.float64)
            total = part if total is None else total + part
            if not with_grad:
                continue
            lse = picked + torch.nn.functional.softplus(margin)
            probs = torch.exp(logits - lse[:, None])
            resid = probs.clone()
            resid[rows, y] = 0.0
            resid[rows, y] = -resid.sum(dim=1)  # p_y - 1 = -(sum of the others), no cancellation
            if self.rows == 1:
                resid, probs = resid[:, 1:], probs[:, 1:]
            resid /= self.n
            X = self._on_device(X)
            if grad_w is None:
                grad_w, grad_b = torch.addmm(weight, resid.T, X, beta=reg), resid.sum(dim=0)
            else:
                grad_w.addmm_(resid.T, X)
                grad_b += resid.sum(dim=0)
            probs_blocks.append(self._stored(probs))
        loss = float(total / self.n + 0.5 * reg * weight.pow(2).sum(dtype=torch.float64))
        if not with_grad:
            return loss, None, None, None
        return loss, grad_w, grad_b, RowBlocks(probs_blocks)

    def loss_of_scores(self, raw: RowBlocks, weight: torch.Tensor, C: float) -> float:
        """F from precomputed ``raw_scores`` (no matrix product)."""
        return self.evaluate(raw, weight, C, with_grad=False)[0]

    def curvature(self, weight: torch.Tensor, bias: torch.Tensor) -> RowBlocks:
        """Softmax probabilities at (weight, bias): what the Hessian depends on."""
        out = []
        for block in self.raw_scores(weight, bias).blocks:
            probs = torch.softmax(self._logits(self._on_device(block)), dim=1)
            out.append(self._stored(probs[:, 1:] if self.rows == 1 else probs))
        return RowBlocks(out)

    def hessian_vector(self, probs: RowBlocks, vw: torch.Tensor, vb: torch.Tensor, C: float,
                       low: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """H v for the direction v = (vw, vb): two matrix products of n x d x rows per block (``low``: over
        the float32 features, with ``probs`` and v in float32)."""
        out_w = out_b = None
        for X, p in zip(self._features(low), probs.blocks, strict=True):
            X, p = self._on_device(X), self._on_device(p)
            z = torch.addmm(vb, X, vw.T)
            if self.rows == 1:
                u = p * (1.0 - p) * z
            else:
                u = p * (z - (p * z).sum(dim=1, keepdim=True))
            u /= self.n
            if out_w is None:
                out_w, out_b = torch.addmm(vw, u.T, X, beta=1.0 / (C * self.n)), u.sum(dim=0)
            else:
                out_w.addmm_(u.T, X)
                out_b += u.sum(dim=0)
        return out_w, out_b

    def preconditioner(self, probs: RowBlocks, C: float) -> Jacobi | Kronecker:
        """CG's preconditioner at the curvature ``probs`` (``probe_precondition``)."""
        if self.preconditioner_kind == "jacobi":
            return Jacobi(*self.diagonal(probs, C))
        if self._eigen is None:
            self._eigen = feature_eigenbasis(self.blocks, self.n, self._on_device)
        class_curvature = None
        for p in probs.blocks:
            p = self._on_device(p)
            part = (p * (1.0 - p)).sum(dim=0)
            class_curvature = part if class_curvature is None else class_curvature + part
        class_curvature = class_curvature.to(self.dtype) / self.n
        return Kronecker.build(*self._eigen, class_curvature, 1.0 / (C * self.n), class_curvature.clamp_min(1e-12))

    def diagonal(self, probs: RowBlocks, C: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The Hessian's diagonal (weights, biases) as a CG preconditioner (bias entries floored for the null
        direction)."""
        if self._squares is None:  # float32: a preconditioner needs no more, and it halves this copy
            self._squares = [self._stored(X.pow(2).float()) for X in self.blocks]
        acc_w = acc_b = None
        for X2, p in zip(self._squares, probs.blocks, strict=True):
            p = self._on_device(p)
            s = p * (1.0 - p)
            part_w, part_b = s.T.float() @ self._on_device(X2), s.sum(dim=0)
            acc_w, acc_b = (part_w, part_b) if acc_w is None else (acc_w + part_w, acc_b + part_b)
        diag_w = acc_w.to(self.dtype) / self.n + 1.0 / (C * self.n)
        return diag_w, (acc_b / self.n).clamp_min(1e-12)

    def hessian(self, probs: RowBlocks, C: float, chunk: int = 4096) -> torch.Tensor:
        """The full Hessian in the flattened (W row by row, then b) parameters, for small problems."""
        d1 = self.dim + 1
        size = self.rows * d1
        hess = torch.zeros(size, size, device=self.device, dtype=self.dtype)
        for X_block, p_block in zip(self.blocks, probs.blocks, strict=True):
            X_block, p_block = self._on_device(X_block), self._on_device(p_block)
            ones = torch.ones(len(X_block), 1, device=self.device, dtype=self.dtype)
            for lo in range(0, len(X_block), chunk):
                aug = torch.cat([X_block[lo:lo + chunk], ones[lo:lo + chunk]], dim=1)
                p = p_block[lo:lo + chunk]
                if self.rows == 1:
                    hess += (aug * (p * (1.0 - p))).T @ aug
                    continue
                outer = (p[:, :, None] * aug[:, None, :]).reshape(len(aug), size)
                hess -= outer.T @ outer
                for c in range(self.rows):
                    block = slice(c * d1, (c + 1) * d1)
                    hess[block, block] += (aug * p[:, c:c + 1]).T @ aug
        hess /= self.n
        index = torch.arange(size, device=self.device)
        is_bias = (index % d1) == self.dim
        hess[index, index] += torch.where(is_bias, 1e-12 * float(hess.diagonal().mean()), 1.0 / (C * self.n))
        return hess

    def newton_direction(self, probs: RowBlocks, gw: torch.Tensor, gb: torch.Tensor,
                         C: float) -> tuple[torch.Tensor, torch.Tensor]:
        """-H^-1 g by Cholesky of the full Hessian."""
        flat = torch.cat([gw, gb[:, None]], dim=1).reshape(-1, 1)
        hess = self.hessian(probs, C)
        factor, info = torch.linalg.cholesky_ex(hess)
        step = torch.cholesky_solve(flat, factor) if int(info) == 0 else torch.linalg.lstsq(hess, flat).solution
        step = -step.reshape(self.rows, self.dim + 1)
        return step[:, :-1].contiguous(), step[:, -1].contiguous()

    def optimality(self, weight: torch.Tensor, bias: torch.Tensor, C: float,
                   cg_max: int = 500) -> tuple[float, float, float]:
        """(objective, ||grad||_2, Newton decrement 0.5 g^T H^-1 g / F) at a point: the independent check
        applied to every solver's answer (CG solved to 1e-3 relative residual)."""
        loss, gw, gb = self(weight, bias, C)
        probs = self.curvature(weight, bias)
        g_norm = math.sqrt(float(gw.pow(2).sum() + gb.pow(2).sum()))
        if self.direct:
            dw, db = self.newton_direction(probs, gw, gb, C)
            return loss, g_norm, -0.5 * float((gw * dw).sum() + (gb * db).sum()) / max(loss, 1e-300)
        if g_norm == 0.0:
            return loss, g_norm, 0.0
        dw, db, _, _, _ = self.cg_direction(probs, gw, gb, C, 1e-3 * g_norm, cg_max)
        return loss, g_norm, -0.5 * float((gw * dw).sum() + (gb * db).sum()) / max(loss, 1e-300)

    def cg_direction(self, probs: RowBlocks, gw: torch.Tensor, gb: torch.Tensor, C: float, tol: float,
                     cg_max: int, start: tuple[torch.Tensor, torch.Tensor] | None = None, low: bool = False,
                     preconditioner: Jacobi | Kronecker | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, int, float, float]:
        """-H^-1 g by preconditioned conjugate gradients, stopped when the residual norm is <= ``tol``
        (or on non-positive curvature, or after ``cg_max`` Hessian-vector products). Returns (dw, db, number
        of products, residual norm ||r||, d^T r) with r = -g - H d: g^T H^-1 g = -g^T d + d^T r + r^T H^-1 r. ``start`` continues from an earlier approximation (one more product, for
        its residual); ``low`` runs the iterations in float32 (a product ~2.4x faster on a CPU; the residual
        returned is then float32's recursion, not the float64 one), returning a float64 direction;
        ``preconditioner``: the preconditioner, if already built at ``probs``."""
        precondition = self.preconditioner(probs, C) if preconditioner is None else preconditioner
        products = 0
        if low:
            probs, gw, gb = probs.float(), gw.float(), gb.float()
            precondition = precondition.low()

        if start is None:
            dw, db = torch.zeros_like(gw), torch.zeros_like(gb)
            rw, rb = -gw, -gb
        else:
            dw, db = start[0].clone(), start[1].clone()
            hw, hb = self.hessian_vector(probs, dw, db, C, low)
            products += 1
            rw, rb = -gw - hw, -gb - hb
            residual = math.sqrt(float(rw.pow(2).sum() + rb.pow(2).sum()))
            if residual <= tol:
                cross = float((dw * rw).sum() + (db * rb).sum())
                return ((dw.double(), db.double()) if low else (dw, db)) + (products, residual, cross)
        zw, zb = precondition(rw, rb)
        pw, pb = zw.clone(), zb.clone()
        rz = float((rw * zw).sum() + (rb * zb).sum())
        residual = math.inf
        for _ in range(cg_max):
            hw, hb = self.hessian_vector(probs, pw, pb, C, low)
            products += 1
            curvature = float((pw * hw).sum() + (pb * hb).sum())
            if curvature <= 0:
                break
            alpha = rz / curvature
            dw.add_(pw, alpha=alpha)
            db.add_(pb, alpha=alpha)
            rw.add_(hw, alpha=-alpha)
            rb.add_(hb, alpha=-alpha)
            residual = math.sqrt(float(rw.pow(2).sum() + rb.pow(2).sum()))
            if residual <= tol:
                break
            zw, zb = precondition(rw, rb)
            rz_new = float((rw * zw).sum() + (rb * zb).sum())
            pw.mul_(rz_new / rz).add_(zw)
            pb.mul_(rz_new / rz).add_(zb)
            rz = rz_new
        cross = float((dw * rw).sum() + (db * rb).sum())
        if low:
            dw, db = dw.double(), db.double()
        return dw, db, products, residual, cross

    def to_centred(self, init: LinearFit) -> tuple[torch.Tensor, torch.Tensor]:
        """A fit in original coordinates -> (weight, bias) in this objective's centred parameters."""
        w64 = init.weight64 if init.weight64 is not None else init.weight
        b64 = init.bias64 if init.bias64 is not None else init.bias
        weight = torch.as_tensor(np.asarray(w64), device=self.device).to(self.dtype)
        bias = torch.as_tensor(np.asarray(b64), device=self.device).to(self.dtype)
        if self.rows == 1:  # keep class 1's scores relative to class 0's
            weight = weight[1:] - weight[:1]
            bias = bias[1:] - bias[:1]
        return weight.clone(), bias + weight @ self.mean

    def prior_start(self) -> tuple[torch.Tensor, torch.Tensor]:
        """W = 0 with the bias at log class priors: the optimum as C -> 0 on centred features."""
        weight = torch.zeros(self.rows, self.dim, device=self.device, dtype=self.dtype)
        log_prior = torch.log(self.priors.clamp_min(1e-300))
        bias = log_prior[1:] - log_prior[:1] if self.rows == 1 else log_prior - log_prior.mean()
        return weight, bias

    def to_fit(self, weight: torch.Tensor, bias: torch.Tensor, C: float, n_iter: int, seconds: float,
               convergence: dict[str, Any]) -> LinearFit:
        full_bias = bias - weight @ self.mean  # centred -> original coordinates
        w64, b64 = _as_full(weight.detach().cpu().numpy(), full_bias.detach().cpu().numpy(), self.num_classes,
                            dtype=np.float64)
        return LinearFit(C=C, weight=w64.astype(np.float32), bias=b64.astype(np.float32), n_iter=n_iter,
                         converged=bool(convergence["converged"]), seconds=seconds, convergence=convergence,
                         weight64=w64, bias64=b64)

    def report(self, weight: torch.Tensor, bias: torch.Tensor, C: float, stats: dict[str, Any], rtol: float,
               criterion: str = "newton_decrement") -> dict[str, Any]:
        """The JSON-able convergence record of a fit (gradient and objective evaluated in float64)."""
        loss, gw, gb = self(weight, bias, C)
        g_norm = math.sqrt(float(gw.pow(2).sum() + gb.pow(2).sum()))
        out = {"C": float(C), "iterations": int(stats["iterations"]), "objective": loss, "grad_norm": g_norm,
               "decrement": float(stats["decrement"]), "tol": rtol, "criterion": criterion,
               "converged": bool(stats["converged"])}
        for key in ("cg_iterations", "hessians", "matmuls", "matmuls32"):
            if key in stats:
                out[key] = int(stats[key])
        return out


#: inexact Newton: CG's relative residual is at most this (early, far from the optimum) ...
CG_FORCING_MAX = 0.25
#: ... and no tighter than this fraction of what brings the next decrement to ``rtol`` (``goal`` below)
CG_FORCING_GOAL = 0.1


def newton_cg(objective: Objective, weight: torch.Tensor, bias: torch.Tensor, C: float, *, rtol: float,
              max_iter: int, direct: bool = False, cg_max: int = 250, float32_cg: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Damped Newton with (preconditioned) conjugate-gradient steps, stopped on the decrement.

    Returns (weight, bias, stats) with stats = iterations, cg_iterations, hessians, matmuls (float64 n x d x k
    products), matmuls32 (float32 ones), decrement, converged. See the module docstring for the CG rules.
    """
    stats = {"iterations": 0, "cg_iterations": 0, "hessians": 0, "matmuls": 0, "matmuls32": 0,
             "decrement": math.inf, "converged": False}
    raw = objective.raw_scores(weight, bias)
    loss, gw, gb, curv = objective.evaluate(raw, weight, C)
    stats["matmuls"] += 2
    g_start = None
    previous = None  # (decrement, gradient norm) of the last step
    while stats["iterations"] < max_iter:
        g_norm = math.sqrt(float(gw.pow(2).sum() + gb.pow(2).sum()))
        if g_norm == 0.0:
            stats.update(decrement=0.0, converged=True)
            break
        g_start = g_start or g_norm
        slack = 0.0  # bound on how much -g^T d underestimates g^T H^-1 g (exact directions: none)
        if direct:
            dw, db = objective.newton_direction(curv, gw, gb, C)
            stats["hessians"] += 1
        else:
            # forcing term: shrinks with the gradient (superlinear convergence), but no tighter than needed
            # to bring the next decrement (~ eta^2 x this one, predicted from the gradient) to rtol
            eta = min(CG_FORCING_MAX, math.sqrt(g_norm / g_start))
            if previous is not None:
                predicted = previous[0] * (g_norm / previous[1]) ** 2
                eta = min(CG_FORCING_MAX, max(eta, CG_FORCING_GOAL * math.sqrt(rtol / max(predicted, 1e-300))))
            preconditioner = objective.preconditioner(curv, C)
            dw, db, products, residual, cross = objective.cg_direction(curv, gw, gb, C, eta * g_norm, cg_max,
                                                                       low=float32_cg, preconditioner=preconditioner)
            stats["cg_iterations"] += products
            stats["matmuls32" if float32_cg else "matmuls"] += 2 * products
            if float32_cg:
                # float32's recursive residual is not the float64 one: one float64 product gives that, and
                # float64 CG goes on from d where float32 fell short (and then for the rest of this fit)
                dw, db, products, residual, cross = objective.cg_direction(curv, gw, gb, C, eta * g_norm, cg_max,
                                                                           start=(dw, db), preconditioner=preconditioner)
                stats["cg_iterations"] += products
                stats["matmuls"] += 2 * products
                float32_cg = products == 1
            # g^T H^-1 g = -g^T d + d^T r + r^T H^-1 r <= -g^T d + d^T r + ||r||^2 C n (every weight direction
            # has curvature >= 1 / (C n); d^T r is 0 in exact CG from 0, not after float32 or a restart).
            # Where the stopping test may pass, go on from d until ||r||^2 C n is at most a quarter of the
            # test's budget; the decrement reported and tested is the bound
            budget = 2.0 * rtol * loss
            estimate = -float((gw * dw).sum() + (gb * db).sum())
            if estimate <= 0.5 * budget and estimate + cross + residual ** 2 * C * objective.n > budget:
                tol = math.sqrt(0.25 * budget / (C * objective.n))
                dw, db, products, residual, cross = objective.cg_direction(curv, gw, gb, C, tol, cg_max,
                                                                           start=(dw, db), preconditioner=preconditioner)
                stats["cg_iterations"] += products
                stats["matmuls"] += 2 * products
            slack = cross + residual ** 2 * C * objective.n
        slope = float((gw * dw).sum() + (gb * db).sum())  # = -(Newton decrement)^2
        stats["decrement"] = 0.5 * (slack - slope) / max(loss, 1e-300)
        previous = (stats["decrement"], g_norm)
        done = stats["decrement"] <= rtol  # includes a decrement at float64 rounding noise (|.| ~ 1e-16)
        if slope >= 0:
            stats["converged"] = done
            break
        # backtracking on the scores' line raw + step * (X dW^T + db): one product, however many trials
        direction = objective.raw_scores(dw, db)
        stats["matmuls"] += 1
        step = 1.0
        for _ in range(40):
            new_w = weight + step * dw
            new_loss = objective.loss_of_scores(raw + step * direction, new_w, C)
            if new_loss <= loss + 1e-4 * step * slope:
                break
            step *= 0.5
        else:  # no decrease left at float64 precision
            stats["converged"] = done
            break
        stats["iterations"] += 1
        weight, bias = new_w, bias + step * db
        if done:  # the step just taken started within rtol of the optimum
            stats["converged"] = True
            break
        # the scores are updated along the line (re-computed every 8 steps against rounding drift)
        refresh = stats["iterations"] % 8 == 0
        raw = objective.raw_scores(weight, bias) if refresh else raw + step * direction
        loss, gw, gb, curv = objective.evaluate(raw, weight, C)  # gradient and next curvature: one product
        stats["matmuls"] += 1 + refresh
    return weight, bias, stats


#: warm start: multiples of the extrapolation ratio tried along the line through the two nearest solutions
START_GRID = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


class TorchSolver:
    """Exact: float64 Newton-CG in torch (CPU or GPU) until the Newton decrement is below ``rtol``."""

    name = "torch"

    def __init__(self, X: np.ndarray, y: np.ndarray, num_classes: int, *,
                 max_iter: int = EXACT_MAX_ITER, tol: float = DEFAULT_RTOL, device: str = "cpu",
                 hessian_limit: int = HESSIAN_LIMIT, float32_cg: bool = True, block_rows: int | None = None,
                 storage: str | None = None, preconditioner: str = DEFAULT_PRECONDITIONER):
        self.objective = Objective(X, y, num_classes, device=device, hessian_limit=hessian_limit,
                                   block_rows=block_rows, storage=storage, preconditioner=preconditioner)
        self.num_classes = num_classes
        self.max_iter = max_iter
        self.rtol = tol
        steps = ("full Hessian" if self.objective.direct
                 else f"conjugate gradients, {preconditioner} preconditioner"
                 + (", float32 iterations checked in float64" if float32_cg else ""))
        self.method = f"newton ({steps}), float64, centred, decrement <= {tol:g}"
        if len(self.objective.ranges) > 1 or self.objective.plan.streams:
            self.method += f", {self.objective.plan.describe(self.objective.n)}"
        self.float32_cg = float32_cg
        self._path: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}  # log10 C -> centred solution

    def fit(self, C: float, init: LinearFit | None = None) -> LinearFit:
        start = time.perf_counter()
        obj = self.objective
        with torch.no_grad():
            weight, bias, start_matmuls = self._start(C, init)
            weight, bias, stats = newton_cg(obj, weight, bias, C, rtol=self.rtol, max_iter=self.max_iter,
                                            direct=obj.direct, float32_cg=self.float32_cg)
            stats["matmuls"] += start_matmuls
            convergence = obj.report(weight, bias, C, stats, self.rtol)
            self._path[math.log10(C)] = (weight, bias)
        return obj.to_fit(weight, bias, C, stats["iterations"], time.perf_counter() - start, convergence)

    def _start(self, C: float, init: LinearFit | None) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The Newton start: ``init`` (or the prior start), or, if lower in objective at this C, a point on the
        line through ``init`` and this solver's solution nearest to it in log C, extrapolated (or interpolated)
        linearly in log C: multiples ``START_GRID`` of that ratio are tried, two products in all (the scores
        are linear in the parameters). Any start is exact: the stopping rule does not depend on it."""
        obj = self.objective
        weight, bias = obj.prior_start() if init is None else obj.to_centred(init)
        if init is None or not self._path:
            return weight, bias, 0
        t, t1 = math.log10(C), math.log10(init.C)
        others = [p for p in self._path if p != t1]
        if not others:
            return weight, bias, 0
        t2 = min(others, key=lambda p: (abs(p - t1), p))
        w2, b2 = self._path[t2]
        ratio = (t - t1) / (t1 - t2)
        z1, z2 = obj.raw_scores(weight, bias), obj.raw_scores(w2, b2)
        w_init = weight
        dw, db, dz = w_init - w2, bias - b2, z1 - z2
        best, best_s = obj.loss_of_scores(z1, w_init, C), 0.0
        for frac in START_GRID:
            s = frac * ratio
            loss = obj.loss_of_scores(z1 + s * dz, w_init + s * dw, C)
            if loss < best:
                best, best_s = loss, s
        return w_init + best_s * dw, bias + best_s * db, 2


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
        weight, bias = _as_full(model.coef_, model.intercept_, self.num_classes)
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
        w64, b64 = _as_full(model.coef_, bias, self.num_classes, dtype=np.float64)
        return LinearFit(C=C, weight=w64.astype(np.float32), bias=b64.astype(np.float32), n_iter=n_iter,
                         converged=convergence["converged"], seconds=seconds, convergence=convergence,
                         weight64=w64, bias64=b64)


SOLVERS = {"torch": TorchSolver, "sklearn": SklearnSolver, "sklearn_exact": ExactSklearnSolver}


def make_solver(name: str, X: np.ndarray, y: np.ndarray, num_classes: int, **options):
    return SOLVERS[name](X, y, num_classes, **options)
