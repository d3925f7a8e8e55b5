"""The report and history say what a user would check: model facts where the run wrote them (record["model_facts"],
schema 2), so local checkpoints get parameters, resolution and a place in "ResNet vs ViT"; counts as people write
them; narrow tables; an untagged run labelled by its commit; a throughput plot of default runs under short names."""

from __future__ import annotations

import json

import matplotlib.axes
import pytest

from clipbench.foundations.tables import fmt_params
from clipbench.results import plots
from clipbench.results.history import history_points, throughput_points
from clipbench.results.plots import trend_plot
from clipbench.results.report import build_report


@pytest.fixture
def annotations(monkeypatch):
    """The texts every figure annotates, in drawing order (the scatter labels each placed model)."""
    texts: list[str] = []
    original = matplotlib.axes.Axes.annotate

    def record(self, text, *args, **kwargs):
        texts.append(str(text))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "annotate", record)
    return texts


def _local(path: str, family: str, value: float, sha: str, facts: dict) -> dict:
    """A schema-2 record of a local checkpoint: no registry name, no top-level params, its facts as run time wrote."""
    return {"schema_version": 2, "record_id": path, "timestamp": "2026-11-23T12:00:00+00:00", "model": path,
            "model_identity": f"NativeClipModel:{sha}", "model_family": family, "weights_sha256": sha,
            "dataset": "cifar10", "split": "test", "dataset_fingerprint": "fp", "n_samples": 1000,
            "task": "zeroshot", "primary_metric": "top1", "metrics": {"top1": value},
            "ci95": {"low": value - 0.5, "high": value + 0.5}, "seed": 0, "precision": "fp32", "device": "cpu",
            "limit": None, "versions": {"clipbench": "0.1.0"}, "model_facts": facts}


def test_local_checkpoints_take_their_facts_from_the_record(tmp_path, annotations):
    rn = _local("/ckpts/my-rn.pt", "ResNet", 60.0, "1" * 64,
                {"architecture": None, "family": "ResNet", "params": 102_007_137, "image_gflops": None,
                 "resolution": 224})
    vit = _local("/ckpts/my-vit.pt", "ViT", 70.0, "2" * 64,
                 {"architecture": "ViT-B/32", "family": "ViT", "params": 151_277_313, "image_gflops": 4.41,
                  "resolution": 224})
    broken = _local("/ckpts/odd.pt", "ViT", 50.0, "3" * 64,  # damaged facts cost their cells, not the report
                    {"family": 3, "params": "many", "resolution": True, "image_gflops": -1})
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (rn, vit, broken)))
    report = build_report(tmp_path / "results", out_dir=tmp_path / "out")
    md = report.markdown.read_text()
    assert "| my-rn | /ckpts/my-rn.pt | 111111111111 | ResNet | 102.0 M | – | 224 |" in md
    assert "| my-vit | /ckpts/my-vit.pt | 222222222222 | ViT | 151.3 M | 4.41 | 224 |" in md
    assert "| odd | /ckpts/odd.pt | 333333333333 | ViT | – | – | – |" in md
    assert sorted(annotations) == ["my-rn", "my-vit"]  # ResNet vs ViT: the local ResNet is no longer left out
    assert "102007137" not in md


def test_parameter_counts_read_as_people_write_them():
    assert [fmt_params(v) for v in (102_007_137, 1_234_000_000, 850_000, 12, None, float("nan"))] == \
        ["102.0 M", "1.2 B", "850 k", "12", "–", "–"]


def test_provenance_stays_narrow_however_many_datasets_a_model_has(tmp_path):
    datasets = [f"dataset_number_{i}" for i in range(12)]
    records = []
    for i, dataset in enumerate(datasets):
        record = _local("/ckpts/my-vit.pt", "ViT", 60.0 + i, "2" * 64, {"family": "ViT", "params": 151_277_313})
        records.append({**record, "dataset": dataset, "dataset_fingerprint": f"{i:032x}"})
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    md = build_report(tmp_path / "results", out_dir=tmp_path / "out").markdown.read_text()
    provenance = md.split("## Provenance")[1].splitlines()
    rows = [line for line in provenance if line.startswith("|")]
    assert len(rows) == 2 + len(datasets) and max(map(len, rows)) < 160  # was one line of 700+
    assert f"| my-vit | {'2' * 64} | dataset_number_0 | {0:032x} | 0.1.0 | 2026-11-23 |" in rows


def test_history_plot_labels_untagged_runs_by_their_commit(tmp_path, annotations):
    lines = []
    for i, tag in enumerate(("v1", None, "v2")):
        lines.append(json.dumps({"model": "m", "dataset": "d", "task": "zeroshot", "metrics": {"top1": 70.0 + i},
                                 "primary_metric": "top1", "timestamp": f"2026-01-0{i + 1}T00:00:00+00:00",
                                 "tag": tag, "git": {"commit": f"{i}" * 40, "dirty": i == 1}}))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    trend_plot(history_points(tmp_path))
    assert annotations == ["v1", "1111111+", "v2"]


def test_trend_plot_cost_follows_what_it_shows_not_the_history_length(tmp_path, annotations):
    """Issue 27: 10,000 tagged runs drew 10,000 labels (70 s of a report); the labels are thinned to what can be
    read, shared by the lines, the first and the newest change kept."""
    lines = [json.dumps({"model": "m", "dataset": f"d{i % 2}", "task": "zeroshot", "metrics": {"top1": 50.0 + i % 7},
                         "primary_metric": "top1", "tag": f"run{i}",
                         "timestamp": f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"})
             for i in range(3000)]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    trend_plot(history_points(tmp_path))
    assert len(annotations) == plots.TREND_LABELS
    assert {"run0", "run1", "run2998", "run2999"} <= set(annotations)


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


def test_list_models_prints_parameter_counts_as_people_write_them(capsys):
    """``clipbench list models`` shows ``102.0 M``; json keeps the exact integer for scripts (issue 28, 17)."""
    import json

    from clipbench.cli import main

    assert main(["list", "models"]) == 0
    table = capsys.readouterr().out
    assert "102.0 M" in table and "102007137" not in table
    assert main(["list", "models", "--format", "json"]) == 0
    rn50 = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "RN50")
    assert rn50["params"] == 102007137
