"""The report's and history's figures say what the user would check: an untagged run is labelled by its
commit (never "nan")."""

from __future__ import annotations

import json

import matplotlib.axes
import pytest

from clipbench.results.history import history_points
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
