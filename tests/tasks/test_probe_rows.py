"""The probe's rows in blocks (``probe_rows``): a problem too large for the device is computed block by
block, or streamed from host memory, and reaches the same optimum; one block computes exactly what the
solver computed before blocks existed (that is the default for every problem the suites probe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _probe_fixtures import many_parameters

import clipbench
from clipbench.foundations.errors import ClipbenchError
from clipbench.tasks.probe_newton import TorchSolver
from clipbench.tasks.probe_objective import HESSIAN_LIMIT
from clipbench.tasks.probe_rows import MEMORY_FRACTION, TRANSIENT_BYTES, plan_rows, state_bytes

GiB = 2**30


def test_the_plan_keeps_small_problems_whole_and_bounds_large_ones():
    whole = plan_rows(10_000, 768, 100, "cpu")
    assert whole.block_rows == 10_000 and not whole.streams
    imagenet_cpu = plan_rows(1_281_167, 768, 1000, "cpu")
    assert not imagenet_cpu.streams and 6 * 8 * 1000 * imagenet_cpu.block_rows <= TRANSIENT_BYTES
    # ImageNet's shape: ~54 GiB of solver state (4 GiB more with Jacobi's squared features); it stays on a
    # 141 GB device and streams on a 40 GB one
    need = state_bytes(1_281_167, 768, 1000)
    assert 53 * GiB < need < 55 * GiB
    assert state_bytes(1_281_167, 768, 1000, squares=True) == need + 4 * 1_281_167 * 768
    big = plan_rows(1_281_167, 768, 1000, "cuda", free_bytes=139 * GiB)
    small = plan_rows(1_281_167, 768, 1000, "cuda", free_bytes=40 * GiB)
    assert not big.streams and big.storage == torch.device("cuda")
    assert small.streams and small.storage == torch.device("cpu") and small.device == torch.device("cuda")
    assert need > MEMORY_FRACTION * 40 * GiB
    assert "host memory" in small.describe(1_281_167) and "cuda" in big.describe(1_281_167)
    forced = plan_rows(500, 10, 3, "cpu", block_rows=64, storage="host")
    assert forced.block_rows == 64 and forced.streams
    with pytest.raises(ValueError, match="block_rows"):
        plan_rows(500, 10, 3, "cpu", block_rows=0)
    with pytest.raises(ValueError, match="storage"):
        plan_rows(500, 10, 3, "cpu", storage="disk")


@pytest.mark.parametrize("options", [{"block_rows": 37}, {"block_rows": 64, "storage": "host"}])
def test_blocked_and_streamed_fits_reach_the_one_block_optimum(options):
    X, y = many_parameters()
    whole, blocked = TorchSolver(X, y, 21), TorchSolver(X, y, 21, **options)
    assert len(whole.objective.ranges) == 1 and len(blocked.objective.ranges) > 1
    assert 21 * 101 > HESSIAN_LIMIT and not blocked.objective.direct
    assert "row blocks" in blocked.method and "row blocks" not in whole.method
    previous = {}
    for C in (0.1, 10.0, 1e3):
        a = whole.fit(C, init=previous.get("whole"))
        b = blocked.fit(C, init=previous.get("blocked"))
        previous.update(whole=a, blocked=b)
        assert a.converged and b.converged and b.convergence["decrement"] <= 1e-9
        assert b.convergence["objective"] == pytest.approx(a.convergence["objective"], rel=2e-9)
        # F is 1/(C n)-strongly convex in W: both within 1e-9 of F* bounds their distance
        bound = 2 * 2e-9 * a.convergence["objective"] * C * len(y)
        assert np.sum((a.weight64 - b.weight64) ** 2) <= bound
        assert np.array_equal(a.scores(X).argmax(1), b.scores(X).argmax(1))


@pytest.mark.parametrize("classes", [2, 4])
def test_blocked_full_hessian_steps_equal_one_block(classes):
    """The direct (Cholesky) path sums its Hessian over blocks: the same steps to rounding."""
    X, y = many_parameters(n=250, dim=12, classes=classes, seed=1)
    whole, blocked = TorchSolver(X, y, classes), TorchSolver(X, y, classes, block_rows=41, storage="host")
    assert whole.objective.direct and blocked.objective.direct
    for C in (0.01, 1.0, 100.0):
        a, b = whole.fit(C), blocked.fit(C)
        assert a.n_iter == b.n_iter and a.converged and b.converged
        assert np.allclose(a.weight64, b.weight64, rtol=0, atol=1e-9 * np.abs(a.weight64).max())
        # softmax scores are defined up to a shared shift of the biases (a null direction of the objective)
        ba, bb = (a.bias64 - a.bias64.mean(), b.bias64 - b.bias64.mean()) if classes > 2 else (a.bias64, b.bias64)
        assert np.allclose(ba, bb, rtol=0, atol=1e-9 * max(np.abs(ba).max(), 1.0))


@pytest.mark.slow
def test_linear_probe_chooses_the_same_c_with_streamed_blocks_and_records_how():
    X, y = many_parameters(n=420, seed=2)
    X_test, y_test = many_parameters(n=210, seed=3)
    args = {"train": (X, y), "test": (X_test, y_test), "num_classes": 21}
    default = clipbench.linear_probe(**args)
    streamed = clipbench.linear_probe(**args, block_rows=50, storage="host")
    assert streamed.convergence["all_converged"] and default.convergence["all_converged"]
    assert streamed.C == default.C and streamed.top1 == default.top1
    assert [c for c, _ in streamed.sweep] == [c for c, _ in default.sweep]
    assert "7 row blocks of <= 50 on host memory" in streamed.convergence["method"]
    assert "row blocks" not in default.convergence["method"]
    with pytest.raises(ClipbenchError, match="torch solver"):
        clipbench.linear_probe(**args, solver="sklearn", block_rows=50)
    with pytest.raises(ClipbenchError, match="storage"):
        clipbench.linear_probe(**args, storage="disk")


@pytest.mark.parametrize("storage", [None, "host"])
def test_blocks_are_copies_centred_in_place_never_the_callers_features(storage):
    X, y = many_parameters()
    X64 = X.astype(np.float64)
    before = X64.copy()
    solver = TorchSolver(X64, y, 21, block_rows=50, storage=storage)
    assert np.array_equal(X64, before)
    centred = torch.cat(solver.objective.blocks).numpy()
    assert np.allclose(centred, before - before.mean(axis=0), rtol=0, atol=1e-12)
