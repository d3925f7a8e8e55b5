"""`clipbench report` from small synthetic results files in the documented record / leaderboard schemas."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from clipbench.cli import main
from clipbench.results.report import build_report, load_results

# model -> family, (cifar10, cifar100, imagenet) zero-shot top-1
MODELS = {
    "RN50": ("ResNet", (72.0, 41.0, 59.0)),
    "RN101": ("ResNet", (80.0, 48.0, 62.0)),
    "ViT-B/32": ("ViT", (90.0, 65.0, 63.0)),
    "openclip:ViT-B-16/laion2b_s34b_b88k": ("ViT", (94.0, 76.0, 70.0)),
}
DATASETS = ("cifar10", "cifar100", "imagenet")


def _record(model, family, dataset, task, value, ts="2026-11-23T12:00:00Z", metric="top1"):
    return {
        "schema_version": 1, "record_id": f"{model}|{dataset}|{task}|{ts}", "timestamp": ts, "model": model,
        "model_identity": "id", "model_family": family, "weights_sha256": "0" * 64, "dataset": dataset,
        "split": "test", "dataset_fingerprint": "fp", "n_samples": 10000, "task": task, "primary_metric": metric,
        "metrics": {"top1": value, "top5": min(100.0, value + 9), "mean_per_class_recall": value - 0.5},
        "ci95": {"low": value - 0.6, "high": value + 0.6}, "C": None, "sweep": None, "prompt_hash": "p",
        "suite": task, "suite_version": 1, "seed": 0, "precision": "fp32", "device": "cpu", "limit": None,
        "versions": {"clipbench": "0.1.0", "torch": "2"}, "time_extract_s": 1.0, "time_task_s": 0.1,
    }


@pytest.fixture
def results_dir(tmp_path) -> Path:
    lines = []
    for model, (family, values) in MODELS.items():
        for dataset, value in zip(DATASETS, values, strict=True):
            lines.append(_record(model, family, dataset, "zeroshot", value - 5, ts="2026-11-22T10:00:00Z"))  # superseded
            lines.append(_record(model, family, dataset, "zeroshot", value))
            if not (model == "RN101" and dataset == "imagenet"):  # one missing linear-probe result
                lines.append(_record(model, family, dataset, "linear_probe", min(99.0, value + 8)))
    out = tmp_path / "results"
    out.mkdir()
    text = "\n".join(json.dumps(r) for r in lines) + "\n" + '{"schema_version": 1, "model": "RN5'  # torn last line
    (out / "results.jsonl").write_text(text)
    return out


def test_report_has_tables_means_and_plots(results_dir, tmp_path):
    report = build_report(results_dir, out_dir=tmp_path / "report")
    md = report.markdown.read_text()
    assert "| model | image tower | cifar10 | cifar100 | imagenet | suite mean |" in md
    assert "| RN50 | ResNet | 72.0 [71.4, 72.6] | 41.0 [40.4, 41.6] | 59.0 [58.4, 59.6] | 57.3 |" in md
    assert "| ViT-B/32 | ViT | 90.0 [89.4, 90.6] | 65.0 [64.4, 65.6] | 63.0 [62.4, 63.6] | 72.7 |" in md
    assert "## Zero-shot classification" in md and "## Linear probe" in md
    assert "| RN101 | ResNet | 88.0 [87.4, 88.6] | 56.0 [55.4, 56.6] | – | 72.0 * |" in md  # incomplete mean marked
    # model facts from the registry, borrowed by the open_clip name of the same architecture
    assert "| RN50 | RN50 | 000000000000 | ResNet | 102.0 M | 12.22 | 224 |" in md
    assert ("| openclip:ViT-B-16/laion2b_s34b_b88k | openclip:ViT-B-16/laion2b_s34b_b88k | 000000000000 | ViT | 149.6 M "
            "| 35.13 | 224 |") in md
    # published numbers only for OpenAI's own weights
    assert "| RN50 | cifar10 | zeroshot | 72.0 | 75.6 | -3.6 | 71.6 | +0.4 |" in md
    published = md.split("## Published numbers")[1].split("## Provenance")[0]
    assert "openclip:ViT-B-16" not in published and "| RN50 | cifar10 | linear_probe | 80.0 | 88.7 | -8.7 |" in published

    names = sorted(p.name for p in report.images)
    assert names == ["bars_linear_probe.png", "bars_zeroshot.png", "classification_views.png",
                     "resnet_vs_vit_linear_probe.png", "resnet_vs_vit_zeroshot.png",
                     "trend.png"]  # views: zero-shot beside the probe; trend: some rows were run twice
    for path in report.images:
        assert path.stat().st_size > 5000
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 400 and img.height > 300
        assert f"({path.name})" in md
    page = report.html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<img src='bars_zeroshot.png'" in page
    assert "<td class='num'>72.0 [71.4, 72.6]</td>" in page
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.startswith(".")]  # no temp files left


def test_newest_record_wins_and_torn_line_is_skipped(results_dir):
    frame, path = load_results(results_dir)
    assert path.name == "results.jsonl"
    row = frame[(frame.model == "RN50") & (frame.dataset == "cifar10") & (frame.task == "zeroshot")]
    assert len(row) == 1 and row["value"].iloc[0] == 72.0
    assert len(frame) == 4 * 3 + 4 * 3 - 1


def test_quick_limit_run_is_its_own_row_with_registry_facts(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    full = _record("RN50", "ResNet", "cifar10", "zeroshot", 72.0)
    quick = {**_record("RN50", "ResNet", "cifar10", "zeroshot", 30.0, ts="2026-11-24T00:00:00Z"), "limit": 50}
    (out / "results.jsonl").write_text(json.dumps(full) + "\n" + json.dumps(quick) + "\n")
    frame, _ = load_results(out)
    assert dict(zip(frame.model, frame.value, strict=True)) == {"RN50": 72.0, "RN50 [limit=50]": 30.0}
    report = build_report(out, out_dir=tmp_path / "out")
    assert "| RN50 [limit=50] | ResNet |" in report.markdown.read_text()


def test_long_leaderboard_csv_uses_the_primary_metric(tmp_path):
    path = tmp_path / "leaderboard.csv"
    fields = ["model", "dataset", "task", "metric", "value", "ci_low", "ci_high", "n_samples", "model_identity",
              "dataset_fingerprint", "suite", "suite_version", "timestamp"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for model, (_, values) in MODELS.items():
            for dataset, value in zip(DATASETS, values, strict=True):
                metric = "mean_per_class_recall" if dataset == "imagenet" else "top1"
                for m in ("top1", "top5", "mean_per_class_recall"):
                    primary = m == metric
                    writer.writerow({"model": model, "dataset": dataset, "task": "zeroshot", "metric": m,
                                     "value": value if primary else value + 20, "ci_low": value - 1 if primary else "",
                                     "ci_high": value + 1 if primary else "", "n_samples": 100, "model_identity": "i",
                                     "dataset_fingerprint": "f", "suite": "zeroshot", "suite_version": 1,
                                     "timestamp": "2026-11-23T12:00:00Z"})
    report = build_report(path, out_dir=tmp_path / "out")
    md = report.markdown.read_text()
    assert "| ViT-B/32 | ViT | 90.0 [89.0, 91.0] | 65.0 [64.0, 66.0] | 63.0 [62.0, 64.0] | 72.7 |" in md
    assert "Zero-shot top-1 / mean per-class recall in %" in md
    assert (tmp_path / "out" / "resnet_vs_vit_zeroshot.png").stat().st_size > 5000


def test_cli_report_default_out_and_errors(results_dir, tmp_path, capsys):
    assert main(["report", str(results_dir)]) == 0
    assert (results_dir / "report" / "report.md").is_file()
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results not found" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"model": "x"}) + "\n")  # skipped with a warning (issue 18, 6b): nothing left
    assert main(["report", str(bad)]) == 2
    assert "holds no readable result records" in capsys.readouterr().err


def test_report_details_recall_at_k_subsets_and_classification_views(tmp_path):
    """What primary metrics hide: recall@k per direction, accuracy per compositional subset, and zero-shot,
    k-NN and probe side by side per model."""
    from clipbench.results.records import append_record
    from clipbench.results.report import build_report

    def rec(task, dataset, metrics, primary, **extra):
        return {"schema_version": 1, "model": "RN50", "model_family": "ResNet", "dataset": dataset, "task": task,
                "primary_metric": primary, "metrics": metrics, "ci95": None, "n_samples": 10,
                "timestamp": "2026-11-30T10:00:00+00:00", **extra}

    recalls = {f"{d}_recall@{k}": v for d, base in (("i2t", 50.0), ("t2i", 30.0))
               for k, v in zip((1, 5, 10), (base, base + 20, base + 30), strict=True)}
    append_record(tmp_path, rec("zeroshot_retrieval", "flickr30k", {"mean_recall": 58.3, **recalls}, "mean_recall",
                                recall_k=[1, 5, 10]))
    append_record(tmp_path, rec("image_caption_selection", "sugarcrepe", {"accuracy": 80.0}, "accuracy",
                                per_subset={"swap_att": {"accuracy": 70.0, "ci95": {"low": 60.0, "high": 80.0},
                                                         "n_items": 100, "chance": 50.0}}))
    for task, value in (("zeroshot", 60.0), ("knn", 65.0), ("linear_probe", 75.0)):
        append_record(tmp_path, rec(task, "cifar10", {"top1": value}, "top1"))
    report = build_report(tmp_path / "results.jsonl", out_dir=tmp_path / "report")
    md = report.markdown.read_text()
    assert "| RN50 | flickr30k | 50.0 | 70.0 | 80.0 | 30.0 | 50.0 | 60.0 | 58.3 |" in md
    assert "| RN50 | sugarcrepe | swap_att | 70.0 [60.0, 80.0] | 50.0 | 100 |" in md
    assert "| RN50 | 60.0 | 75.0 | 65.0 |" in md  # zero-shot, linear probe, k-NN (registration order)
    names = {p.name for p in report.images}
    assert {"recall_at_k_flickr30k.png", "classification_views.png"} <= names
