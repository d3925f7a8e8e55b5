"""The linear probe's whole C sweep + refit at a scale this machine allows, through the public API.

ImageNet's probe is 1,281,167 x 768 features (ViT-L/14) and 1,000 classes; the CLIP paper's sklearn
fits took about two days each. This times ``clipbench.linear_probe`` (the exact torch solver, its
default: Newton with conjugate-gradient steps at this size) on seeded CLIP-like synthetic features
of ``--n`` x ``--dim`` with ``--classes`` classes and reports the share of ImageNet's size (rows x
dim x classes, which is what one n x d x k matrix product costs), the Newton steps and the matrix
products (float64 and float32) of the whole sweep. On a 2-core CPU the default is sized to finish in
under 2 minutes; ``--n 64000 --classes 1000`` (1/20 of ImageNet) takes about 46 minutes there
(``benchmarks/gpu.py`` runs the full shape on a GPU).

    python benchmarks/probe_scale.py --out probe_scale.json
    python benchmarks/probe_scale.py --block-rows 1250 --storage host   # the streamed path, 8 blocks
    python benchmarks/probe_scale.py --compare-storage                  # both in one process, and their ratio
    python benchmarks/probe_scale.py --quick --out /tmp/ps.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from clipbench.tasks.probe_precondition import DEFAULT_PRECONDITIONER, PRECONDITIONERS

sys.path.insert(0, str(Path(__file__).resolve().parent))

IMAGENET = (1_281_167, 768, 1000)


def make_features(n: int, dim: int, classes: int, *, rank: int = 64, separation: float = 0.6,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded features with class means on a low-rank subspace plus noise (CLIP-like), float32."""
    rng = np.random.default_rng(seed)
    rank = min(rank, dim)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    means = rng.standard_normal((classes, rank)) * separation
    labels = np.arange(n) % classes  # every class present in any prefix of >= classes rows
    rng.shuffle(labels)
    latent = means[labels] + rng.standard_normal((n, rank))
    X = latent @ basis.T + 0.1 * rng.standard_normal((n, dim)) + 0.5 * rng.standard_normal(dim)
    return X.astype(np.float32), labels.astype(np.int64)


def compare_storage(X, y, X_test, y_test, device: str = "cpu", threads: int | None = None) -> dict:
    """The same sweep twice in this process: rows on the device, then streamed from host memory in 8
    blocks (the path for problems the device cannot hold). Same chosen C and top-1, and what streaming costs
    (``host_over_device``: the time ratio)."""
    import clipbench

    runs: dict = {}
    for storage in ("device", "host"):
        start = time.perf_counter()
        result = clipbench.linear_probe(train=(X, y), test=(X_test, y_test), device=device, storage=storage,
                                        block_rows=len(y) // 8 + 1 if storage == "host" else None,
                                        num_threads=threads)
        runs[storage] = {"seconds": time.perf_counter() - start, "C": result.C, "top1": result.top1,
                         "all_converged": result.convergence["all_converged"],
                         "method": result.convergence["method"]}
    runs["same_choice"] = runs["device"]["C"] == runs["host"]["C"] and runs["device"]["top1"] == runs["host"]["top1"]
    runs["host_over_device"] = runs["host"]["seconds"] / runs["device"]["seconds"]
    runs["rows"] = len(y)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="training rows (validation carved from them)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--block-rows", type=int, default=None, help="rows per block (default: the solver's plan)")
    parser.add_argument("--storage", choices=("device", "host"), default=None,
                        help="where the blocks live (host: streamed to the device per block)")
    parser.add_argument("--preconditioner", choices=PRECONDITIONERS, default=None,
                        help=f"the torch solver's CG preconditioner (default: {DEFAULT_PRECONDITIONER})")
    parser.add_argument("--compare-storage", action="store_true",
                        help="run the sweep twice, rows on the device and host-streamed in 8 blocks; print the ratio")
    parser.add_argument("--quick", action="store_true", help="600 x 32, 10 classes (for tests)")
    parser.add_argument("--progress", action="store_true", help="a progress bar over the sweep's fits (stderr)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.dim, args.classes = 600, 32, 10
    if args.n < 5 * args.classes or args.dim < 1 or args.classes < 2:
        print("error: need --n >= 5 x --classes, --dim >= 1, --classes >= 2", file=sys.stderr)
        return 2
    from _common import machine_info, print_table, write_summary

    import clipbench

    n_test = max(args.n // 5, args.classes)
    X, y = make_features(args.n + n_test, args.dim, args.classes)
    if args.compare_storage:
        runs = compare_storage(X[: args.n], y[: args.n], X[args.n:], y[args.n:], args.device, args.threads)
        print_table(f"Linear probe, rows on the device vs host-streamed ({args.n} x {args.dim}, {args.classes} classes, "
                    f"{args.device}, same process)", ["storage", "seconds", "chosen C", "test top-1", "all converged"],
                    [[k, runs[k]["seconds"], runs[k]["C"], runs[k]["top1"], runs[k]["all_converged"]]
                     for k in ("device", "host")])
        for k in ("device", "host"):
            print(f"{k}: {runs[k]['method']}")
        print(f"\nhost-streamed / device time: {runs['host_over_device']:.3f}; same choice and top-1: "
              f"{runs['same_choice']}")
        write_summary(args.out, {"benchmark": "probe_scale", "machine": machine_info(("numpy",)), "args": vars(args),
                                 "compare_storage": runs})
        return 0 if runs["same_choice"] else 1
    start = time.perf_counter()
    result = clipbench.linear_probe(train=(X[: args.n], y[: args.n]), test=(X[args.n:], y[args.n:]),
                                    device=args.device, num_threads=args.threads, progress=args.progress,
                                    block_rows=args.block_rows, storage=args.storage,
                                    preconditioner=args.preconditioner)
    seconds = time.perf_counter() - start
    iters = int(sum(result.n_iter["sweep"]) + result.n_iter["refit"])
    fits = [*result.convergence["sweep"], result.convergence["refit"]]
    matmuls = sum(fit.get("matmuls", 0) for fit in fits)
    matmuls32 = sum(fit.get("matmuls32", 0) for fit in fits)
    cg_iterations = sum(fit.get("cg_iterations", 0) for fit in fits)
    share = args.n * args.dim * args.classes / (IMAGENET[0] * IMAGENET[1] * IMAGENET[2])
    rows = [[f"{args.n} x {args.dim}, {args.classes} classes", f"1/{1 / share:.0f}", seconds, len(result.sweep), iters,
             cg_iterations, f"{matmuls} + {matmuls32} f32", result.C, result.top1, result.convergence["all_converged"]]]
    print(f"solver: {result.convergence['method']}")
    print_table(f"Linear probe at scale (torch Newton, {args.device}, full C sweep + refit)",
                ["problem", "of ImageNet", "seconds", "sweep points", "Newton steps", "CG iterations", "matmuls (f64 + f32)",
                 "chosen C", "test top-1", "all converged"], rows)
    write_summary(args.out, {"benchmark": "probe_scale", "machine": machine_info(("numpy",)), "args": vars(args),
                             "n_train": args.n, "n_test": n_test, "dim": args.dim, "classes": args.classes,
                             "share_of_imagenet": share, "seconds": seconds, "iterations": iters,
                             "seconds_per_iteration": seconds / max(iters, 1), "sweep_points": len(result.sweep),
                             "cg_iterations": cg_iterations, "matmuls": matmuls, "matmuls32": matmuls32,
                             "all_converged": result.convergence["all_converged"],
                             "C": result.C, "top1": result.top1, "time_sweep_s": result.time_sweep_s,
                             "time_refit_s": result.time_refit_s, "converged": result.converged,
                             "method": result.convergence["method"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
