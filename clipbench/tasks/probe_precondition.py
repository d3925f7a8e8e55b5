"""Preconditioners for the probe's conjugate-gradient Newton steps, and why Kronecker-factored is the default.

CG's iteration count grows with the spread of the eigenvalues of M^-1 H (H: the Hessian of the probe's
objective, M: the preconditioner). H's weight block for class c is X^T diag(s_c) X / n + I / (C n), with
s_ic = p_ic (1 - p_ic), plus cross-class terms. A diagonal (Jacobi) M rescales coordinates but cannot undo
correlated features, and image features are strongly anisotropic: their covariance has a few large
eigenvalues and many small ones. The Kronecker-factored M replaces each class's block by

    a_c * Sigma + I / (C n),   Sigma = X^T X / n (centred features),   a_c = mean_i s_ic

(K-FAC's factorisation of E[s x x^T] into E[s] E[x x^T]). With Sigma = U diag(lambda) U^T, computed once
per training set, M^-1 r costs two d x d x k products (against the n x d x k ones of each Hessian-vector
product) and needs no per-row copy: Jacobi's squared features are an extra n x d float32 array. The biases
keep their diagonal entries. Neither changes the answer, only the number of CG iterations: the direction
CG returns is checked against the true Hessian, and the stopping rule never depends on M.
``benchmarks/README.md`` ("probe_scale") has the measured CG iterations and time of both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the solver; the benchmarks' and CLI's option lists import only the names
    import torch

PRECONDITIONERS = ("kronecker", "jacobi")
DEFAULT_PRECONDITIONER = "kronecker"


class Jacobi:
    """M = diag(H): the weights' and biases' diagonal entries."""

    def __init__(self, diag_w: torch.Tensor, diag_b: torch.Tensor):
        self.diag_w, self.diag_b = diag_w, diag_b

    def __call__(self, rw: torch.Tensor, rb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rw / self.diag_w, rb / self.diag_b

    def low(self) -> Jacobi:
        """The same preconditioner in float32 (for float32 CG iterations)."""
        return Jacobi(self.diag_w.float(), self.diag_b.float())


class Kronecker:
    """M_c = a_c U diag(lambda) U^T + reg I on class c's weights, the diagonal on the biases."""

    def __init__(self, basis: torch.Tensor, denominators: torch.Tensor, diag_b: torch.Tensor):
        self.basis, self.denominators, self.diag_b = basis, denominators, diag_b

    @classmethod
    def build(cls, eigenvalues: torch.Tensor, basis: torch.Tensor, class_curvature: torch.Tensor, reg: float,
              diag_b: torch.Tensor) -> Kronecker:
        """From Sigma's eigendecomposition, a_c (one per weight row) and the penalty's curvature ``reg``."""
        return cls(basis, class_curvature[:, None] * eigenvalues[None, :] + reg, diag_b)

    def __call__(self, rw: torch.Tensor, rb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return ((rw @ self.basis) / self.denominators) @ self.basis.T, rb / self.diag_b

    def low(self) -> Kronecker:
        """The same preconditioner in float32 (for float32 CG iterations)."""
        return Kronecker(self.basis.float(), self.denominators.float(), self.diag_b.float())


def feature_eigenbasis(blocks: list[torch.Tensor], n: int, on_device) -> tuple[torch.Tensor, torch.Tensor]:
    """(eigenvalues, eigenvectors) of Sigma = X^T X / n from the centred feature blocks, float64, eigenvalues
    clamped at 0 (rounding can leave tiny negative ones)."""
    import torch

    sigma = None
    for block in blocks:
        block = on_device(block)
        part = block.T @ block
        sigma = part if sigma is None else sigma + part
    eigenvalues, basis = torch.linalg.eigh(sigma / n)
    return eigenvalues.clamp_min(0.0), basis
