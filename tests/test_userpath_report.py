"""The report reads model facts where the run wrote them (record["model_facts"], schema 2), so local
checkpoints get their parameters, resolution and a place in "ResNet vs ViT"; counts read as people write them."""

from __future__ import annotations

import json

import matplotlib.axes
import pytest

from clipbench.results.report import build_report
from clipbench.results.report.blocks import fmt_params


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
