"""The report's effective-robustness section (``clipbench.results.robustness``): the plot of each model's
shift accuracy against its ImageNet accuracy with the standard models' trend and y = x, and the table."""

from __future__ import annotations

from pathlib import Path

from clipbench.foundations.fileio import atomic_write_bytes
from clipbench.results.report.blocks import Block, fmt_ci, fmt_num

FILE = "effective_robustness.png"


def robustness_block(latest: list[dict], results_dir: Path, names: dict[str, str], families: dict[str, str],
                     out: Path) -> tuple[Block | None, list[Path]]:
    """None when no model has a zero-shot record on any ImageNet shift."""
    from clipbench.results.analysis_plots import robustness_plot
    from clipbench.results.robustness import IMAGENET, TREND_SOURCE, effective_robustness, reference_trends

    trends = reference_trends()
    rows, skipped = effective_robustness(latest, trends, results_dir)
    if not rows and not skipped:
        return None, []
    table = [[names.get(r.model, r.model), r.shift, fmt_num(r.imagenet, digits=2), fmt_num(r.shift_accuracy, digits=2),
              fmt_num(r.predicted, digits=2),
              fmt_ci(r.effective, (r.ci95 or {}).get("low"), (r.ci95 or {}).get("high"))] for r in rows]
    fits = "; ".join(f"{s}: slope {t.slope:.3f}, intercept {t.intercept:.3f} ({len(t.points)} models)"
                     for s, t in trends.items() if any(r.shift == s for r in rows))
    block = Block("Effective robustness", ["model", "shift", f"{IMAGENET} top-1", "shift top-1", "trend predicts",
                                           "effective robustness [95% CI]"], table,
                  "Zero-shot top-1. Effective robustness = shift top-1 - the top-1 that the trend of standard "
                  "ImageNet-trained models predicts at the model's ImageNet top-1 (a line on logit axes, fitted here "
                  f"to the points of {TREND_SOURCE}). Interval: both test sets resampled (per-sample files); the "
                  f"trend's own uncertainty is not included. Fits: {fits or 'none used'}. See docs/analyses.md.")
    block.missing += [f"{names.get(m, m)} is not plotted: {why}." for m, why in skipped.items()]
    if not rows:
        return block, []
    atomic_write_bytes(out / FILE, robustness_plot(rows, trends, families, names), within=out)
    block.figures.append(("Shift top-1 against ImageNet top-1 on logit axes: each model (colour), the standard "
                          "ImageNet models (grey) and their trend (red), and y = x (dashed)", FILE))
    return block, [out / FILE]
