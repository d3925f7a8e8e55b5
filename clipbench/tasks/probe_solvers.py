"""The probe's solver registry: every ``--solver`` name, its one-line summary and where its class lives.

The option declaration (``choices``), ``linear_probe``'s check and the benchmarks' lists all read the
names here. Entries name their class as ``module:Class`` and load it on first use, so listing the
names (the CLI's option table) imports no torch.

Every solver minimises the same objective (``probe_objective``) and is built once per training set,
then fitted for many values of C; ``fit(C, init)`` returns a ``probe_fit.LinearFit``. Each fit's
``convergence`` is JSON-able: ``{"C", "iterations", "objective", "grad_norm", "decrement", "tol",
"criterion", "converged"}`` plus ``cg_iterations``, ``hessians``, ``matmuls`` (float64 n x d x k
matrix products) and ``matmuls32`` (float32 ones, inside CG) for the torch solver, and ``max_iter``
and ``check_s`` (the seconds of the float64 check, not part of scikit-learn's own cost) for
scikit-learn. ``iterations`` are Newton steps (torch) or L-BFGS iterations (scikit-learn);
``grad_norm`` is ||dF/d(W, b)||_2 at the returned point in float64; ``decrement`` is the relative
Newton decrement (torch: before the last step; scikit-learn: at its answer); ``tol`` is the tolerance
of ``criterion``: ``"newton_decrement"`` (torch; ``converged`` = decrement <= tol, the decrement
including the CG error bound), ``"sklearn"`` (the literal solver; ``tol`` is scikit-learn's gradient
tol, ``converged`` its own verdict) or the scikit-learn solver's name (``sklearn_exact``; converged =
below the cap and decrement <= 100 tol). ``method`` names the solver's path (and its row blocks when
there is more than one).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SolverEntry:
    """A solver's name, what it is (for ``--help``), its class as ``module:Class`` and whether it is CPU-only."""

    name: str
    summary: str
    target: str
    cpu_only: bool = False

    def load(self) -> type:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


SOLVERS: dict[str, SolverEntry] = {e.name: e for e in (
    SolverEntry("torch", "float64 Newton to a 1e-9 relative decrement", "clipbench.tasks.probe_newton:TorchSolver"),
    SolverEntry("sklearn", "the paper's literal lbfgs", "clipbench.tasks.probe_sklearn:SklearnSolver", cpu_only=True),
    SolverEntry("sklearn_exact", "scikit-learn to the optimum, slow", "clipbench.tasks.probe_sklearn:ExactSklearnSolver",
                cpu_only=True),
)}
SOLVER_NAMES: tuple[str, ...] = tuple(SOLVERS)
DEFAULT_SOLVER = "torch"


def solver_help() -> str:
    """``--solver``'s help text: the default and what each other solver is."""
    others = "; ".join(f"{e.name}: {e.summary}" for e in SOLVERS.values() if e.name != DEFAULT_SOLVER)
    return f"linear-probe solver (default: {DEFAULT_SOLVER}; {others})"


def solver_choices() -> str:
    """The names as an error message spells the choices: "torch, sklearn or sklearn_exact"."""
    return ", ".join(SOLVER_NAMES[:-1]) + " or " + SOLVER_NAMES[-1]


def make_solver(name: str, X: Any, y: Any, num_classes: int, **options: Any) -> Any:
    """The solver ``name`` for one training set (``X``, ``y``); ``options`` go to its constructor."""
    return SOLVERS[name].load()(X, y, num_classes, **options)
