"""The probe's objective: scikit-learn's multinomial logistic regression in float64, on centred features.

Every solver minimises

    C * sum_i CE(x_i W^T + b, y_i) + 0.5 * ||W||^2        (the bias b is not penalised)

which in scikit-learn's scaling (divided by C * n) is F(W, b) = mean CE + ||W||^2 / (2 C n).
With two classes scikit-learn fits a binary logistic regression (one weight vector); every solver
here does the same, so that C means the same. ``Objective`` gives F, its gradient, Hessian-vector
products, the full Hessian (small problems), Newton directions by Cholesky or preconditioned CG
(``probe_precondition``) and the independent optimality check applied to every solver's answer:
the relative Newton decrement 0.5 g^T H^-1 g / F (``probe_newton`` says why that is the rule).

Centring is an exact reparametrisation (the unpenalised bias absorbs the mean). The rows (features
and every n x k array) are held as blocks (``probe_rows``): sums over rows accumulate block by block,
and a problem whose state does not fit the device's free memory streams its blocks from pinned host
memory. One block (every problem of under ~11M n x k scores) computes exactly what it did before
blocks existed; more blocks reach the same optimum, only the order of float summation differs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from clipbench.tasks.probe_fit import LinearFit, as_full
from clipbench.tasks.probe_precondition import (
    DEFAULT_PRECONDITIONER,
    PRECONDITIONERS,
    Jacobi,
    Kronecker,
    feature_eigenbasis,
)
from clipbench.tasks.probe_rows import RowBlocks, plan_rows

HESSIAN_LIMIT = 2048  # parameters up to which Newton uses the full Hessian (Cholesky) by default


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
        w64, b64 = as_full(weight.detach().cpu().numpy(), full_bias.detach().cpu().numpy(), self.num_classes,
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
