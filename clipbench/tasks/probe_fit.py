"""What every probe solver returns: a linear classifier in the original coordinates, and the exactness contract.

A fit keeps its float64 parameters where the solver had them (the exact solvers), so that scores on
new features are computed at the precision the solver certified; the float32 copy is what callers
that only read weights use. A binary fit has one row, like scikit-learn's, expanded here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_RTOL = 1e-9  # certified relative suboptimality of the exact solvers
EXACT_MAX_ITER = 1000  # the exact solvers' cap (Newton steps): a safety net, reported if hit


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


def as_full(weight: np.ndarray, bias: np.ndarray, num_classes: int,
             dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Binary fits have one row; expand to (num_classes, dim) with class 0's scores fixed at 0."""
    weight = np.asarray(weight, dtype=dtype)
    bias = np.asarray(bias, dtype=dtype).reshape(-1)
    if num_classes == 2 and weight.shape[0] == 1:
        weight = np.concatenate([np.zeros_like(weight), weight], axis=0)
        bias = np.concatenate([np.zeros(1, dtype=dtype), bias])
    return weight, bias
