"""Few-shot linear probes: k training examples per class, repeated over seeds, mean and spread.

Each seed draws its own k-per-class subset of ``train`` (``fewshot_subset``) and runs the full
``linear_probe`` on it; without an explicit ``val`` the validation split is carved from the k-shot
subset itself (so k >= 2), which keeps the probe honestly few-shot.

``FewShotResult.convergence`` is one entry per seed, ``{"seed", "sweep", "refit", "all_converged",
"method"}`` (the run's ``LinearProbeResult.convergence`` plus its seed), and ``all_converged`` says
whether every fit of every seed converged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clipbench.datasets.splits import per_class_indices
from clipbench.foundations.errors import ClipbenchError
from clipbench.tasks.linear_probe import LinearProbeResult, _as_arrays, linear_probe


def fewshot_subset(y: Any, k: int, seed: int) -> np.ndarray:
    """Sorted indices of exactly ``k`` examples of every class present in ``y``, drawn with ``seed``."""
    return per_class_indices(y, k, seed)


@dataclass
class FewShotResult:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of each metric over seeds."""

    k: int
    seeds: list[int]
    mean: dict[str, float]
    std: dict[str, float]
    runs: list[LinearProbeResult] = field(repr=False)

    @property
    def convergence(self) -> list[dict[str, Any]]:
        """Per seed: that run's convergence record (JSON-able), with its seed."""
        return [{"seed": seed, **run.convergence} for seed, run in zip(self.seeds, self.runs, strict=True)]

    @property
    def all_converged(self) -> bool:
        return all(run.convergence["all_converged"] for run in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "seeds": self.seeds, "mean": self.mean, "std": self.std,
                "all_converged": self.all_converged, "runs": [run.to_dict() for run in self.runs]}


def fewshot_linear_probe(train: Any, test: Any, *, k: int, seeds: Sequence[int] = (0, 1, 2),
                         val: Any = None, **probe_options: Any) -> FewShotResult:
    """Run ``linear_probe`` on a k-shot subset of ``train`` for every seed; ``probe_options`` pass through."""
    if not seeds:
        raise ClipbenchError("fewshot: at least one seed is needed")
    X, y = _as_arrays(train, "train")
    if val is None and k < 2:
        raise ClipbenchError(f"fewshot: k={k} leaves nothing to carve a validation split from; use k >= 2 or pass val=")
    probe_options.setdefault("num_classes", int(y.max()) + 1)
    runs = []
    for seed in seeds:
        idx = fewshot_subset(y, k, seed)
        runs.append(linear_probe(train=(X[idx], y[idx]), val=val, test=test, seed=seed, **probe_options))
    names = list(runs[0].metrics)
    values = {name: np.array([run.metrics[name] for run in runs]) for name in names}
    return FewShotResult(
        k=k,
        seeds=list(seeds),
        mean={name: float(v.mean()) for name, v in values.items()},
        std={name: float(v.std(ddof=1)) if v.size > 1 else 0.0 for name, v in values.items()},
        runs=runs,
    )
