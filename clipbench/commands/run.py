"""`clipbench run`: evaluate models on a suite and print the result table (work is in clipbench.api.run)."""

from __future__ import annotations

import argparse

from clipbench.config import check_device
from clipbench.errors import ClipbenchError


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="evaluate models on a suite (zero-shot, linear probe)",
                              description="Evaluate one or more models on a suite; features are cached and reused.")
    p.add_argument("--model", help="model name(s), checkpoint path(s) or openclip:/hf: specs, comma-separated "
                                   "(default: the suite's model)")
    p.add_argument("--suite", default="smoke", help="built-in suite name or a suite YAML path (default: smoke)")
    p.add_argument("--dataset", help="only these datasets, comma-separated (default: the suite's)")
    p.add_argument("--data-root", help="datasets directory (default: $CLIPBENCH_DATA)")
    p.add_argument("--cache-dir", help="models/features cache (default: $CLIPBENCH_CACHE)")
    p.add_argument("--results-dir", help="where results.jsonl and the leaderboards go (default: results/)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--batch-size", type=int, help="images per forward pass")
    p.add_argument("--workers", type=int, help="DataLoader worker processes")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="fp16/bf16 use autocast (fp16: CUDA only)")
    p.add_argument("--limit", type=int, help="evaluate a seeded random subset of N samples per split (quick check)")
    p.add_argument("--seed", type=int, help="seed for subsets, the validation carve and the bootstrap")
    p.add_argument("--offline", action="store_true", default=None, help="never download anything")
    p.add_argument("--probe-features", choices=("projected", "pre_projection"),
                   help="linear-probe features (default: projected)")
    p.add_argument("--solver", choices=("torch", "sklearn"), help="linear-probe solver (default: torch)")
    p.add_argument("--fewshot-k", type=int, help="few-shot linear probe with K training images per class")
    p.add_argument("--seeds", type=_int_list, help="few-shot seeds, comma-separated (e.g. 0,1,2)")
    p.add_argument("--bootstrap", type=int, help="bootstrap resamples for the 95%% CI (0: no CI; default 1000)")
    p.add_argument("--per-class", action="store_true", default=None, help="store a per-class recall table")
    p.add_argument("--threads", type=int, help="torch CPU threads (recorded in each result; default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--shard-jobs", action="store_true",
                   help="under torchrun: give each process whole (model, dataset) jobs instead of a slice of "
                        "every split (for many small jobs)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.api import run

    for flag in ("batch_size", "workers", "limit", "fewshot_k", "bootstrap", "threads"):
        value = getattr(args, flag)
        if value is not None and (value < 0 or (value == 0 and flag not in ("workers", "bootstrap"))):
            raise ClipbenchError(f"--{flag.replace('_', '-')} must be {'non-negative' if flag in ('workers', 'bootstrap') else 'positive'}, got {value}")
    if args.device is not None:
        check_device(args.device)
    try:
        records = run(args.model, suite=args.suite, datasets=args.dataset, data_root=args.data_root,
                      cache_dir=args.cache_dir, results_dir=args.results_dir, device=args.device,
                      batch_size=args.batch_size, workers=args.workers, precision=args.precision, limit=args.limit,
                      seed=args.seed, offline=args.offline, probe_features=args.probe_features,
                      fewshot_k=args.fewshot_k, seeds=args.seeds, solver=args.solver, bootstrap=args.bootstrap,
                      per_class=args.per_class, threads=args.threads, progress=not args.no_progress,
                      shard_jobs=args.shard_jobs)
    except BaseException as exc:  # failed or interrupted: show what completed, then the CLI prints the error
        _print_completed(getattr(exc, "completed_records", None), args.results_dir)
        raise
    from clipbench.distributed import is_main_process

    if not is_main_process():  # under torchrun only rank 0 reports (and wrote) the results
        return 0
    print(format_records(records))
    if records:
        from clipbench.config import Paths

        print(f"\nresults appended to {Paths.resolve(results_dir=args.results_dir).results_dir / 'results.jsonl'}")
    return 0


def _print_completed(records: list[dict] | None, results_dir: str | None) -> None:
    from clipbench.distributed import is_main_process

    if not records or not is_main_process():
        return
    from clipbench.config import Paths

    print(format_records(records))
    print(f"\n{len(records)} completed result(s) kept in "
          f"{Paths.resolve(results_dir=results_dir).results_dir / 'results.jsonl'}; the run did not finish:", flush=True)


def format_records(records: list[dict]) -> str:
    """A plain-text table: model, dataset, task, primary metric with CI, top-1, top-5, C, n."""
    header = ("model", "dataset", "task", "metric", "value", "95% CI", "top1", "top5", "C", "n")
    rows = []
    for r in records:
        m, ci = r["metrics"], r.get("ci95")
        primary = r["primary_metric"]
        rows.append((r["model"], r["dataset"], r["task"], primary, f"{m[primary]:.2f}",
                     f"[{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "-", f"{m['top1']:.2f}",
                     f"{m['top5']:.2f}" if "top5" in m else "-", f"{r['C']:.3g}" if r.get("C") is not None else "-",
                     str(r["n_samples"])))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
