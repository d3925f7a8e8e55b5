"""Before any model loads: the run's models and datasets by name, the datasets on disk, the results
directory writable and readable; after a failure: keep what completed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import check_writable, ensure_dir, inside
from clipbench.results.records import (
    LEADERBOARD_FILE,
    PIVOT_FILE,
    RESULTS_FILE,
    read_records,
    write_leaderboards,
)
from clipbench.results.samples import SAMPLES_DIR

log = logging.getLogger(__name__)


class RunRecords(list):
    """The records of a run (a list), plus ``skipped``: the datasets ``skip_missing`` left out, with how
    to get each (``[{"dataset", "how"}]``)."""

    def __init__(self, records: Sequence[dict] = (), skipped: Sequence[dict] = ()) -> None:
        super().__init__(records)
        self.skipped = list(skipped)
        self.note: str | None = None  # a job-array rank that extracted only: what it did and what comes next


def split_names(value: str | Sequence[Any] | None) -> list[Any] | None:
    """A comma-separated string or a sequence as a list; empty or repeated names are one-line errors."""
    if value is None:
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        if not items or any(not v for v in items):
            raise ClipbenchError(f"expected a comma-separated list without empty entries, got {value!r}")
    else:
        items = list(value)
    if not items:
        raise ClipbenchError("expected at least one name")
    names = [i for i in items if isinstance(i, str)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ClipbenchError(f"{', '.join(repeated)} given more than once")
    return items


def select_tasks(suite, tasks, datasets) -> Any:
    """The suite for ``run --task``: the suite (default smoke) narrowed to ``tasks``, or, with no suite,
    those tasks alone over ``datasets``; unknown names get "did you mean"."""
    from dataclasses import replace

    from clipbench.suites import Suite, load_suite
    from clipbench.tasks.registry import TASKS

    if tasks is None:
        return "smoke" if suite is None else suite
    names = [TASKS.canonical(n) for n in split_names(tasks)]
    if suite is None:
        if not datasets:
            raise ClipbenchError(f"--task {','.join(names)} without --suite needs --dataset: the data to run it on")
        return Suite(name="task:" + "+".join(names), version=1, datasets=(), tasks=tuple(names))
    suite_obj = suite if isinstance(suite, Suite) else load_suite(suite)
    others = [n for n in names if n not in suite_obj.tasks]
    if others:
        raise ClipbenchError(f"suite {suite_obj.name!r} runs {', '.join(suite_obj.tasks)}, not {others[0]}; leave "
                             f"out --suite to run {others[0]} alone over --dataset")
    return replace(suite_obj, tasks=tuple(n for n in suite_obj.tasks if n in names),
                   task_options={k: v for k, v in suite_obj.task_options.items() if k in names})


def present_datasets(adapters: list, data_root: Path, skip_missing: bool) -> tuple[list, list[dict]]:
    """Check every dataset is on disk before any model is loaded; list the missing ones with how to get them."""
    from clipbench.datasets.base import DatasetAdapter
    from clipbench.datasets.download import describe_download

    missing = []
    for adapter in adapters:
        knows = type(adapter).is_present is not DatasetAdapter.is_present  # an adapter that cannot tell: try it
        if knows and not adapter.is_present(data_root):
            missing.append({"dataset": adapter.name, "how": describe_download(adapter).replace("<data-root>",
                                                                                              str(data_root))})
    if not missing:
        return adapters, []
    listing = "; ".join(f"{m['dataset']} ({m['how']})" for m in missing)
    where = f"the data root {data_root}" + ("" if Path(data_root).is_dir() else " (which does not exist)")
    if not skip_missing:
        raise ClipbenchError(f"{len(missing)} of {len(adapters)} datasets are not under {where}: {listing}. "
                             "Get them, or pass --skip-missing to run the others")
    present = [a for a in adapters if a.name not in {m["dataset"] for m in missing}]
    if not present:
        raise ClipbenchError(f"none of the suite's datasets is under {where}: {listing}")
    log.warning("skipping %d missing dataset(s): %s", len(missing), listing)
    return present, missing


def keep_completed(exc: BaseException, records: list[dict], results_dir: Path | None) -> None:
    """A failed run still publishes its completed rows: leaderboards regenerated, and the records on
    ``exc.completed_records`` for the caller (the CLI prints their table before the error line)."""
    if results_dir is not None and records:
        try:
            write_leaderboards(results_dir)
        except Exception as lb_exc:  # never hide the original error behind this one
            log.warning("could not regenerate the leaderboards after the failure: %s", lb_exc)
    with contextlib.suppress(AttributeError, TypeError):
        exc.completed_records = list(records)


def check_results_dir(results_dir: Path) -> None:
    """One-line error up front if the results dir is unusable or holds records this version cannot read."""
    ensure_dir(results_dir)
    for name in (RESULTS_FILE, LEADERBOARD_FILE, PIVOT_FILE):  # every output path, before any work
        check_writable(results_dir / name, append=name == RESULTS_FILE, within=results_dir)
    if (results_dir / SAMPLES_DIR).exists() or (results_dir / SAMPLES_DIR).is_symlink():
        inside(results_dir, results_dir / SAMPLES_DIR / "record.parquet")  # per-sample files stay inside too
    if (results_dir / RESULTS_FILE).is_file():
        read_records(results_dir / RESULTS_FILE)  # raises on a newer schema; warns (once) about bad lines


def adapter_of(item):
    """A dataset adapter from its name or spec (an adapter object is taken as is)."""
    from clipbench.datasets import get_dataset
    from clipbench.datasets.base import DatasetAdapter

    return item if isinstance(item, DatasetAdapter) else get_dataset(item)


def model_of(spec, device: str, paths: Paths, verify_data: bool = False):
    """A model from its name, path or spec (a model object is moved to ``device``); ``verify_data`` hashes a
    local checkpoint's bytes instead of trusting its cached SHA-256 (the data files' manifest rule)."""
    from clipbench.models import load_model
    from clipbench.models.base import ImageTextModel

    if isinstance(spec, ImageTextModel):
        return spec.to(device)
    return load_model(spec, device=device, cache_dir=paths.cache_dir, offline=paths.offline, lazy=True,
                      verify_data=verify_data)
