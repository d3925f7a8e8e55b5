"""The exact probe solver (``torch``): damped Newton in float64, stopped on the Newton decrement.

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

``TorchSolver`` runs damped Newton in float64 torch (CPU or GPU) on mean-centred
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
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from clipbench.tasks.probe_fit import DEFAULT_RTOL, EXACT_MAX_ITER, LinearFit
from clipbench.tasks.probe_objective import HESSIAN_LIMIT, Objective
from clipbench.tasks.probe_precondition import DEFAULT_PRECONDITIONER

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
