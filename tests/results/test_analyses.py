"""Effective robustness, the calibration section and the views across datasets: hand-computed values, the
figures' artists, and one report built from in-memory records."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clipbench.results.analysis_plots import DIAGONAL_LABEL, TREND_LABEL, robustness_figure
from clipbench.results.plots import pareto_front
from clipbench.results.robustness import Trend, effective_robustness, fit_trend, interval, reference_trends
from clipbench.scoring.calibration import calibration

LN3 = math.log(3.0)
# a trend through (50, 25) and (75, 50) on logit axes: slope 1, intercept -ln 3, so x -> expit(logit(x) - ln 3)
TRENDS = {"imagenet_v2": fit_trend("imagenet_v2", [(50.0, 25.0), (75.0, 50.0)]),
          "imagenet_sketch": Trend("imagenet_sketch", 2.0, 0.0, ((50.0, 50.0), (75.0, 90.0)))}


def _record(model, dataset, value, task="zeroshot", family="ResNet", **extra):
    return {"schema_version": 2, "timestamp": "2026-11-23T12:00:00+00:00", "model": model, "model_family": family,
            "model_identity": "NativeClipModel:" + "1" * 64, "weights_sha256": "1" * 64, "dataset": dataset,
            "split": "test", "dataset_fingerprint": "fp", "n_samples": 100, "task": task, "primary_metric": "top1",
            "metrics": {"top1": value}, "ci95": {"low": value - 1, "high": value + 1}, "precision": "fp32",
            "limit": None, "versions": {"clipbench": "0.1.0"}, **extra}


RECORDS = [_record("RN50", "imagenet1k", 50.0), _record("RN50", "imagenet_v2", 40.0),
           _record("RN50", "imagenet_sketch", 45.0),
           _record("ViT-B/32", "imagenet1k", 90.0, family="ViT"), _record("ViT-B/32", "imagenet_v2", 70.0, family="ViT"),
           _record("lonely", "imagenet_v2", 30.0)]


def test_the_fit_and_effective_robustness_equal_the_hand_computation():
    assert TRENDS["imagenet_v2"].slope == pytest.approx(1.0) and TRENDS["imagenet_v2"].intercept == pytest.approx(-LN3)
    rows, skipped = effective_robustness(RECORDS, TRENDS)
    got = {(r.model, r.shift): (r.predicted, r.effective) for r in rows}
    # RN50: logit(50) = 0 -> expit(-ln 3) = 25; ViT: logit(90) = ln 9 -> expit(ln 3) = 75
    assert got[("RN50", "imagenet_v2")] == pytest.approx((25.0, 15.0))
    assert got[("ViT-B/32", "imagenet_v2")] == pytest.approx((75.0, -5.0))
    assert got[("RN50", "imagenet_sketch")] == pytest.approx((50.0, -5.0))  # 2 * logit(50) + 0 = 0 -> 50
    assert set(got) == {("RN50", "imagenet_v2"), ("ViT-B/32", "imagenet_v2"), ("RN50", "imagenet_sketch")}
    assert "no imagenet1k" in skipped["lonely"]


def test_the_bundled_trend_is_a_least_squares_line_on_logit_axes():
    trend = reference_trends()["imagenet_v2"]
    x, y = np.array(trend.points).T
    slope, intercept = np.polyfit(np.log(x / (100 - x)), np.log(y / (100 - y)), 1)
    assert len(trend.points) > 50 and (trend.slope, trend.intercept) == pytest.approx((slope, intercept))
    assert 0.8 < trend.slope < 1.2  # ImageNetV2 tracks ImageNet closely (Recht et al. 2019)


def test_the_interval_resamples_both_test_sets():
    from clipbench.scoring.resample import draws

    rng = np.random.default_rng(0)
    x_correct, y_correct = (rng.random(300) < 0.5).astype(float), (rng.random(200) < 0.4).astype(float)
    ci = interval(TRENDS["imagenet_v2"], x_correct, y_correct, n_resamples=50, seed=3)
    xs = np.concatenate([100 * x_correct[d.index].mean(1) for d in draws(300, 50, 3)])
    ys = np.concatenate([100 * y_correct[d.index].mean(1) for d in draws(200, 50, 4)])
    brute = ys - TRENDS["imagenet_v2"].predict(xs)
    assert (ci["low"], ci["high"]) == pytest.approx(tuple(np.quantile(brute, [0.025, 0.975])))
    assert ci["low"] < 40 - TRENDS["imagenet_v2"].predict(50) < ci["high"]


def test_the_plot_has_the_trend_the_diagonal_and_one_point_per_model_and_shift():
    rows, _ = effective_robustness(RECORDS, TRENDS)
    fig = robustness_figure(rows, TRENDS, {"RN50": "ResNet", "ViT-B/32": "ViT"}, {})
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["imagenet_v2", "imagenet_sketch"]
    for ax in panels:
        lines = {line.get_label() for line in ax.get_lines()}
        assert {TREND_LABEL, DIAGONAL_LABEL} <= lines
        models = sorted(c.get_label() for c in ax.collections if c.get_label() in ("RN50", "ViT-B/32"))
        assert models == sorted(r.model for r in rows if r.shift == ax.get_title())
        assert "logit" in ax.get_xlabel() and ax.get_xscale() == "function"
        trend = next(line for line in ax.get_lines() if line.get_label() == TREND_LABEL)
        gx, gy = trend.get_data()
        assert np.allclose(gy, TRENDS[ax.get_title()].predict(gx))
    # nothing overlaps: the legend (below the panels) against every axis label, tick label and title
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    texts = [t for ax in panels for t in (ax.xaxis.label, ax.yaxis.label, ax.title, *ax.get_xticklabels(),
                                          *ax.get_yticklabels()) if t.get_text()]
    assert texts and not any(legend.overlaps(t.get_window_extent(renderer)) for t in texts)
    labels = [ax.xaxis.label.get_window_extent(renderer) for ax in panels]
    assert not labels[0].overlaps(labels[1])
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_pareto_front_by_hand():
    # (cost, accuracy): 1 beats 3 (cheaper and better); 2 is better but dearer; 4 is dearest and best
    points = [(4.0, 60.0), (1.0, 50.0), (2.0, 70.0), (3.0, 40.0), (10.0, 80.0), (2.0, 65.0)]
    assert pareto_front(points) == [1, 2, 4]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The analyses' blocks of one results file, rendered as report.md renders them (the task sections, which
    other tests check, are left out to keep this cheap)."""
    from types import SimpleNamespace

    from clipbench.results.records import read_records
    from clipbench.results.report.analyses import analysis_blocks
    from clipbench.results.report.model_facts import model_facts
    from clipbench.results.report.reading import load_results
    from clipbench.results.report.render_markdown import render_markdown

    root = tmp_path_factory.mktemp("analyses")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=60)
    labels = rng.integers(0, 4, 60)
    cal = calibration(probs, labels, n_bootstrap=20) | {"scale": 37.5, "scale_source": "model"}
    records = RECORDS + [
        _record("RN50", "cifar10", 70.0, zeroshot={"calibration": cal}),
        _record("ViT-B/32", "cifar10", 80.0, family="ViT"),
        _record("RN50", "cifar10", 80.0, task="linear_probe", linear_probe={"calibration": cal}),
        _record("ViT-B/32", "cifar10", 85.0, task="linear_probe", family="ViT"),
    ]
    (root / "results").mkdir()
    (root / "results" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    frame, path = load_results(root / "results")
    labels = list(dict.fromkeys(frame["model"]))
    facts = model_facts(labels, frame)
    out = root / "report"
    blocks, images = analysis_blocks(frame, read_records(path), path.parent, {},
                                     {m: facts[m]["family"] for m in labels}, facts, out)
    (out / "report.md").write_text(render_markdown(str(path), "", blocks))
    return SimpleNamespace(markdown=out / "report.md", out_dir=out, images=images)


def test_the_report_has_every_analysis(report):
    md = report.markdown.read_text()
    for heading in ("Effective robustness", "Calibration", "Zero-shot against linear probe",
                    "Average rank across datasets", "Mean per task type", "Accuracy against compute"):
        assert f"## {heading}" in md
    v2 = reference_trends()["imagenet_v2"].predict(50.0)  # the bundled testbed trend at ImageNet 50%
    assert f"| RN50 | imagenet_v2 | 50.00 | 40.00 | {v2:.2f} | {40 - v2:.1f} |" in md
    assert "lonely is not plotted: no imagenet1k zeroshot record" in md
    assert "| RN50 | cifar10 | 70.0 | 80.0 | -10.0 | 87.5 |" in md  # 70 / 80 of the probe
    assert "| RN50 | cifar10 | zeroshot | 37.5 |" in md and "| RN50 | cifar10 | linear_probe | – |" in md
    assert "| zeroshot | ViT-B/32 | 8.82 | 70.0 | 1 | yes |" in md and "| zeroshot | RN50 | 12.22 | 40.0 | 1 |  |" in md
    for name in ("effective_robustness.png", "reliability_cifar10.png"):
        assert (report.out_dir / name).stat().st_size > 1000 and (report.out_dir / name) in report.images


def test_average_rank_by_hand(report):
    md = report.markdown.read_text()
    # zeroshot: the one dataset every model has is imagenet_v2 (lonely has only it): ViT 70, RN50 40, lonely 30
    assert "| zeroshot | ViT-B/32 | 1.00 | 1 |\n| zeroshot | RN50 | 2.00 | 1 |\n| zeroshot | lonely | 3.00 | 1 |" in md
    # linear_probe: cifar10 only, ViT-B/32 (85) rank 1, RN50 (80) rank 2
    assert "| linear_probe | ViT-B/32 | 1.00 | 1 |" in md and "| linear_probe | RN50 | 2.00 | 1 |" in md
    import pandas as pd

    from clipbench.results.report.views_section import average_rank
    rows = pd.DataFrame({"model": list("aabbcc"), "dataset": ["x", "y"] * 3, "value": [1, 5, 1, 4, 0, 6]})
    ranks, common = average_rank(rows)  # x: a, b tie for 1-2 (1.5 each), c 3; y: c 1, a 2, b 3
    assert common == ["x", "y"] and ranks.to_dict() == {"a": 1.75, "b": 2.25, "c": 2.0}


def test_the_interval_comes_from_the_records_per_sample_files(tmp_path):
    from clipbench.results.samples import write_sample_table
    from clipbench.scoring.samples import build_kind_table

    rng = np.random.default_rng(2)
    records, correct = [], {}
    for dataset, n in (("imagenet1k", 120), ("imagenet_v2", 80)):
        labels = rng.integers(0, 4, n)
        scores = rng.normal(size=(n, 4)) + 1.5 * np.eye(4)[labels]
        correct[dataset] = (scores.argmax(1) == labels).astype(float)
        record = _record("RN50", dataset, 100 * correct[dataset].mean(), record_id=f"r-{dataset}")
        table = build_kind_table("classification", {"scores": scores, "labels": labels, "score_kind": "logits"})
        record["samples"] = write_sample_table(tmp_path, record, table, "classification", {"score_kind": "logits"})
        records.append(record)
    (row,), _ = effective_robustness(records, TRENDS, tmp_path, n_resamples=40, seed=1)
    assert row.ci95 == interval(TRENDS["imagenet_v2"], correct["imagenet1k"], correct["imagenet_v2"], 40, 1)
    assert row.ci95["low"] < row.effective < row.ci95["high"]
    (bare,), _ = effective_robustness([{k: v for k, v in r.items() if k != "samples"} for r in records], TRENDS, tmp_path)
    assert bare.ci95 is None and bare.effective == pytest.approx(row.effective)


def test_the_reliability_diagram_draws_each_bins_accuracy_and_the_diagonal():
    import matplotlib.pyplot as plt

    from clipbench.results.analysis_plots import reliability_figure

    rng = np.random.default_rng(4)
    probs, labels = rng.dirichlet(np.ones(3) * 0.5, size=200), rng.integers(0, 3, 200)
    cal = calibration(probs, labels)
    fig = reliability_figure([("m · zeroshot", cal["reliability"], cal["ece"])])
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_label() != "gap to confidence"]
    filled = [b for b in cal["reliability"] if b["count"]]
    drawn = np.array(sorted((p.get_x(), p.get_height()) for p in ax.containers[0]))
    assert drawn == pytest.approx(np.array(sorted((100 * b["low"], b["accuracy"]) for b in filled)))
    assert len(bars) >= len(filled) and DIAGONAL_LABEL in [line.get_label() for line in ax.get_lines()]
    assert f"ECE {cal['ece']:.1f}" in ax.get_title() and ax.get_xlim() == (0, 100) == ax.get_ylim()
    plt.close(fig)
