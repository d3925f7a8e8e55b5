"""Helpers shared by the benchmark scripts: what machine a number came from, a table, a JSON summary.

Scripts run as ``python benchmarks/<name>.py`` and import this with the script's folder on sys.path.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from clipbench.foundations.fileio import atomic_write_json


def machine_info(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """Date, CPU, thread counts and versions: shared machines make absolute timings noisy."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = [round(x, 2) for x in os.getloadavg()]
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in packages:
        with contextlib.suppress(ImportError):
            versions[name] = getattr(importlib.import_module(name), "__version__", "unknown")
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions,
    }


def format_cell(value: Any) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.3f}"
    return "-" if value is None else str(value)


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A fixed-width table that is also valid Markdown."""
    cells = [[format_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return "\n".join(lines)


def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    print(f"\n{title}\n{markdown_table(headers, rows)}")


def write_summary(path: str | os.PathLike | None, summary: dict[str, Any]) -> None:
    """Write the JSON summary atomically (no half-written file under the final name)."""
    if path:
        atomic_write_json(Path(path), summary)
        print(f"\nwrote {path}")


def interleaved_runs(methods: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Time every method ``repeats`` times, alternating the order each round (so neither side always runs
    warm or cold); returns the wall times per method and each method's last result."""
    times: dict[str, list[float]] = {m: [] for m in methods}
    results: dict[str, Any] = {}
    order = list(methods)
    for round_index in range(repeats):
        for method in (order if round_index % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            results[method] = methods[method]()
            times[method].append(time.perf_counter() - start)
    return times, results
