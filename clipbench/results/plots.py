"""The report's two figures, drawn with matplotlib's Agg backend straight to PNG bytes.

Colours encode the image-tower family everywhere (blues for ResNet, oranges for ViT, greys for
anything else) so the ResNet-vs-ViT story reads the same in every figure.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg", force=False)  # no display needed; harmless if a backend is already chosen
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

FAMILY_COLOURS = {"ResNet": "#1f77b4", "ViT": "#ff7f0e", "other": "#7f7f7f"}
_FAMILY_SHADES = {"ResNet": plt.cm.Blues, "ViT": plt.cm.Oranges, "other": plt.cm.Greys}


def _literal_text(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """Names are data: a model, dataset or tag holding ``$...$`` is drawn as written, never parsed as mathtext
    (an unknown TeX command there would fail the whole report)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> bytes:
        with plt.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def model_colours(models: list[str], families: dict[str, str]) -> dict[str, tuple]:
    """A distinct shade per model, drawn from its family's colour map."""
    colours: dict[str, tuple] = {}
    for family, cmap in _FAMILY_SHADES.items():
        members = [m for m in models if families.get(m, "other") == family]
        for i, model in enumerate(members):
            colours[model] = cmap(0.85 - 0.5 * i / max(1, len(members) - 1) if len(members) > 1 else 0.7)
    return colours


def _y_top(*arrays: np.ndarray) -> float:
    """The y-axis top for a percentage: a little above the highest value, at most 100."""
    top = max((float(np.nanmax(a)) for a in arrays if a.size and np.isfinite(a).any()), default=100.0)
    return min(100.0, max(10.0, math.ceil(top / 10) * 10 + 5))


@_literal_text
def grouped_bars(table: pd.DataFrame, families: dict[str, str], title: str, ylabel: str,
                 chance: dict[str, float | None] | None = None) -> bytes:
    """One group per dataset (columns of ``table['value']``), one bar per model, 95% CI whiskers.

    ``table`` has a (model) index and columns MultiIndex (field, dataset) with fields
    value, ci_low, ci_high, as built by ``clipbench.results.report.task_section``. ``chance``: a random guess's score
    per dataset, drawn as a dashed segment across that dataset's group. The y-axis starts at 0.
    """
    values = table["value"]
    models, datasets = list(values.index), list(values.columns)
    colours = model_colours(models, families)
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(datasets) * max(1, len(models)) * 0.45 + 2), 4.5))
    x = np.arange(len(datasets))
    for i, model in enumerate(models):
        v = values.loc[model].to_numpy(dtype=float)
        low = table["ci_low"].loc[model].to_numpy(dtype=float)
        high = table["ci_high"].loc[model].to_numpy(dtype=float)
        pos = x + (i - (len(models) - 1) / 2) * width
        ax.bar(pos, np.nan_to_num(v), width, color=colours[model], edgecolor="white", linewidth=0.5,
               label=f"{model} ({families.get(model, 'other')})")
        has_ci = np.isfinite(v) & np.isfinite(low) & np.isfinite(high)  # missing results get no whisker
        if has_ci.any():
            err = np.vstack([v - low, high - v])[:, has_ci].clip(min=0)
            ax.errorbar(pos[has_ci], v[has_ci], yerr=err, fmt="none", ecolor="black", elinewidth=1, capsize=2)
    marked = False
    for i, dataset in enumerate(datasets):
        level = (chance or {}).get(dataset)
        if level is not None:
            ax.hlines(level, i - 0.45, i + 0.45, colors="black", linestyles="dashed", linewidth=1,
                      label=None if marked else "chance", zorder=4)
            marked = True
    ax.set_xticks(x, datasets, rotation=30 if len(datasets) > 5 else 0, ha="right" if len(datasets) > 5 else "center")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, _y_top(values.to_numpy(dtype=float), table["ci_high"].to_numpy(dtype=float)))
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, ncol=1 if len(models) <= 6 else 2, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _png(fig)


@_literal_text
def family_scatter(points: pd.DataFrame, xlabel: str, ylabel: str, title: str, log_x: bool,
                   chance: float | None = None) -> bytes:
    """Suite mean against model cost: one labelled point per model, coloured by family.

    ``points`` columns: model, family, x, y. The y-axis starts at 0, so that a 0.1-point gap
    looks like one; ``chance`` (a random guess's mean score) is a dashed line.
    """
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for family, group in points.groupby("family", sort=True):
        group = group.sort_values("x")
        colour = FAMILY_COLOURS.get(family, FAMILY_COLOURS["other"])
        ax.scatter(group["x"], group["y"], s=60, color=colour, edgecolor="black", linewidth=0.5, label=family, zorder=3)
        # models at the same point (e.g. one checkpoint under two names) share one label
        for (x, y), same in group.groupby([group["x"].round(6), group["y"].round(6)], sort=False):
            ax.annotate(", ".join(map(str, same["model"])), (x, y), textcoords="offset points", xytext=(6, 4),
                        fontsize=8)
    front = points.iloc[pareto_front(list(zip(points["x"], points["y"], strict=True)))]
    if len(front) > 1:  # the models no other beats at once on cost and score (issue 31)
        ax.plot(front["x"], front["y"], color="#2ca02c", drawstyle="steps-post", linewidth=1.2, label="Pareto front",
                zorder=2)
    if log_x and (points["x"] > 0).all() and points["x"].max() / max(points["x"].min(), 1e-12) > 5:
        ax.set_xscale("log")  # model costs span orders of magnitude (ViT-B/32 8.8 to RN50x64 529 GFLOPs)
        xlabel += " (log scale)"
    if chance is not None:
        ax.axhline(chance, color="black", linestyle="dashed", linewidth=1, label=f"chance ({chance:.1f}%)", zorder=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(x=0.15)
    ax.set_ylim(0, _y_top(points["y"].to_numpy(dtype=float)))
    ax.legend(title="image tower", frameon=False, loc="best")
    return _png(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, score) points no other point beats (cost as low or lower and score as high or
    higher, one of them strictly), by increasing cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _short_commit(point) -> str:
    """An untagged run's label: its commit, ``+`` when the tree was dirty ("" outside git)."""
    return (point.commit or "")[:7] + ("+" if point.commit and point.dirty else "")


#: at most this many tag/commit labels in the trend plot, shared by its lines (more are unreadable, and each
#: costs a text artist); a line with more points than ``TREND_MARKERS_UP_TO`` is drawn without markers
TREND_LABELS, TREND_MARKERS_UP_TO = 24, 200


def _label_changes(group: pd.DataFrame, most: int) -> list[tuple]:
    """(time, value, label) where a row's tag or commit changes, thinned to ``most`` evenly spaced ones (the
    first and the newest kept): the plot's cost follows what it can show, not the history's length."""
    labels = group["label"].to_numpy(dtype=object)
    changed = [i for i in range(len(labels)) if labels[i] and (i == 0 or labels[i] != labels[i - 1])]
    if len(changed) > most:
        picks = np.linspace(0, len(changed) - 1, most).round().astype(int)
        changed = [changed[i] for i in dict.fromkeys(picks.tolist())]
    times, values = group["time"].to_list(), group["value"].to_numpy()
    return [(times[i], values[i], labels[i]) for i in changed]


@_literal_text
def trend_plot(points) -> bytes:
    """Primary metric over time: one line per (model, dataset, task, variant), 95% CI band, tags annotated.

    ``points`` are ``clipbench.results.history.HistoryPoint`` in row-then-time order.
    """
    # the label is chosen here, not from the frame: pandas turns a None tag beside real tags into a truthy NaN
    frame = pd.DataFrame([{"row": " / ".join(x for x in p.key if x), "value": p.value, "low": p.ci_low,
                           "high": p.ci_high, "label": p.tag or _short_commit(p)} for p in points])
    # a record without a time (or with one pandas cannot read) has no place on the time axis
    frame["time"] = pd.to_datetime([p.timestamp for p in points], utc=True, errors="coerce", format="ISO8601")
    frame = frame[frame["time"].notna()]
    frame[["low", "high"]] = frame[["low", "high"]].astype(float)
    rows = list(dict.fromkeys(frame["row"]))
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    for i, row in enumerate(rows):
        group = frame[frame["row"] == row].sort_values("time", kind="stable")
        colour = colours[i % 10]
        ax.plot(group["time"], group["value"], marker="o" if len(group) <= TREND_MARKERS_UP_TO else None,
                color=colour, label=row, zorder=3)
        has_ci = group["low"].notna() & group["high"].notna()
        if has_ci.any():
            ax.fill_between(group["time"][has_ci], group["low"][has_ci], group["high"][has_ci], color=colour,
                            alpha=0.15, linewidth=0)
        for placed, (when, value, text) in enumerate(_label_changes(group, max(1, TREND_LABELS // len(rows)))):  # staggered so labels do not pile up
            ax.annotate(str(text), (when, value), textcoords="offset points",
                        xytext=(4, 6 + 10 * (placed % 3)), fontsize=7, color=colour)
    ax.set_ylim(0, max(100.0, float(frame["value"].max()) * 1.05))
    ax.set_ylabel("primary metric (%), 95% CI band")
    ax.set_xlabel("run time (UTC)")
    ax.set_title("History: primary metric per run")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _png(fig)


_LABEL_OFFSETS = ((6, 4, "left"), (6, -12, "left"), (-6, 4, "right"), (-6, -12, "right"), (6, 15, "left"),
                  (6, -23, "left"), (-6, 15, "right"), (-6, -23, "right"))


def _place_labels(fig, ax, points: list[tuple[float, float, str]], taken: list) -> None:
    """Label each point at the first of a few offsets (right, below, left, ...) whose box overlaps no label or
    point already placed; with none free, the first. Boxes are measured by the renderer, so long names count."""
    renderer = fig.canvas.get_renderer()
    for x, y, text in points:
        chosen = None
        for dx, dy, ha in _LABEL_OFFSETS:
            note = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8, ha=ha)
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken):
                chosen = note
                break
            note.remove()
        if chosen is None:
            dx, dy, ha = _LABEL_OFFSETS[0]
            chosen = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8, ha=ha)
        taken.append(chosen.get_window_extent(renderer))


@_literal_text
def throughput_plot(rows: list[dict], names: dict[str, str] | None = None) -> bytes:
    """Accuracy against measured end-to-end images/s, one panel per task, coloured by image-tower family.

    ``rows``: dicts with model, family, task, dataset, x (images/s), y (primary metric). Points are labelled
    by ``names`` (the report's display names; by default a checkpoint path's file stem). All panels share one
    x scale (log when the rates span more than 5x), and one legend sits below them, so none runs into the
    next panel.
    """
    from clipbench.results.labels import short_names
    from clipbench.tasks.registry import task_title

    frame = pd.DataFrame(rows)
    models = list(dict.fromkeys(frame["model"]))
    names = {**short_names(models, {}), **(names or {})}
    several_datasets = frame["dataset"].nunique() > 1
    tasks = list(dict.fromkeys(frame["task"]))
    log_x = bool((frame["x"] > 0).all() and frame["x"].max() / max(frame["x"].min(), 1e-12) > 5)
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks) + 0.5, 4.5), squeeze=False, sharex=True)
    for ax, task in zip(axes[0], tasks, strict=True):
        group = frame[frame["task"] == task].sort_values(["x", "y"], kind="stable")
        if log_x:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # no mathtext: names are literal
            ax.xaxis.set_minor_formatter(NullFormatter())
        for family, members in group.groupby("family", sort=True):
            ax.scatter(members["x"], members["y"], s=60, color=FAMILY_COLOURS.get(family, FAMILY_COLOURS["other"]),
                       edgecolor="black", linewidth=0.5, label=family, zorder=3)
        metrics = sorted(set(group.get("metric", pd.Series(dtype=str)).dropna()))
        ax.set_xlabel("measured images/s, end to end" + (" (log scale)" if log_x else ""))
        ax.set_ylabel(f"{', '.join(metrics) or 'primary metric'} (%)")
        ax.set_title(task_title(task))
        ax.grid(alpha=0.3)
        ax.margins(x=0.25)
        ax.set_ylim(0, max(100.0, float(group["y"].max()) * 1.05))  # from 0: a small gap stays small
    fig.suptitle("Accuracy against measured throughput (extraction, default runs only)")
    fig.tight_layout()
    for ax, task in zip(axes[0], tasks, strict=True):  # labels last: their boxes depend on the final axes
        group = frame[frame["task"] == task].sort_values(["y", "x"], ascending=False, kind="stable")
        marker_boxes = [ax.transData.transform((x, y)) for x, y in zip(group["x"], group["y"], strict=True)]
        taken = [Bbox.from_extents(px - 5, py - 5, px + 5, py + 5) for px, py in marker_boxes]
        _place_labels(fig, ax, [(row["x"], row["y"], names.get(row["model"], str(row["model"]))
                                 + (f" ({row['dataset']})" if several_datasets else ""))
                                for _, row in group.iterrows()], taken)
    families = sorted(set(frame["family"]))
    handles = [plt.Line2D([], [], marker="o", linestyle="", markersize=8, markeredgecolor="black",
                          color=FAMILY_COLOURS.get(f, FAMILY_COLOURS["other"])) for f in families]
    fig.legend(handles, families, title="image tower", frameon=False, fontsize=8, loc="lower center",
               ncol=len(families), bbox_to_anchor=(0.5, -0.08))
    return _png(fig)
