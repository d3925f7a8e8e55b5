"""`clipbench run`: evaluate models on a suite and print the result table (work is in clipbench.api.run)."""

from __future__ import annotations

import argparse

from clipbench.engine.options import add_arguments, all_options, overrides_from_args
from clipbench.foundations.config import check_device
from clipbench.foundations.errors import ClipbenchError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="evaluate models on a suite (zero-shot, linear probe)",
                              description="Evaluate one or more models on a suite; features are cached and reused.")
    p.add_argument("--model", action="append",
                   help="model name(s), checkpoint path(s) or openclip:/hf: specs, comma-separated or repeated; a "
                        "path that contains a comma: repeat --model, or write the comma as \\, "
                                   "(default: the suite's model)")
    p.add_argument("--suite", help="built-in suite name or a suite YAML path (default: smoke)")
    p.add_argument("--task", action="append",
                   help="only these tasks, comma-separated or repeated: of the suite, or, without --suite, "
                        "alone over --dataset (names: `clipbench list tasks`)")
    p.add_argument("--dataset", action="append",
                   help="only these datasets, comma-separated or repeated (default: the suite's)")
    p.add_argument("--data-root", help="datasets directory (default: $CLIPBENCH_DATA)")
    p.add_argument("--cache-dir", help="models/features cache (default: $CLIPBENCH_CACHE)")
    p.add_argument("--results-dir", help="where results.jsonl and the leaderboards go (default: results/)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    add_arguments(p, all_options().values())
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="how the run's summary is printed (default: table; json and csv for scripts)")
    p.add_argument("--shard-jobs", action="store_true",
                   help="under torchrun or in a job array: give each process whole (model, dataset) jobs, big ones "
                        "cut into pieces, by a plan balanced on images x GFLOPs, instead of a slice of every split "
                        "(for many jobs of different sizes)")
    p.add_argument("--rank", type=int,
                   help="job arrays (no torchrun): this process is rank N of --world-size; it extracts its share of "
                        "every split into the shared cache and exits (docs/scale.md)")
    p.add_argument("--world-size", type=int,
                   help="job arrays: the number of ranks; without --rank (and --slurm) this is the final step that "
                        "waits for every rank's shards and scores")
    p.add_argument("--slurm", action="store_true",
                   help="job arrays: take --rank (and --world-size unless given) from SLURM_ARRAY_TASK_ID/"
                        "SLURM_ARRAY_TASK_COUNT, or SLURM_PROCID/SLURM_NTASKS under srun")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from clipbench.api import run

    if args.device is not None:
        check_device(args.device)
    rank, world_size = args.rank, args.world_size
    if args.slurm:
        from clipbench.engine.job_array import slurm_rank

        if rank is not None:
            raise ClipbenchError("give --rank or --slurm, not both")
        rank, world_size = slurm_rank(world_size=world_size)
    try:
        records = run(split_list_flag(args.model), suite=args.suite, datasets=split_list_flag(args.dataset),
                      tasks=split_list_flag(args.task), data_root=args.data_root,
                      cache_dir=args.cache_dir, results_dir=args.results_dir, device=args.device,
                      progress=not args.no_progress, shard_jobs=args.shard_jobs, rank=rank, world_size=world_size,
                      **overrides_from_args(args, all_options().values()))
    except BaseException as exc:  # failed or interrupted: show what completed, then the CLI prints the error
        _print_completed(getattr(exc, "completed_records", None), args.results_dir)
        raise
    from clipbench.api import is_main_process, results_file

    if not is_main_process():  # under torchrun only rank 0 reports (and wrote) the results
        return 0
    if getattr(records, "note", None):  # a job-array rank that only extracted
        print(records.note)
        return 0
    if args.format != "table":
        from clipbench.foundations.tables import render

        rows = summary_rows(records) + [{"dataset": m["dataset"], "note": f"skipped: not present ({m['how']})"}
                                        for m in getattr(records, "skipped", [])]
        print(render(rows, args.format))
        return 0
    print(format_records(records))
    for item in getattr(records, "skipped", []):
        print(f"skipped {item['dataset']}: not present ({item['how']})")
    from clipbench.results.records import record_variant
    from clipbench.results.suite_averages import summary_lines

    for line in summary_lines(list(records), record_variant):  # the suite's one-number averages, if it has any
        print(line)
    if records:
        print(f"\nresults appended to {results_file(args.results_dir)}")
    return 0


def split_list_flag(values: list[str] | None) -> list[str] | None:
    """Repeated, comma-separated flag values as one list; ``\\,`` is a literal comma, and a value that is an
    existing file keeps its commas."""
    if not values:
        return None
    import os
    import re

    items = []
    for value in values:
        if "," in value and os.path.exists(value):
            items.append(value)
            continue
        items += [part.replace("\\,", ",").strip() for part in re.split(r"(?<!\\),", value)]
    if any(not item for item in items):
        raise ClipbenchError(f"expected a comma-separated list without empty entries, got {','.join(values)!r}")
    return items


def _print_completed(records: list[dict] | None, results_dir: str | None) -> None:
    from clipbench.api import is_main_process, results_file

    if not records or not is_main_process():
        return
    print(format_records(records))
    print(f"\n{len(records)} completed result(s) kept in {results_file(results_dir)}; the run did not finish:",
          flush=True)


def summary_rows(records: list[dict]) -> list[dict]:
    """The run's summary as plain rows (``--format json|csv``): one per record, primary metric first, then
    every metric and the record fields the tasks declare as summary columns (e.g. the probe's C)."""
    from clipbench.results.records import record_variant
    from clipbench.tasks.registry import task_for_record

    fields = [c for c in summary_columns(records) if not any(c in r["metrics"] for r in records)]
    rows = []
    for r in records:
        ci, task = r.get("ci95") or {}, task_for_record(r["task"])
        rows.append({"model": r["model"], "dataset": r["dataset"], "task": r["task"], "language": r.get("language"),
                     "variant": record_variant(r),
                     "metric": r["primary_metric"], "value": r["metrics"].get(r["primary_metric"]),
                     "ci_low": ci.get("low"), "ci_high": ci.get("high"), **r["metrics"],
                     **{f: r.get(f) for f in fields},
                     "n": r["n_samples"], "note": task.table_note(r) if task is not None else "",
                     "record_id": r.get("record_id")})
    return rows


def summary_columns(records: list[dict]) -> list[str]:
    """The columns the records' tasks declare (``Task.summary_columns``), in order of first appearance."""
    from clipbench.tasks.registry import task_for_record

    tasks = [task_for_record(r["task"]) for r in records]
    return list(dict.fromkeys(c for task in tasks if task is not None for c in task.summary_columns))


def _column_cell(record: dict, column: str) -> str:
    """A metric in percent (two decimals), or a record field such as the probe's C (three digits)."""
    if column in record["metrics"]:
        return _pct(record["metrics"][column])
    value = record.get(column)
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def format_records(records: list[dict]) -> str:
    """A plain-text table: model, dataset, task, primary metric with CI, the tasks' declared columns, n
    (+ task notes)."""
    from clipbench.tasks.registry import task_for_record

    columns = summary_columns(records)
    header = ("model", "dataset", "task", "metric", "value", "95% CI", *columns, "n")
    rows, notes = [], []
    for r in records:
        m, ci = r["metrics"], r.get("ci95")
        primary = r["primary_metric"]
        rows.append((r["model"], r["dataset"], r["task"], primary, f"{m[primary]:.2f}",
                     f"[{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "-",
                     *(_column_cell(r, c) for c in columns), str(r["n_samples"])))
        task = task_for_record(r["task"])
        notes.append(task.table_note(r) if task is not None else "")
    if any(notes):
        header = (*header, "note")
        rows = [(*row, note) for row, note in zip(rows, notes, strict=True)]
    if any(r.get("language") not in (None, "en") for r in records):  # a multilingual run: say which row is which
        header = (*header[:3], "language", *header[3:])
        rows = [(*row[:3], r.get("language") or "-", *row[3:]) for row, r in zip(rows, records, strict=True)]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
