"""Per-sample files beyond classification: retrieval ranks (resampled by image), selection outcomes
(McNemar) and image-retrieval AP (paired bootstrap), each read back, checked against its record, judged by
the regression gate and shown by `clipbench samples`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from PIL import Image
from torchvision import transforms

import clipbench
from clipbench import api
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.foundations.fileio import sha256_file
from clipbench.models import load_model
from clipbench.models.preprocess import to_rgb
from clipbench.results.records import read_records, write_leaderboards
from clipbench.results.samples import read_samples
from clipbench.results.significance import gated_compare
from clipbench.scoring.paired import paired_bootstrap_units, paired_outcomes
from clipbench.scoring.samples.outcomes import OutcomeSamples
from clipbench.scoring.samples.retrieval import RetrievalSamples
from clipbench.suites import parse_suite

RETRIEVAL = parse_suite({"version": 1, "datasets": ["shapes"], "tasks": ["zeroshot_retrieval"],
                         "options": {"bootstrap": 200, "offline": True, "threads": 1}}, "t", "r", check_dataset=None)


def _shapes_model(broken: bool = False):
    model = load_model("clipbench-shapes", device="cpu", offline=True)
    if broken:  # a preprocessing bug: same model, same preprocess_id, wrong pixels (ImageNet-style constants off)
        model.preprocess = transforms.Compose([
            transforms.Resize(model.image_resolution, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(model.image_resolution), to_rgb, transforms.ToTensor(),
            transforms.Normalize((0.2, 0.2, 0.2), (0.9, 0.9, 0.9))])
    return model


@pytest.fixture(scope="module")
def retrieval_run(shapes_data_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds-retrieval")
    (record,) = clipbench.run(_shapes_model(), suite=RETRIEVAL, data_root=shapes_data_root, cache_dir=root / "cache",
                              results_dir=root / "base", device="cpu", progress=False)
    return root, record


def _rewrite(results: Path, change) -> dict:
    """Apply ``change(table) -> (table, metrics)`` to the one record's sample file, keeping it verifiable."""
    file = results / "results.jsonl"
    (record,) = read_records(file)
    path = results / record["samples"]["path"]
    table = pq.read_table(path)
    meta = table.schema.metadata
    table, metrics = change(table)
    pq.write_table(table.replace_schema_metadata(meta), path)
    record["metrics"].update(metrics)
    record["samples"]["sha256"] = sha256_file(path)
    file.write_text(json.dumps(record) + "\n")
    write_leaderboards(results)
    return record


def test_retrieval_ranks_reproduce_the_record_and_its_intervals(retrieval_run):
    root, record = retrieval_run
    log = read_samples(root / "base", record)
    assert isinstance(log, RetrievalSamples) and len(log) == 300 and len(log.captions) == 900
    assert record["samples"]["n"] == 1200  # one row per image and per caption
    ones = np.ones((1, 300))
    for name in ("mean_recall", "i2t_recall@1", "t2i_recall@5", "i2t_mean_rank", "t2i_median_rank"):
        assert log.metric(name, ones)[0] == pytest.approx(record["metrics"][name], abs=1e-9)
    # resampling images with the record's seed and count draws exactly the record's own bootstrap
    _, low, high, _ = paired_bootstrap_units(lambda c: np.zeros(len(c)), lambda c: log.metric("mean_recall", c),
                                             300, n_resamples=200, seed=0)
    assert (low, high) == pytest.approx((record["ci95"]["low"], record["ci95"]["high"]), abs=1e-9)
    assert log.supports("mean_recall") and log.supports("t2i_recall@10") and not log.supports("i2t_mean_rank")


def test_retrieval_gate_passes_noise_and_fails_a_broken_preprocessing(retrieval_run, shapes_data_root, tmp_path, capsys):
    root, record = retrieval_run
    base = root / "base"
    same = gated_compare(base, base, max_drop=0.0)
    (row,) = same.rows
    assert row.status == "ok" and "no change" in row.note and "(paired bootstrap)" in row.note

    def worse(table):  # three captions' images drop out of the top 10, as a retrained model might do
        rank = table.column("rank").to_numpy().copy()
        t2i = np.flatnonzero((np.asarray(table.column("direction").to_pylist()) == "t2i") & (rank == 1))[:3]
        rank[t2i] = 50
        log = RetrievalSamples.from_table(table.set_column(3, "rank", pa.array(rank)), {"recall_k": [1, 5, 10]})
        return table.set_column(3, "rank", pa.array(rank)), {"mean_recall": float(log.metric("mean_recall",
                                                                                             np.ones((1, 300)))[0])}

    noisy = tmp_path / "noisy"
    shutil.copytree(base, noisy)
    new = _rewrite(noisy, worse)
    result = gated_compare(noisy, base, max_drop=0.0)
    (row,) = result.rows
    test = result.tests[row.model, row.dataset, row.task, row.variant]
    assert row.delta == pytest.approx(new["metrics"]["mean_recall"] - record["metrics"]["mean_recall"]) and row.delta < 0
    assert test.test == "bootstrap" and test.ci_low <= test.difference <= test.ci_high
    assert row.status == "ok" and "not significant at alpha 0.05" in row.note and test.p_value > 0.05

    broken = tmp_path / "broken"
    clipbench.run(_shapes_model(broken=True), suite=RETRIEVAL, data_root=shapes_data_root, cache_dir=tmp_path / "cache",
                  results_dir=broken, device="cpu", progress=False)
    result = gated_compare(broken, base, max_drop=0.5)
    (row,) = result.rows
    test = result.tests[row.model, row.dataset, row.task, row.variant]
    assert result.failed and row.status == "DROP" and test.p_value < 0.01 and test.ci_high < -0.5
    assert ": regression (paired bootstrap)" in row.note
    assert main(["compare", str(broken), "--baseline", str(base), "--max-drop", "0.5"]) == 1
    capsys.readouterr()
    assert main(["samples", record["record_id"][:8], "--results", str(base)]) == 0
    out = capsys.readouterr().out
    assert "300 images, 900 captions: mean_recall" in out and "Captions whose image ranked lowest" in out


SELECTION = parse_suite({"version": 1, "datasets": ["shapes_compositional"], "tasks": ["image_caption_selection"],
                         "options": {"bootstrap": 0, "offline": True, "threads": 1}}, "t", "s", check_dataset=None)


def test_selection_outcomes_get_mcnemar(shapes_data_root, tmp_path, capsys):
    (record,) = clipbench.run(_shapes_model(), suite=SELECTION, data_root=shapes_data_root, cache_dir=tmp_path / "cache",
                              results_dir=tmp_path / "base", device="cpu", progress=False)
    log = read_samples(tmp_path / "base", record)
    assert isinstance(log, OutcomeSamples) and len(log) == record["n_samples"]
    assert 100.0 * log.columns["correct"].mean() == pytest.approx(record["metrics"]["accuracy"], abs=1e-9)
    assert int(log.columns["tie"].sum()) == record["image_caption_selection"]["n_ties"] and set(log.subset) == set(record["image_caption_selection"]["per_subset"])

    for n, status in ((4, "ok"), (40, "DROP")):
        new = tmp_path / f"new{n}"
        shutil.copytree(tmp_path / "base", new)

        def flip(table, n=n):
            correct = table.column("correct").to_numpy(zero_copy_only=False).copy()
            correct[np.flatnonzero(correct)[:n]] = False
            i = table.schema.get_field_index("correct")
            return table.set_column(i, "correct", pa.array(correct)), {"accuracy": 100.0 * correct.mean()}

        _rewrite(new, flip)
        result = gated_compare(new, tmp_path / "base", max_drop=0.25)
        (row,) = result.rows
        test = result.tests[row.model, row.dataset, row.task, row.variant]
        assert test.test == "mcnemar" and test.discordant == (n, 0) and row.status == status
        assert test.p_value == pytest.approx(scipy.stats.binomtest(0, n, 0.5).pvalue)
    assert main(["samples", record["record_id"], "--results", str(tmp_path / "base")]) == 0
    out = capsys.readouterr().out
    assert "accuracy per subset:" in out and "Lowest margin:" in out and "replace_colour" in out
    worst = int(np.argmin(log.columns["margin"]))  # the clearest failure, with its caption and the negative it lost to
    line = next(row for row in out.splitlines() if row.strip().startswith(f"{worst} "))
    assert log.columns["positive"][worst] in line and log.columns["best_negative"][worst] in line
    split = get_dataset("shapes_compositional").load_split("test", shapes_data_root)
    assert log.columns["positive"][worst] == split.positives[worst]
    assert log.columns["best_negative"][worst] in split.negatives[worst]


def test_image_retrieval_queries_get_a_paired_bootstrap(tmp_path):
    rng = np.random.default_rng(0)
    for name, rgb in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}.items():
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(5):
            pixels = np.clip(np.array(rgb) + rng.normal(0, 60, size=(24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{i}.png")
    (record,) = api.run(suite="image_retrieval", datasets=[f"folder:{tmp_path / 'photos'}"], bootstrap=0,
                        results_dir=tmp_path / "r", cache_dir=tmp_path / "c", progress=False)
    log = read_samples(tmp_path / "r", record)
    assert isinstance(log, OutcomeSamples) and len(log) == 15
    assert 100.0 * log.columns["ap_at_r"].mean() == pytest.approx(record["metrics"]["map_at_r"], abs=1e-9)
    assert 100.0 * log.columns["hit@5"].mean() == pytest.approx(record["metrics"]["recall_at_5"], abs=1e-9)
    (row,) = gated_compare(tmp_path / "r", tmp_path / "r").rows
    assert row.status == "ok" and "(paired bootstrap)" in row.note


def test_paired_outcomes_hand_computed():
    base = np.array([True] * 6 + [False] * 4)
    new = base.copy()
    new[:2] = False
    r = paired_outcomes("accuracy", base, new, n_resamples=500)
    assert r.test == "mcnemar" and r.discordant == (2, 0) and r.difference == pytest.approx(-20.0)
    assert r.p_value == pytest.approx(0.5) and r.ci_low <= -20 <= r.ci_high
    ap_base, ap_new = np.linspace(0, 1, 50), np.linspace(0, 1, 50) - 0.1
    r = paired_outcomes("map_at_r", ap_base, ap_new, n_resamples=500)
    # every query lost exactly 10 points: the difference does not vary over resamples
    assert r.test == "bootstrap" and r.difference == pytest.approx(-10.0)
    assert r.ci_low == pytest.approx(-10.0) and r.ci_high == pytest.approx(-10.0) and r.p_value < 0.01
