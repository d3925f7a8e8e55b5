"""The probe's solver registry is the one list of solvers: each entry builds its solver, the option, the
probe's check and the benchmark all take their names from it, and listing them imports no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _benchmark_fixtures import BENCHMARKS
from _cli_probe import source_env

from clipbench.foundations.errors import ClipbenchError
from clipbench.tasks.linear_probe import linear_probe
from clipbench.tasks.probe_solvers import DEFAULT_SOLVER, SOLVER_NAMES, SOLVERS, make_solver, solver_choices
from clipbench.tasks.registry import get_task


def _problem(n: int = 60, dim: int = 4, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    return (rng.normal(size=(n, dim)) + y[:, None]).astype(np.float32), y


@pytest.mark.parametrize("name", SOLVER_NAMES)
def test_every_entry_builds_the_solver_it_names_and_fits(name):
    X, y = _problem()
    solver = make_solver(name, X, y, 3)
    assert solver.name == name == SOLVERS[name].name
    fit = solver.fit(1.0)
    assert fit.weight.shape == (3, 4) and fit.convergence["C"] == 1.0
    if SOLVERS[name].cpu_only:
        with pytest.raises(ValueError, match="CPU only"):
            make_solver(name, X, y, 3, device="meta")


@pytest.mark.subprocess
def test_the_option_the_check_and_the_benchmark_take_their_names_from_the_registry():
    (option,) = [o for o in get_task("linear_probe").options if o.name == "solver"]
    assert tuple(option.choices) == SOLVER_NAMES and option.default == DEFAULT_SOLVER
    X, y = _problem()
    with pytest.raises(ClipbenchError, match="expected one of") as err:
        linear_probe(train=(X, y), test=(X, y), solver="liblinear")
    assert all(name in str(err.value) for name in SOLVER_NAMES)
    assert solver_choices() == "torch, sklearn or sklearn_exact" == option.what
    bench = subprocess.run([sys.executable, str(BENCHMARKS / "probe.py"), "--quick", "--solvers", "torch,liblinear"],
                           capture_output=True, text=True, timeout=120, env=source_env())
    assert bench.returncode == 2 and "unknown solver(s) liblinear" in bench.stderr
    assert all(name in bench.stderr.splitlines()[-1] for name in SOLVER_NAMES)


@pytest.mark.subprocess
def test_the_names_import_no_torch():
    probe = ("import sys; from clipbench.tasks.probe_solvers import SOLVER_NAMES, solver_help; solver_help(); "
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         env=source_env(), check=True)
    assert out.stdout.strip() == "False"
