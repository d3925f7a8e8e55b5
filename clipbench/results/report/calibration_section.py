"""The report's calibration section: ECE, adaptive ECE, NLL and Brier of every zero-shot and linear-probe
record that has them (``clipbench.scoring.calibration``), and reliability diagrams per dataset."""

from __future__ import annotations

from pathlib import Path

from clipbench.foundations.escaping import file_slug
from clipbench.foundations.fileio import atomic_write_bytes
from clipbench.results.report.blocks import Block, as_dict, fmt_num, number
from clipbench.tasks.calibration_hook import TEMPERATURE_FIELD

#: the tasks whose records carry ``calibration`` (few-shot probes average several classifiers: none)
TASKS = ("zeroshot", "linear_probe")
#: reliability diagrams per figure (one figure per dataset)
MAX_PANELS = 12


def _ci(cal: dict, name: str, digits: int = 1) -> str:
    """A value with its 95% interval when the record has one, at ``digits`` decimals."""
    ci = as_dict(as_dict(cal.get("ci95")).get(name))
    value, low, high = number(cal.get(name)), number(ci.get("low")), number(ci.get("high"))
    if value is None or low is None or high is None:
        return fmt_num(value, digits=digits)
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def calibration_block(latest: list[dict], names: dict[str, str], out: Path) -> tuple[Block | None, list[Path]]:
    """The table and reliability diagrams over the latest default-variant records; None when no record has them."""
    from clipbench.results.analysis_plots import reliability_plot

    rows, panels = [], {}
    for r in latest:
        for field, label in (("calibration", ""), (TEMPERATURE_FIELD, " (T fitted on val)")):
            cal = as_dict(as_dict(r.get(r.get("task"))).get(field))
            if r.get("task") not in TASKS or number(cal.get("ece")) is None:
                continue
            model, dataset, task = names.get(r.get("model"), str(r.get("model"))), str(r.get("dataset")), r["task"]
            scale, temperature = number(cal.get("scale")), number(cal.get("temperature"))
            where = "–" if task != "zeroshot" or scale is None else (
                f"{scale:.4g}" + ("" if cal.get("scale_source") == "model" else " (fixed)")
                + (f" / T {temperature:.3g}" if temperature else ""))
            rows.append([model, dataset, task + label, where, _ci(cal, "ece"), fmt_num(cal.get("ece_adaptive")),
                         _ci(cal, "nll", 3), _ci(cal, "brier", 3)])
            bins = [as_dict(b) for b in cal.get("reliability") or [] if isinstance(b, dict)]
            if bins and all(number(b.get("low")) is not None and number(b.get("high")) is not None for b in bins):
                panels.setdefault(dataset, []).append((f"{model} · {task}{label}", bins, number(cal.get("ece"))))
    if not rows:
        return None, []
    block = Block("Calibration", ["model", "dataset", "task", "logit scale", "ECE [95% CI]", "adaptive ECE",
                                  "NLL [95% CI]", "Brier [95% CI]"], rows,
                  "ECE: 15 equal-width confidence bins; adaptive ECE: 15 equal-mass bins (both in points of "
                  "accuracy). NLL in nats, Brier summed over classes (0 best, 2 worst). Zero-shot: the softmax "
                  "over the logits at the model's own learned logit scale (fixed: CLIP's 100, the model has none); "
                  "linear probe: the probe's probabilities. T fitted on val: the zero-shot logits divided by the temperature "
                  "that minimises NLL on the validation split (--calibration-temperature). See docs/analyses.md.")
    written = []
    for dataset, items in panels.items():
        file = f"reliability_{file_slug(dataset)}.png"
        atomic_write_bytes(out / file, reliability_plot(items[:MAX_PANELS]), within=out)
        block.figures.append((f"Reliability diagrams on {dataset} (bars: accuracy per confidence bin; dashed: "
                              "perfect calibration)", file))
        written.append(out / file)
        if len(items) > MAX_PANELS:
            block.missing.append(f"{dataset}: only the first {MAX_PANELS} of {len(items)} reliability diagrams are "
                                 "drawn (the table has them all).")
    return block, written
