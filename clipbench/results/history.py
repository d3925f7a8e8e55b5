"""History and cost: where each record came from, what it cost, and each row's primary metric over time.

``results.jsonl`` is append-only, so it already is the history; what it lacked was provenance and
cost. ``Meter`` (one per run, owned by ``RunContext``) adds to every record:

* ``git``: ``{"commit", "dirty"}`` of the working directory's repository (``None`` outside one);
  ``dirty`` ignores untracked files. With the user's ``--tag`` a team can see what changed.
* ``cost``: the device name; seconds per phase (``load``: loading the model, the same for each of
  its records since it is loaded once; ``data``: loading splits; ``text``: the text classifier;
  ``image``: image features, cache hits included; ``task``: everything else, i.e. scoring);
  images per second of extraction, encoder only (time inside ``encode_image``, synchronised on
  CUDA) and end to end (decoding, preprocessing, encoder and feature-store writes), both ``None``
  when every feature came from the cache (``images_extracted`` is then 0); and peak memory:
  ``torch.cuda.max_memory_allocated`` during the record on CUDA, else the process's peak RSS
  (``resource.getrusage``), named by ``peak_memory_kind``.

``history_rows`` / ``format_history`` turn a results file into per-(model, dataset, task, variant)
series for ``clipbench history``; ``clipbench.results.plots.trend_plot`` and ``throughput_plot`` draw them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clipbench.foundations.escaping import plain_text
from clipbench.foundations.torch_env import device_type
from clipbench.results.records import record_key, record_variant, records_of
from clipbench.results.schema import primary_metric

log = logging.getLogger(__name__)


def git_state(cwd: str) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the git repository containing ``cwd``; ``None`` if there is none."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def device_name(device: str) -> str:
    kind = device_type(device)
    if kind == "cuda":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    if kind == "cpu":
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return "cpu: " + line.split(":", 1)[1].strip()
        return "cpu: " + (platform.processor() or platform.machine() or "unknown")
    return str(device)


def _max_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


class Meter:
    """Times the phases of each record and counts the images its extraction encoded."""

    def __init__(self, device: str) -> None:
        self.device = str(device)
        self._cuda = device_type(device) == "cuda"  # torch is asked only for a CUDA device's memory
        self._device_name: str | None = None
        self._load_s: dict[str, float] = {}
        self._git: tuple[dict | None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._start: float | None = None
        self._phases = {"data": 0.0, "text": 0.0, "image": 0.0}
        self._extracted, self._encoder_s, self._extract_wall_s = 0, 0.0, 0.0

    def _begin(self) -> None:
        if self._start is None:
            self._start = time.perf_counter()
            if self._cuda:
                import torch

                torch.cuda.reset_peak_memory_stats(self.device)

    def model_loaded(self, model_name: str, seconds: float) -> None:
        self._load_s[model_name] = float(seconds)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._begin()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._phases[name] += time.perf_counter() - t0

    @contextlib.contextmanager
    def extraction(self) -> Iterator[None]:
        """Image features: wall time, plus the samples and encoder seconds this process spent encoding."""
        from clipbench.features.extraction import FORWARD_STATS

        samples0, encoder0 = FORWARD_STATS.samples, FORWARD_STATS.encoder_s
        with self.phase("image"):
            t0 = time.perf_counter()
            yield
            wall = time.perf_counter() - t0
        if FORWARD_STATS.samples > samples0:  # something was encoded (not a pure cache hit)
            self._extracted += FORWARD_STATS.samples - samples0
            self._encoder_s += FORWARD_STATS.encoder_s - encoder0
            self._extract_wall_s += wall

    def git(self) -> dict | None:
        """The working directory's git state, asked once per run."""
        if self._git is None:
            self._git = (git_state(os.getcwd()),)
        return self._git[0]

    def record_cost(self, model_name: str) -> dict:
        """The cost fields of the record being built now; starts the next record's meter afresh."""
        self._begin()
        total = time.perf_counter() - self._start
        if self._device_name is None:
            self._device_name = device_name(self.device)
        if self._cuda:
            import torch

            peak, kind = int(torch.cuda.max_memory_allocated(self.device)), "cuda_max_allocated"
        else:
            peak, kind = _max_rss_bytes(), "process_max_rss"

        def rate(seconds: float) -> float | None:
            return round(self._extracted / seconds, 2) if self._extracted and seconds > 0 else None

        phases = {"load": self._load_s.get(model_name), **self._phases}
        phases["task"] = max(0.0, total - sum(self._phases.values()))
        cost = {
            "device_name": self._device_name,
            "phase_s": {k: None if v is None else round(v, 4) for k, v in phases.items()},
            "images_extracted": self._extracted,
            "images_per_s_encoder": rate(self._encoder_s),
            "images_per_s_end_to_end": rate(self._extract_wall_s),
            "peak_memory_bytes": peak, "peak_memory_kind": kind,
        }
        self._reset()
        return cost


# ---------------------------------------------------------------------------------------------
# history: each row's primary metric over time


@dataclass(frozen=True)
class HistoryPoint:
    model: str
    dataset: str
    task: str
    variant: str
    timestamp: str
    metric: str
    value: float
    ci_low: float | None
    ci_high: float | None
    tag: str | None
    commit: str | None
    dirty: bool | None
    images_per_s: float | None
    record_id: str | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.model, self.dataset, self.task, self.variant


def history_points(source: str | os.PathLike | list[dict], model: str | None = None, dataset: str | None = None,
                   task: str | None = None) -> list[HistoryPoint]:
    """Every record of ``source`` (results dir or results.jsonl) as a point, sorted by row then time."""
    points = []
    for r in records_of(source):
        key = record_key(r)
        if (model and key[0] != model) or (dataset and key[1] != dataset) or (task and key[2] != task):
            continue
        metric = primary_metric(r)
        value = (r.get("metrics") or {}).get(metric)
        if not isinstance(value, (int, float)):
            continue
        ci = r.get("ci95") or {}
        git = r.get("git") or {}
        cost = r.get("cost") or {}
        points.append(HistoryPoint(*key, str(r.get("timestamp") or ""), metric, float(value), ci.get("low"),
                                   ci.get("high"), r.get("tag"), git.get("commit"), git.get("dirty"),
                                   cost.get("images_per_s_end_to_end"), r.get("record_id")))
    # sorted() is stable: records with the same timestamp keep their append order
    return sorted(points, key=lambda p: (p.key, p.timestamp))


def format_history(points: list[HistoryPoint]) -> str:
    """Plain text: one block per row, one line per record, change against the previous record."""
    if not points:
        return "no records match"
    blocks, current, previous = [], None, None
    for p in points:
        if p.key != current:
            current, previous = p.key, None
            variant = f" [{p.variant}]" if p.variant else ""
            blocks.append(plain_text(f"{p.model} / {p.dataset} / {p.task}{variant} ({p.metric})"))
        ci = f"[{p.ci_low:.2f}, {p.ci_high:.2f}]" if p.ci_low is not None and p.ci_high is not None else "-"
        change = f"{p.value - previous:+.2f}" if previous is not None else ""
        commit = (p.commit[:10] + ("+dirty" if p.dirty else "")) if p.commit else "-"
        line = f"  {p.timestamp:25s} {p.value:7.2f} {ci:16s} {change:>7s}  {commit:16s} {p.tag or ''}"
        blocks.append(plain_text(line.rstrip()))  # names and tags are data: no escape sequence reaches the terminal
        previous = p.value
    return "\n".join(blocks)


#: the columns of ``--format json|csv`` (also when no record matches, so a CSV still has its header)
HISTORY_COLUMNS = ("model", "dataset", "task", "variant", "timestamp", "metric", "value", "ci_low", "ci_high",
                   "change", "commit", "dirty", "tag", "images_per_s", "record_id")


def history_rows(points: list[HistoryPoint]) -> list[dict]:
    """One plain dict per record for ``--format json|csv``: the row's key, the value with its CI, the change
    against the row's previous record, and the provenance (commit, dirty, tag, measured images/s)."""
    rows, previous = [], {}
    for p in points:
        before = previous.get(p.key)
        rows.append({"model": p.model, "dataset": p.dataset, "task": p.task, "variant": p.variant,
                     "timestamp": p.timestamp, "metric": p.metric, "value": p.value, "ci_low": p.ci_low,
                     "ci_high": p.ci_high, "change": None if before is None else p.value - before,
                     "commit": p.commit, "dirty": p.dirty, "tag": p.tag, "images_per_s": p.images_per_s,
                     "record_id": p.record_id})
        previous[p.key] = p.value
    return rows


def throughput_points(source: str | os.PathLike | list[dict], task: str | None = None) -> list[dict]:
    """Per (model, dataset, task), the latest default-variant record with a measured end-to-end throughput:
    model, family, task, dataset, x (images/s), y (primary metric).

    A run on cached features measured no throughput, and a variant (``--limit``, bf16, ...) is not the
    model's result: a full run served from the cache must not be drawn as its ``--limit`` smoke run.
    """
    latest: dict[tuple, dict] = {}
    for r in records_of(source):
        rate = (r.get("cost") or {}).get("images_per_s_end_to_end")
        metric = primary_metric(r)
        if (rate is None or (r.get("metrics") or {}).get(metric) is None or (task and r["task"] != task)
                or record_variant(r)):
            continue
        latest[record_key(r)] = {"model": r["model"], "family": r.get("model_family") or "other", "task": r["task"],
                                 "dataset": r["dataset"], "metric": metric, "x": float(rate),
                                 "y": float(r["metrics"][metric])}
    return list(latest.values())
