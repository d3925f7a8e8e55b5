"""The analyses' figures (effective robustness, reliability diagrams), drawn with
matplotlib's Agg backend. Each ``*_figure`` returns the matplotlib Figure (tests read its artists); the
report calls the PNG wrappers. Colours follow ``clipbench.results.plots`` (the image tower's family); accuracy
against compute, with its Pareto front, is ``plots.family_scatter`` (the report's ResNet-vs-ViT plot)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipbench.results.plots import _literal_text, _png, model_colours, plt

#: labels the tests (and readers) find the reference lines by
TREND_LABEL = "trend of standard ImageNet models (Taori et al. 2020)"
DIAGONAL_LABEL = "y = x"


def _logit_axis(ax, axis: str, low: float, high: float) -> None:
    """A logit-scaled axis of percentages (ticks in percent), as in Taori et al.'s and the CLIP paper's plots."""
    def forward(p):
        p = np.clip(np.asarray(p, dtype=float), 1e-3, 100 - 1e-3)
        return np.log(p / (100 - p))

    def inverse(z):
        return 100.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))

    ticks = [t for t in (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99) if low <= t <= high]
    if axis == "x":
        ax.set_xscale("function", functions=(forward, inverse))
        ax.set_xlim(low, high)
        ax.set_xticks(ticks)
    else:
        ax.set_yscale("function", functions=(forward, inverse))
        ax.set_ylim(low, high)
        ax.set_yticks(ticks)


def robustness_figure(points: Sequence, trends: dict, families: dict[str, str], names: dict[str, str]):
    """One panel per shift: each model's (ImageNet top-1, shift top-1), the testbed's standard models (grey),
    their trend line and y = x, on logit axes. ``points``: ``clipbench.results.robustness.Robustness`` rows."""
    shifts = list(dict.fromkeys(p.shift for p in points))
    models = list(dict.fromkeys(p.model for p in points))
    colours = model_colours([names.get(m, m) for m in models], {names.get(m, m): families.get(m, "other")
                                                                  for m in models})
    cols = min(3, len(shifts))
    rows = -(-len(shifts) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(shifts):]:
        ax.set_visible(False)
    for ax, shift in zip(axes.flat, shifts, strict=False):
        trend = trends[shift]
        mine = [p for p in points if p.shift == shift]
        xs = [x for x, _ in trend.points] + [p.imagenet for p in mine]
        ys = [y for _, y in trend.points] + [p.shift_accuracy for p in mine] + list(trend.predict(np.array(xs)))
        low, high = max(0.5, min(xs + ys) * 0.8), min(99.5, max(xs + ys) + (100 - max(xs + ys)) * 0.5)
        _logit_axis(ax, "x", low, high)
        _logit_axis(ax, "y", low, high)
        if trend.points:
            ax.scatter(*zip(*trend.points, strict=True), s=10, color="#bbbbbb", label="standard ImageNet models",
                       zorder=1)
        grid = np.linspace(low, high, 200)
        ax.plot(grid, trend.predict(grid), color="#d62728", lw=1.5, label=TREND_LABEL, zorder=2)
        ax.plot(grid, grid, color="#555555", lw=1, ls="--", label=DIAGONAL_LABEL, zorder=2)
        for p in mine:
            name = names.get(p.model, p.model)
            ax.scatter([p.imagenet], [p.shift_accuracy], s=45, color=colours[name], edgecolor="black", zorder=3,
                       label=name)
        ax.set_title(shift)
        ax.set_xlabel("ImageNet top-1 (%, logit scale)")
        ax.set_ylabel(f"{shift} top-1 (%, logit scale)")
        ax.grid(alpha=0.3)
    handles, labels = {}, []
    for ax in axes.flat[:len(shifts)]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    fig.suptitle("Effective robustness: shift accuracy against ImageNet accuracy (zero-shot)")
    fig.tight_layout()
    # below the panels, outside them (the PNG's tight bounding box takes it in), so it never covers a label
    fig.legend([handles[label] for label in labels], labels, loc="upper center", ncol=min(3, len(labels)),
               bbox_to_anchor=(0.5, 0.0), fontsize=9, frameon=False)
    return fig


@_literal_text
def robustness_plot(points: Sequence, trends: dict, families: dict[str, str], names: dict[str, str]) -> bytes:
    return _png(robustness_figure(points, trends, families, names))


def reliability_figure(panels: Sequence[tuple[str, list[dict], float | None]]):
    """One reliability diagram per (title, equal-width bins, ECE): each bin's accuracy against its confidence
    range (bars), the gap to the diagonal, and y = x (perfect calibration)."""
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (title, bins, ece) in zip(axes.flat, panels, strict=False):
        filled = [b for b in bins if b.get("count") and b.get("accuracy") is not None]
        lows = np.array([100 * b["low"] for b in filled])
        widths = np.array([100 * (b["high"] - b["low"]) for b in filled])
        acc = np.array([b["accuracy"] for b in filled])
        conf = np.array([b["confidence"] for b in filled])
        ax.bar(lows, acc, width=widths, align="edge", color="#1f77b4", edgecolor="black", lw=0.5, label="accuracy")
        ax.bar(lows, conf - acc, bottom=acc, width=widths, align="edge", color="#d62728", alpha=0.3,
               label="gap to confidence")
        ax.plot([0, 100], [0, 100], color="#555555", ls="--", lw=1, label=DIAGONAL_LABEL)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("confidence (%)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title if ece is None else f"{title}\nECE {ece:.1f}", fontsize=9)
        ax.set_aspect("equal")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


@_literal_text
def reliability_plot(panels: Sequence[tuple[str, list[dict], float | None]]) -> bytes:
    return _png(reliability_figure(panels))
