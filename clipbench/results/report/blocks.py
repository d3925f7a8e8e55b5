"""The report's format-free blocks (a heading, a table of text cells, a note, figures, what is not drawn),
and the blocks that name no task: models, history and cost, provenance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from clipbench.foundations.fileio import atomic_write_bytes
from clipbench.foundations.tables import fmt_params
from clipbench.results.labels import unlabelled
from clipbench.results.report.reading import Provenance


@dataclass
class Block:
    heading: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, file name)
    missing: list[str] = field(default_factory=list)  # one line per plot that is not drawn, saying why
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, relative path): pages beside the report


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def number(value) -> float | None:
    """A finite number, else None: a task's own fields are not type-checked on read, so nothing is trusted."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def fmt_ci(value, low, high) -> str:
    value, low, high = number(value), number(low), number(high)
    if value is None:
        return "–"
    if low is None or high is None:
        return f"{value:.1f}"
    return f"{value:.1f} [{low:.1f}, {high:.1f}]"


def fmt_num(value, scale: float = 1.0, digits: int = 1) -> str:
    value = number(value)
    return "–" if value is None else f"{value / scale:.{digits}f}"


def bars_table(rows: dict[str, dict[str, tuple[float | None, float | None, float | None]]]) -> pd.DataFrame:
    """{model: {column: (value, ci_low, ci_high)}} as the table ``plots.grouped_bars`` draws."""
    columns = list(dict.fromkeys(c for cells in rows.values() for c in cells))
    data = {(field, c): [rows[m].get(c, (None, None, None))[i] for m in rows]
            for i, field in enumerate(("value", "ci_low", "ci_high")) for c in columns}
    frame = pd.DataFrame(data, index=list(rows))
    return frame.astype(float)

def history_block(records: list[dict], out: Path, plots, names: dict[str, str]) -> tuple[Block, list[Path]]:
    """Primary metric over time per row (with CIs and tags), and accuracy against measured throughput."""
    from clipbench.results.history import history_points, throughput_points

    points = history_points(records)
    by_row: dict[tuple, list] = {}
    for p in points:
        by_row.setdefault((p.model, p.dataset, p.task, p.variant), []).append(p)
    rows = [[names.get(m, m), d, t, v or "-", str(len(ps)), f"{ps[0].value:.2f}", f"{ps[-1].value:.2f}",
             f"{ps[-1].value - ps[0].value:+.2f}"] for (m, d, t, v), ps in by_row.items()]
    block = Block("History and cost", ["model", "dataset", "task", "variant", "runs", "first", "latest", "change"],
                   rows, "Every record in results.jsonl, oldest first; clipbench history lists them run by run.")
    files: list[Path] = []
    if any(len(ps) > 1 for ps in by_row.values()):
        atomic_write_bytes(out / "trend.png", plots.trend_plot(points))
        block.figures.append(("Primary metric over time per row (band: 95% CI; labels: --tag)", "trend.png"))
        files.append(out / "trend.png")
    else:
        block.missing.append("No trend plot: every row has a single run so far.")
    throughput = throughput_points(records)
    if throughput:
        atomic_write_bytes(out / "throughput.png", plots.throughput_plot(throughput, names))
        block.figures.append(("Primary metric against measured end-to-end images/s (extraction), per task",
                              "throughput.png"))
        files.append(out / "throughput.png")
    else:
        block.missing.append("No throughput plot: no record measured an extraction (all features came from the cache).")
    return block, files


def representatives(labels: list[str]) -> list[str]:
    """One label per model: its default run's, else its first variant run's (a model run only with --limit)."""
    chosen: dict[str, str] = {}
    for label in labels:
        base = unlabelled(label)
        if base not in chosen or label == base:
            chosen[base] = label
    return list(chosen.values())


def models_block(labels, names, facts, provenance) -> Block:
    rows = []
    for m in sorted(representatives(labels), key=lambda m: (facts[m]["family"], unlabelled(names[m]))):
        sha = (provenance.get(m) or Provenance()).weights_sha256
        rows.append([unlabelled(names[m]), unlabelled(m), sha[:12] if sha else "–", facts[m]["family"],
                     fmt_params(facts[m].get("params")), fmt_num(facts[m].get("image_gflops"), 1, 2),
                     str(facts[m].get("resolution") or "–")])
    return Block("Models", ["model", "name or path", "weights SHA-256", "image tower", "params", "image GFLOPs",
                             "resolution"], rows,
                  "params: the whole CLIP model (image + text towers); GFLOPs: the image tower, one image at its "
                  "resolution.")

def provenance_block(labels, names, provenance: dict[str, Provenance]) -> Block:
    """One line per model and dataset (a model's name, weights hash and versions on its first line only), so the
    table stays narrow however many datasets a model was run on."""
    rows = []
    for m in labels:
        prov = provenance.get(m) or Provenance()
        datasets = sorted(set(prov.fingerprints) | set(prov.measured)) or [None]
        for i, dataset in enumerate(datasets):
            first = i == 0
            date = prov.measured.get(dataset, "")[:10] if dataset else _dates(prov.timestamps)
            rows.append([names[m] if first else "", (prov.weights_sha256 or "–") if first else "", dataset or "–",
                         prov.fingerprints.get(dataset, "–") if dataset else "–",
                         (", ".join(sorted(prov.versions)) or "–") if first else "", date or "–"])
    return Block("Provenance", ["model", "weights SHA-256", "dataset", "fingerprint", "clipbench", "measured"], rows,
                  "From the newest record behind each row of the tables above. clipbench versions come from "
                  "results.jsonl; leaderboard.csv does not carry them.")


def _dates(timestamps: list[str]) -> str:
    stamps = sorted(t[:10] for t in timestamps)
    return "" if not stamps else stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1]}"
