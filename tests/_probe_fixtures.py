"""Synthetic probe problems shared by the probe solver tests."""

from __future__ import annotations

import numpy as np


def many_parameters(n: int = 210, dim: int = 100, classes: int = 21, seed: int = 0):
    """21 x 101 = 2,121 parameters (> HESSIAN_LIMIT): the default solver takes CG steps. Few rows per
    class and a shared offset, so large C is nearly separable and ill-conditioned (CG's hard case)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim)) * 0.3
    y = np.arange(n) % classes
    rng.shuffle(y)
    X = means[y] + rng.standard_normal((n, dim)) + 3.0 * rng.standard_normal(dim)
    return X.astype(np.float32), y.astype(np.int64)
