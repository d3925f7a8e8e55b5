"""The report's and history's figures say what the user would check: an untagged run is labelled by its
commit (never "nan")."""

from __future__ import annotations

import json

import matplotlib.axes
import pytest

from clipbench.results import plots
from clipbench.results.history import history_points, throughput_points
from clipbench.results.plots import trend_plot


@pytest.fixture
def annotations(monkeypatch):
    """The texts every figure annotates, in drawing order."""
    texts: list[str] = []
    original = matplotlib.axes.Axes.annotate

    def record(self, text, *args, **kwargs):
        texts.append(str(text))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", record)
    return texts


def test_history_plot_labels_untagged_runs_by_their_commit(tmp_path, annotations):
    lines = []
    for i, tag in enumerate(("v1", None, "v2")):
        lines.append(json.dumps({"model": "m", "dataset": "d", "task": "zeroshot", "metrics": {"top1": 70.0 + i},
                                 "primary_metric": "top1", "timestamp": f"2026-01-0{i + 1}T00:00:00+00:00",
                                 "tag": tag, "git": {"commit": f"{i}" * 40, "dirty": i == 1}}))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    trend_plot(history_points(tmp_path))
    assert annotations == ["v1", "1111111+", "v2"]


def _record(model: str, task: str, value: float, rate: float | None, ts: str, family: str = "ViT", **extra) -> dict:
    return {"model": model, "dataset": "cifar10", "task": task, "metrics": {"top1": value}, "primary_metric": "top1",
            "timestamp": ts, "model_family": family, "cost": {"images_per_s_end_to_end": rate}, **extra}


def test_throughput_plot_draws_default_runs_with_a_measured_rate_under_short_names(tmp_path, annotations,
                                                                                    monkeypatch):
    records = [
        _record("/ckpts/run-3/rn.pt", "zeroshot", 40.0, 900.0, "2026-01-01T00:00:00+00:00", "ResNet", limit=50),
        _record("/ckpts/run-3/rn.pt", "zeroshot", 60.0, None, "2026-01-02T00:00:00+00:00", "ResNet"),  # cached
        _record("/ckpts/vit.pt", "zeroshot", 70.0, 30.0, "2026-01-01T00:00:00+00:00"),
        _record("/ckpts/vit.pt", "linear_probe", 80.0, 20.0, "2026-01-01T00:00:00+00:00"),
        _record("ViT-L/14", "linear_probe", 85.0, 2000.0, "2026-01-01T00:00:00+00:00"),
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = throughput_points(tmp_path)
    assert sorted((r["model"], r["task"]) for r in rows) == [("/ckpts/vit.pt", "linear_probe"),
                                                             ("/ckpts/vit.pt", "zeroshot"),
                                                             ("ViT-L/14", "linear_probe")]  # no --limit run
    drawn = {}
    real_png = plots._png

    def capture(fig):
        drawn["scales"] = [ax.get_xscale() for ax in fig.axes]
        drawn["legends"] = [ax.get_legend() for ax in fig.axes]
        drawn["figure_legends"] = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        return real_png(fig)

    monkeypatch.setattr(plots, "_png", capture)
    png = plots.throughput_plot(rows)
    assert png.startswith(b"\x89PNG")
    assert sorted(annotations) == ["ViT-L/14", "vit", "vit"]  # display names, never a file path
    assert drawn["scales"] == ["log", "log"]  # one scale per figure: 20 to 2000 images/s
    assert drawn["legends"] == [None, None] and drawn["figure_legends"] == ["ViT"]  # one legend, below the panels
