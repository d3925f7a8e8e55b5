"""Linear probe: the full CLIP-paper C sweep plus refit, clipbench's torch solver vs scikit-learn.

Both solvers run the very same search (``clipbench.tasks.linear_probe``: 7-point grid over
lambda = 1/C in [1e-6, 1e6], binary search down to 1/8 decade, refit on train+val) on the same
generated features, in one process, one after the other. Reported: wall time of each, the ratio
sklearn/torch, the chosen C of each and its test top-1.

Features: ``n`` training rows (validation is carved from them, 20% stratified, seed 0) and
``n // 5`` test rows with CLIP-like structure: a large common offset, class means on a low-rank
subspace with a decaying spectrum, within-class noise on that subspace plus isotropic noise.
``--separation`` sets the difficulty (the default gives ~75% top-1 at 10,000 x 512, 100 classes;
more training rows raise it).

``--threads`` caps both torch's and the BLAS pool's threads (threadpoolctl), so both sides use the
same number of cores; on a machine shared with other jobs, 1 thread gives the steadiest ratio.

    python benchmarks/probe.py --n 10000 --dim 512 --classes 100 --out probe.json
    python benchmarks/probe.py --quick --out /tmp/probe-quick.json   # tiny, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_summary  # noqa: E402


def make_features(n: int, dim: int, classes: int, *, rank: int = 64, separation: float = 0.45,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded CLIP-like features: ``n`` rows of ``dim`` float32, balanced-ish labels in [0, classes)."""
    rng = np.random.default_rng(seed)
    rank = min(rank, dim)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(rank) / 8.0)  # decaying, like real embeddings
    class_means = rng.standard_normal((classes, rank)) * separation
    labels = rng.integers(0, classes, n)
    latent = (class_means[labels] + rng.standard_normal((n, rank))) * spectrum
    offset = rng.standard_normal(dim) * 0.5
    features = latent @ basis.T + 0.1 * rng.standard_normal((n, dim)) + offset
    return features.astype(np.float32), labels.astype(np.int64)


def run_solver(solver: str, train, test, *, threads: int | None, max_iter: int, device: str) -> dict:
    from threadpoolctl import threadpool_limits

    from clipbench.tasks.linear_probe import linear_probe

    with threadpool_limits(limits=threads):
        start = time.perf_counter()
        result = linear_probe(train=train, test=test, solver=solver, seed=0, max_iter=max_iter,
                              device=device if solver == "torch" else "cpu", num_threads=threads)
        seconds = time.perf_counter() - start
    summary = result.to_dict()
    summary["time_s"] = seconds
    return summary


def neighbouring(c_a: float, c_b: float) -> bool:
    """Same C or adjacent on the final 1/8-decade grid."""
    return bool(abs(np.log10(c_a) - np.log10(c_b)) <= 0.125 + 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="training rows (val carved from them)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--separation", type=float, default=0.45, help="class separation (difficulty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="threads for both solvers (default: all)")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--device", default="cpu", help="device for the torch solver")
    parser.add_argument("--solvers", default="torch,sklearn", help="comma-separated, in run order")
    parser.add_argument("--quick", action="store_true", help="tiny problem (for tests): 600 x 16, 5 classes")
    parser.add_argument("--out", help="JSON summary path")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.dim, args.classes = 600, 16, 5

    n_test = max(args.n // 5, args.classes)
    X, y = make_features(args.n + n_test, args.dim, args.classes, separation=args.separation, seed=args.seed)
    train, test = (X[: args.n], y[: args.n]), (X[args.n:], y[args.n:])

    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    results = {s: run_solver(s, train, test, threads=args.threads, max_iter=args.max_iter, device=args.device)
               for s in solvers}

    rows = [[s, r["time_s"], r["C"], r["top1"], sum(r["n_iter"]["sweep"]) + r["n_iter"]["refit"],
             len(r["sweep"])] for s, r in results.items()]
    shape = f"{args.n} x {args.dim}, {args.classes} classes, test {n_test}"
    print_table(f"Linear probe: full C sweep + refit ({shape})",
                ["solver", "time (s)", "chosen C", "test top-1", "L-BFGS iters", "sweep points"], rows)
    comparison = None
    if {"torch", "sklearn"} <= set(results):
        t, s = results["torch"], results["sklearn"]
        comparison = {
            "time_ratio_sklearn_over_torch": s["time_s"] / t["time_s"],
            "same_or_neighbouring_C": bool(neighbouring(t["C"], s["C"])),
            "top1_difference": t["top1"] - s["top1"],
        }
        comparison["meets_target"] = (comparison["time_ratio_sklearn_over_torch"] >= 5.0
                                      and comparison["same_or_neighbouring_C"]
                                      and abs(comparison["top1_difference"]) <= 0.2)
        print(f"\nsklearn / torch time: {comparison['time_ratio_sklearn_over_torch']:.2f}x; "
              f"C torch {t['C']:.4g} vs sklearn {s['C']:.4g} (neighbouring: {comparison['same_or_neighbouring_C']}); "
              f"top-1 difference {comparison['top1_difference']:+.2f} points; "
              f"target (>= 5x, same/neighbour C, |diff| <= 0.2): {'met' if comparison['meets_target'] else 'NOT met'}")
    write_summary(args.out, {
        "benchmark": "probe",
        "command": " ".join(["python", "benchmarks/probe.py", *(argv if argv is not None else sys.argv[1:])]),
        "problem": {"n_train": args.n, "n_test": n_test, "dim": args.dim, "classes": args.classes,
                    "separation": args.separation, "seed": args.seed, "val_fraction": 0.2},
        "threads": args.threads,
        "machine": machine_info(("sklearn", "numpy", "scipy")),
        "results": results,
        "comparison": comparison,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
