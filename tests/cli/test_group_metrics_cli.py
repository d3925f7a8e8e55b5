"""``clipbench run`` and ``clipbench compare`` on the sets of issue 29 with the bundled clipbench-tiny: the
dataset's own metric (11-point mAP, ROC AUC) with its CI, the block, the ``targets`` per-sample file and
the gate's paired test on that metric."""

from __future__ import annotations

import json

from _fake_layouts_groups import WRITERS, relaxed_counts

from clipbench.cli import main
from clipbench.results.samples import read_samples

#: one set per metric (and FairFace's group tables); the others are read in tests/datasets/test_group_sets.py
RUN = ("voc2007", "hateful_memes", "iwildcam", "fmow", "dollar_street", "fairface", "kinetics700")


def _run(tmp_path, data, results, *extra):
    argv = ["run", "--model", "clipbench-tiny", "--suite", "zeroshot", "--dataset", ",".join(RUN),
            "--offline", "--no-progress", "--workers", "0", "--threads", "1", "--data-root", str(data),
            "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(results), "--limit", "20",
            "--format", "json", "--bootstrap", "200", *extra]
    with relaxed_counts(RUN):
        return main(argv)


def test_run_scores_the_datasets_metric_with_ci_and_samples_and_compare_pairs_it(tmp_path, capsys):
    data = tmp_path / "data"
    for name in RUN:
        WRITERS[name](data, 3)
    assert _run(tmp_path, data, tmp_path / "a") == 0
    records = {r["dataset"]: r for r in map(json.loads, (tmp_path / "a" / "results.jsonl").read_text().splitlines())}
    voc, memes = records["voc2007"], records["hateful_memes"]
    assert voc["primary_metric"] == "mean_average_precision_11pt" and voc["n_samples"] == 20
    assert set(voc["metrics"]) == {"mean_average_precision_11pt", "mean_average_precision"}
    # with 20 images and 20 classes a resample drops classes, so the point need not lie inside the interval
    assert 0 <= voc["ci95"]["low"] <= voc["ci95"]["high"] <= 100
    assert len(voc["zeroshot"]["per_class_ap"]) == 20 and voc["zeroshot"]["classes_scored"] >= 1
    assert memes["primary_metric"] == "roc_auc" and "roc_auc" in memes["metrics"] and memes["ci95"]
    fmow, iwildcam = records["fmow"], records["iwildcam"]
    assert fmow["primary_metric"] == "worst_group_top1" and fmow["ci95"]
    regions = {row["group"]: row for row in fmow["zeroshot"]["groups"]["region"]}
    assert fmow["zeroshot"]["group_by"] == "region" and fmow["zeroshot"]["group_excluded"] == ["Other"]
    counted = [row["top1"] for name, row in regions.items() if name != "Other" and row["n"]]
    assert fmow["metrics"]["worst_group_top1"] == min(counted)
    assert iwildcam["primary_metric"] == "macro_f1" and "location" in iwildcam["zeroshot"]["groups"]
    street = records["dollar_street"]
    assert street["primary_metric"] == "worst_group_top5" and street["zeroshot"]["group_by"] == "income_ds"
    assert street["metrics"]["worst_group_top5"] == min(r["top5"] for r in street["zeroshot"]["groups"]["income_ds"])
    face = records["fairface"]
    assert set(face["zeroshot"]["groups"]) == {"race", "race_binary", "gender", "age", "race_x_gender"}
    assert face["primary_metric"] == "top1" and "group_by" not in face["zeroshot"]
    kinetics = records["kinetics700"]
    assert kinetics["primary_metric"] == "mean_top1_top5" and kinetics["ci95"]
    assert kinetics["metrics"]["mean_top1_top5"] == (kinetics["metrics"]["top1"] + kinetics["metrics"]["top5"]) / 2
    samples = read_samples(tmp_path / "a", voc)
    assert len(samples) == 20 and samples.targets.multilabel
    assert abs(samples.targets.value("mean_average_precision_11pt") - voc["metrics"]["mean_average_precision_11pt"]) < 1e-6
    # a second run from the same cache, and the gate's paired test on the dataset's own metric
    assert _run(tmp_path, data, tmp_path / "b") == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "b"), "--baseline", str(tmp_path / "a"), "--format", "json"]) == 0
    out = capsys.readouterr().out
    for metric in ("mean_average_precision_11pt", "roc_auc", "worst_group_top1", "macro_f1", "mean_top1_top5"):
        assert metric in out


def test_association_task_runs_winogavil_and_the_gate_pairs_its_items(tmp_path, capsys):
    WRITERS["winogavil"](tmp_path / "data", 3)
    suite = tmp_path / "winogavil.yaml"
    suite.write_text("name: winogavil\nversion: 1\ndatasets: [winogavil]\ntasks: [association]\n")
    argv = ["run", "--model", "clipbench-tiny", "--suite", str(suite), "--offline", "--no-progress", "--workers", "0",
            "--threads", "1", "--data-root", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
            "--bootstrap", "200", "--format", "json", "--allow-count-mismatch"]  # 6 items, not WinoGAViL's 3,563
    assert main([*argv, "--results-dir", str(tmp_path / "a")]) == 0
    record = json.loads((tmp_path / "a" / "results.jsonl").read_text().splitlines()[0])
    assert record["task"] == "association" and record["primary_metric"] == "jaccard"
    assert set(record["metrics"]) == {"jaccard", "jaccard_5_6", "jaccard_10_12"} and record["ci95"]
    assert record["association"]["items_per_bucket"] == {"jaccard_5_6": 3, "jaccard_10_12": 3}
    samples = read_samples(tmp_path / "a", record)
    assert len(samples) == 6 and abs(100 * samples.columns["jaccard"].mean() - record["metrics"]["jaccard"]) < 1e-9
    assert samples.item is None  # a row is a cue over several images: no one file name
    assert main([*argv, "--results-dir", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "b"), "--baseline", str(tmp_path / "a")]) == 0
    assert "paired bootstrap" in capsys.readouterr().out
