"""Per-sample prediction files: written beside the results for zero-shot and the linear probe, referenced
by path and SHA-256, consistent with the record's metrics, governed by --log-samples, and read back by
`clipbench samples`."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

import clipbench
from clipbench.cli import main
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import sha256_file
from clipbench.results import samples as samples_mod
from clipbench.results.records import read_records
from clipbench.results.samples import SampleFileError, read_samples, should_log
from clipbench.scoring.classification import classification_metrics
from clipbench.scoring.samples.classification import build_table, confusion_pairs
from clipbench.suites import parse_suite

SUITE = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot", "linear_probe"],
                     "options": {"bootstrap": 0, "offline": True, "threads": 1}}, "t", "samples", check_dataset=None)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    clipbench.run("clipbench-tiny", suite=SUITE, cache_dir=root / "cache", results_dir=root / "res",
                  device="cpu", progress=False)
    return root


def test_each_record_references_its_sample_file_by_path_and_hash(run_dir):
    res = run_dir / "res"
    records = read_records(res)
    assert [r["task"] for r in records] == ["zeroshot", "linear_probe"]
    for record in records:
        ref = record["samples"]
        assert ref["path"] == f"samples/{record['record_id']}.parquet"  # relative to the results dir
        assert ref["sha256"] == sha256_file(res / ref["path"]) and ref["n"] == record["n_samples"] == 797
        log = read_samples(res, record)
        assert np.array_equal(log.index, np.arange(797))
        # the file reproduces the record's numbers
        assert 100 * log.correct.mean() == pytest.approx(record["metrics"]["top1"])
        assert 100 * log.correct_at(5).mean() == pytest.approx(record["metrics"]["top5"])
        assert log.top5.shape == (797, 5) and (np.diff(log.top5_scores, axis=1) <= 0).all()
        assert ((log.confidence > 0) & (log.confidence <= 1)).all()
        assert log.meta["classnames"][:3] == ["zero", "one", "two"]
    table = pq.read_table(res / records[0]["samples"]["path"])
    assert table.column_names == ["index", "label", "top5", "top5_scores", "label_rank", "correct", "confidence"]
    assert str(table.schema.field("correct").type) == "bool"
    assert read_samples(res, records[1]).meta["score_kind"] == "probabilities"


def test_build_table_ranks_and_confidence_match_the_metrics():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 7)).astype(np.float32)
    scores[0] = 0.0  # a full tie: the lowest class index wins, as in clipbench.scoring.classification
    labels = rng.integers(0, 7, 50)
    table = build_table(scores, labels, "logits")
    rank = table.column("label_rank").to_numpy()
    metrics = classification_metrics(scores, labels)
    assert 100 * (rank == 0).mean() == pytest.approx(metrics["top1"])
    assert 100 * (rank < 5).mean() == pytest.approx(metrics["top5"])
    assert rank[0] == labels[0]  # everything ties at 0: the true class is ranked by its index
    exp = np.exp(scores - scores.max(1, keepdims=True))
    assert np.allclose(table.column("confidence").to_numpy(), exp.max(1) / exp.sum(1), atol=1e-6)
    scores[1:10] = np.round(scores[1:10])  # more ties
    top5 = np.array(build_table(scores, labels, "logits").column("top5").to_pylist())
    assert np.array_equal(top5[:, 0], scores.argmax(1))  # the first column is the prediction, exactly
    assert (np.take_along_axis(scores, top5, 1) == -np.sort(-scores, 1)[:, :5]).all()  # and the best 5 scores
    with pytest.raises(ValueError, match="unknown score kind"):
        build_table(scores, labels, "votes")


def test_log_samples_setting():
    assert should_log("auto", 50_000) and not should_log("auto", 50_001)
    assert should_log("always", 10 ** 7) and should_log(True, 10 ** 7)
    assert not should_log("never", 1) and not should_log(False, 1)


def test_never_auto_threshold_and_no_write(run_dir, tmp_path, monkeypatch):
    zs = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                      "options": {"bootstrap": 0, "offline": True, "log_samples": "never"}}, "t", "n",
                     check_dataset=None)
    common = {"cache_dir": run_dir / "cache", "device": "cpu", "progress": False}
    (record,) = clipbench.run("clipbench-tiny", suite=zs, results_dir=tmp_path / "never", **common)
    assert "samples" not in record and not (tmp_path / "never" / "samples").exists()
    (record,) = clipbench.run("clipbench-tiny", suite=zs, results_dir=tmp_path / "always", log_samples="always",
                              **common)
    assert (tmp_path / "always" / record["samples"]["path"]).is_file()
    monkeypatch.setattr(samples_mod, "AUTO_MAX_SAMPLES", 100)  # 797 samples is now a "large" split
    (record,) = clipbench.run("clipbench-tiny", suite=zs, results_dir=tmp_path / "auto", log_samples="auto",
                              **common)
    assert "samples" not in record
    (record,) = clipbench.run("clipbench-tiny", suite=zs, results_dir=tmp_path / "nowrite", log_samples="always",
                              write=False, **common)
    assert "samples" not in record and not (tmp_path / "nowrite").exists()
    with pytest.raises(ClipbenchError, match="log-samples must be auto, always, never"):
        clipbench.run("clipbench-tiny", suite=zs, results_dir=tmp_path / "bad", log_samples="sometimes", **common)


def test_fewshot_records_have_no_sample_file(run_dir, tmp_path):
    probe = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["linear_probe"],
                         "options": {"bootstrap": 0, "offline": True, "fewshot_k": 2}}, "t", "fs", check_dataset=None)
    (record,) = clipbench.run("clipbench-tiny", suite=probe, cache_dir=run_dir / "cache", results_dir=tmp_path,
                              device="cpu", progress=False)
    assert record["task"] == "linear_probe_2shot" and "samples" not in record


def test_a_failed_record_append_leaves_no_sample_file(run_dir, tmp_path, monkeypatch):
    import clipbench.api

    def full(*args, **kwargs):
        raise ClipbenchError("no space left on device while writing results.jsonl")

    monkeypatch.setattr("clipbench.engine.runner.append_record", full)
    zs = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot"],
                      "options": {"bootstrap": 0, "offline": True}}, "t", "z", check_dataset=None)
    with pytest.raises(ClipbenchError, match="no space left"):
        clipbench.run("clipbench-tiny", suite=zs, cache_dir=run_dir / "cache", results_dir=tmp_path, device="cpu",
                      progress=False)
    assert list((tmp_path / "samples").iterdir()) == []  # neither the file nor a temporary one


def test_read_samples_refuses_a_damaged_file(run_dir, tmp_path):
    import shutil

    res = tmp_path / "res"
    shutil.copytree(run_dir / "res", res)
    record = read_records(res)[0]
    path = res / record["samples"]["path"]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(SampleFileError, match="does not match the SHA-256"):
        read_samples(res, record)
    path.unlink()
    with pytest.raises(SampleFileError, match="unreadable"):
        read_samples(res, record)
    with pytest.raises(SampleFileError, match="has no per-sample file"):
        read_samples(res, {**record, "samples": None})


def test_samples_command_shows_confident_errors_and_confusions(run_dir, capsys):
    res = run_dir / "res"
    record = read_records(res)[0]
    assert main(["samples", record["record_id"][:8], "--results", str(res), "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert f"clipbench-tiny / digits / zeroshot (record {record['record_id']}" in out
    assert "Most confident errors:" in out and "Top confusion pairs (true -> predicted):" in out
    log = read_samples(res, record)
    pairs = confusion_pairs(log, 3)
    assert pairs[0]["count"] >= pairs[1]["count"] >= pairs[2]["count"]
    names = log.meta["classnames"]
    assert f"{names[pairs[0]['label']]} ({pairs[0]['label']})" in out.split("Top confusion pairs")[1]
    wrong = np.flatnonzero(~log.correct)
    most = wrong[np.argmax(log.confidence[wrong])]
    lines = out.splitlines()
    first_error = lines[lines.index("Most confident errors:") + 3]
    assert first_error.startswith(f"  {log.index[most]} ")  # the most confident error comes first
    assert main(["samples", "ffffffffff", "--results", str(res)]) == 2
    assert "no record with id 'ffffffffff'" in capsys.readouterr().err


@pytest.mark.subprocess
def test_two_concurrent_runs_each_reference_an_intact_sample_file(tmp_path):
    from _fault_fixtures import expect_ok, start_cli

    (tmp_path / "suite.yaml").write_text("version: 1\ndatasets: [digits]\ntasks: [zeroshot]\n"
                                         "options: {offline: true, bootstrap: 0, threads: 1}\n")
    argv = ["run", "--model", "clipbench-tiny", "--suite", str(tmp_path / "suite.yaml"), "--limit", "60",
            "--device", "cpu", "--no-progress", "--cache-dir", str(tmp_path / "cache"),
            "--results-dir", str(tmp_path / "res")]
    procs = [start_cli(argv) for _ in range(2)]
    for proc in procs:
        expect_ok(proc)
    records = read_records(tmp_path / "res")
    assert len(records) == 2 and len({r["samples"]["path"] for r in records}) == 2
    for record in records:
        assert len(read_samples(tmp_path / "res", record)) == 60
    assert sorted(p.name for p in (tmp_path / "res" / "samples").iterdir()) == sorted(
        f"{r['record_id']}.parquet" for r in records)  # no temporary or orphaned files
