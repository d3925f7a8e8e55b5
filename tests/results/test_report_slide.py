"""`clipbench report` as something to put on a slide: what the axes say, names, variants, cost, HTML.

Figures are checked by what matplotlib was asked to draw (labels, limits, chance marks), captured
at the moment each figure is turned into PNG bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from matplotlib.collections import LineCollection

from clipbench.cli import main
from clipbench.models.checkpoints import OPENAI_CHECKPOINTS
from clipbench.results import plots
from clipbench.results.report import build_report

RN50_SHA = next(c.sha256 for c in OPENAI_CHECKPOINTS if c.name == "RN50")


def _record(model, dataset, value, task="zeroshot", family="ViT", sha="0" * 64, ts="2026-11-23T12:00:00+00:00",
            **extra):
    return {
        "schema_version": 1, "record_id": f"{model}|{dataset}|{task}|{ts}", "timestamp": ts, "model": model,
        "model_identity": f"NativeClipModel:{sha}", "model_family": family, "weights_sha256": sha,
        "dataset": dataset, "split": "test", "dataset_fingerprint": f"fp-{dataset}", "n_samples": 1000,
        "task": task, "primary_metric": "top1", "metrics": {"top1": value, "top5": min(100.0, value + 9)},
        "ci95": {"low": value - 0.5, "high": value + 0.5}, "seed": 0, "precision": "fp32", "device": "cpu",
        "limit": None, "versions": {"clipbench": "0.1.0", "torch": "2"}, **extra,
    }


def _write(tmp_path: Path, records: list[dict]) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


@pytest.fixture
def figures(monkeypatch) -> dict[str, dict]:
    """title -> what was drawn: ylabel, xlabel, ylim, legend and annotation texts, chance marks."""
    drawn: dict[str, dict] = {}
    real_png = plots._png

    def capture(fig):
        ax = fig.axes[0]
        legend = ax.get_legend()
        horizontal = [seg[0][1] for coll in ax.collections if isinstance(coll, LineCollection)
                      for seg in coll.get_segments() if len(seg) == 2 and seg[0][1] == seg[1][1]]
        drawn[ax.get_title()] = {
            "ylabel": ax.get_ylabel(), "xlabel": ax.get_xlabel(), "ylim": ax.get_ylim(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "annotations": [t.get_text() for t in ax.texts],
            "chance_segments": horizontal,
            "chance_lines": [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"],
        }
        return real_png(fig)

    monkeypatch.setattr(plots, "_png", capture)
    return drawn


def test_axes_name_the_task_and_metric_start_at_zero_and_mark_chance(tmp_path, figures):
    # the case: two models 0.1 points apart around 66-70% must not look like a cliff
    records = [_record("RN50", d, v, family="ResNet") for d, v in (("cifar10", 66.1), ("cifar100", 30.0))]
    records += [_record("ViT-B/32", d, v) for d, v in (("cifar10", 66.2), ("cifar100", 30.2))]
    records.append(_record("RN50", "folder:/data/pets", 50.0, family="ResNet"))  # class count unknown
    report = build_report(_write(tmp_path, records), out_dir=tmp_path / "out")

    bars = figures["Zero-shot classification: per dataset"]
    assert bars["ylabel"] == "Zero-shot top-1 (%)"
    assert bars["ylim"][0] == 0
    # chance per registered dataset (100 / classes); none for the folder dataset
    assert sorted(bars["chance_segments"]) == pytest.approx([1.0, 10.0])
    assert "chance" in bars["legend"]

    scatter = figures["Zero-shot classification: ResNet vs ViT"]
    assert scatter["ylabel"] == "Zero-shot top-1, mean over cifar10, cifar100 (%)"
    assert scatter["ylim"][0] == 0 and scatter["ylim"][1] >= 50  # not zoomed onto the 0.1-point gap
    assert scatter["chance_lines"] == pytest.approx([5.5])  # mean of 10% and 1%
    assert scatter["xlabel"].startswith("image-tower GFLOPs")
    md = report.markdown.read_text()
    assert "primary metric" not in md.lower() and "Zero-shot top-1 per dataset" in md


def test_legends_use_short_names_and_the_models_table_has_the_hash(tmp_path, figures):
    a, b = "a" * 64, "b" * 64
    records = [_record("/ckpts/run-7/epoch_12.pt", "cifar10", 60.0, sha=a),
               _record("/ckpts/run-8/epoch_12.pt", "cifar10", 62.0, sha=b),
               _record("/ckpts/other/final.pt", "cifar10", 64.0, sha=RN50_SHA),
               _record("ViT-B/32", "cifar10", 88.0)]
    report = build_report(_write(tmp_path, records), out_dir=tmp_path / "out")
    legend = figures["Zero-shot classification: per dataset"]["legend"]
    assert "epoch_12 (aaaaaaaa) (ViT)" in legend and "epoch_12 (bbbbbbbb) (ViT)" in legend
    assert "final (ResNet)" in legend and "ViT-B/32 (ViT)" in legend
    assert not [t for t in legend if "/ckpts" in t]
    md = report.markdown.read_text()
    assert f"| final | /ckpts/other/final.pt | {RN50_SHA[:12]} | ResNet |" in md
    assert "| epoch_12 (aaaaaaaa) | /ckpts/run-7/epoch_12.pt | aaaaaaaaaaaa |" in md
    assert "| final | ResNet | 64.0 [63.5, 64.5] | 64.0 |" in md  # task tables use the short name too


def test_variant_runs_are_only_in_the_table(tmp_path, figures):
    records = [_record("RN50", "cifar10", 70.0, family="ResNet"), _record("ViT-B/32", "cifar10", 88.0),
               _record("RN50", "cifar10", 40.0, family="ResNet", ts="2026-11-24T00:00:00+00:00", limit=50),
               _record("ViT-B/32", "cifar10", 85.0, ts="2026-11-24T00:00:00+00:00", precision="bf16"),
               _record("RN50", "cifar10", 80.0, task="linear_probe", family="ResNet", limit=50),
               _record("ViT-L/14", "cifar10", 90.0, task="linear_probe", limit=50)]
    report = build_report(_write(tmp_path, records), out_dir=tmp_path / "out")
    bars = figures["Zero-shot classification: per dataset"]
    scatter = figures["Zero-shot classification: ResNet vs ViT"]
    assert sorted(bars["legend"]) == ["RN50 (ResNet)", "ViT-B/32 (ViT)", "chance"]
    assert sorted(scatter["annotations"]) == ["RN50", "ViT-B/32"]
    md = report.markdown.read_text()
    assert "| RN50 [limit=50] | ResNet | 40.0 [39.5, 40.5] | 40.0 | variant (limit=50), not plotted |" in md
    assert "| ViT-B/32 [bf16] | ViT | 85.0 [84.5, 85.5] | 85.0 | variant (bf16), not plotted |" in md
    assert "| RN50 | ResNet | 70.0 [69.5, 70.5] | 70.0 | full |" in md
    assert "6 results, 3 models (+ 3 variant runs, in the tables only)" in md
    # a model run only with --limit is still a model in the models table
    assert "| ViT-L/14 | ViT-L/14 | 000000000000 | ViT | 427.6 M | 162.03 | 224 |" in md
    # a task with variant runs only: its table, and a line saying why there are no plots
    assert "Linear probe: per dataset" not in figures
    assert "No per-dataset bars: every result of this task is a variant run" in md.split("## Linear probe")[1]
    assert not (tmp_path / "out" / "bars_linear_probe.png").exists()


def test_models_without_a_registry_cost_are_placed_by_parameters(tmp_path, figures):
    records = [_record("clipbench-tiny", "digits", 66.0),  # registry: params, no GFLOPs
               _record("/ckpts/mine.pt", "digits", 70.0, sha="c" * 64, params=5_000_000),  # the record says
               _record("/ckpts/copy-of-rn50.pt", "digits", 60.0, family="ResNet", sha=RN50_SHA),  # known hash
               _record("/ckpts/mystery.pt", "digits", 50.0, sha="d" * 64)]  # nothing known
    report = build_report(_write(tmp_path, records), out_dir=tmp_path / "out")
    scatter = figures["Zero-shot classification: ResNet vs ViT"]
    assert sorted(scatter["annotations"]) == ["clipbench-tiny", "copy-of-rn50", "mine"]
    assert scatter["xlabel"].startswith("parameters, image + text towers (millions)")
    md = report.markdown.read_text()
    assert "image-tower parameters" not in md
    assert "against parameter count (image + text towers)" in md
    assert "| mine | /ckpts/mine.pt | cccccccccccc | ViT | 5.0 M | – | – |" in md
    assert "| copy-of-rn50 | /ckpts/copy-of-rn50.pt |" in md and "| ResNet | 102.0 M | 12.22 | 224 |" in md
    assert re.search(r"Not in the ResNet-vs-ViT plot: mystery \(parameter count unknown: [^)]*\)\.", md)


def test_html_reads_as_prose_with_provenance_and_missing_plot_lines(tmp_path):
    records = [_record("/ckpts/only.pt", "cifar10", 61.0, sha="e" * 64, ts="2026-11-20T08:00:00+00:00"),
               _record("/ckpts/only.pt", "cifar100", 31.0, sha="e" * 64, ts="2026-11-21T09:00:00+00:00")]
    report = build_report(_write(tmp_path, records), out_dir=tmp_path / "out")
    page = report.html.read_text()
    assert "`" not in page
    assert "<code>" in page and "2 results, 1 model," in page and "1 models" not in page
    assert "No ResNet-vs-ViT plot: it needs two models with a known cost, and 0 of 1" in page
    provenance = page.split("<h2>Provenance</h2>")[1]
    cells = re.findall(r"<td class='\w+'>(.*?)</td>", provenance)
    # one line per model and dataset: the table stays narrow however many datasets a model has
    assert cells[:12] == ["only", "e" * 64, "cifar10", "fp-cifar10", "0.1.0", "2026-11-20",
                          "", "", "cifar100", "fp-cifar100", "", "2026-11-21"]
    md = report.markdown.read_text()
    assert "| only | " + "e" * 64 + " | cifar10 | fp-cifar10 | 0.1.0 | 2026-11-20 |" in md
    assert "|  |  | cifar100 | fp-cifar100 |  | 2026-11-21 |" in md


def test_report_help_shows_a_plain_percent_sign(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "95% CI" in " ".join(out.split()) and "%%" not in out


def test_provenance_from_a_leaderboard_csv_uses_the_model_identity(tmp_path):
    path = tmp_path / "leaderboard.csv"
    path.write_text(
        "model,dataset,task,variant,metric,value,ci_low,ci_high,primary_metric,n_samples,model_identity,"
        "dataset_fingerprint,suite,suite_version,timestamp\n"
        f"/w/tiny.pt,digits,zeroshot,,top1,66.1,62.5,69.5,top1,797,NativeClipModel:{'3' * 64},"
        "d6a23bdc4b32674d0828ce2ebe46bc98,ci,1,2026-11-23T12:35:44+00:00\n"
        f"/w/tiny.pt,digits,zeroshot,limit=100,top1,70.0,61.0,79.0,top1,100,NativeClipModel:{'3' * 64},"
        "acccf701acf11befdf6a8d92ce5ed7fd,ci,1,2026-11-24T08:00:00+00:00\n")
    md = build_report(path, out_dir=tmp_path / "out").markdown.read_text()
    provenance = md.split("## Provenance")[1]
    assert f"| tiny | {'3' * 64} | digits | d6a23bdc4b32674d0828ce2ebe46bc98 | – | 2026-11-23 |" in provenance
    assert f"| tiny [limit=100] | {'3' * 64} | digits | acccf701acf11befdf6a8d92ce5ed7fd | – | 2026-11-24 |" in provenance
    assert "| tiny [limit=100] | other | 70.0 [61.0, 79.0] | 70.0 | variant (limit=100), not plotted |" in md
