"""Peers' formats, trackers and the results dataset, on one real run: `clipbench run --suite smoke --log-to
wandb,mlflow,tensorboard` (offline: W&B's offline mode, an MLflow file store, TensorBoard event files), whose
records are then read back by each tracker's own reader and exported to CLIP_benchmark (read by its own `build`),
MTEB (read by mteb's ResultCache) and open_clip's results table."""

from __future__ import annotations

import argparse
import csv
import json
import struct
from pathlib import Path

import pytest

from clipbench import api
from clipbench.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("tracked")
    env = {"WANDB_MODE": "offline", "WANDB_CONFIG_DIR": base / "wb", "WANDB_CACHE_DIR": base / "wb",
           "WANDB_DATA_DIR": base / "wb", "WANDB_ARTIFACT_DIR": base / "wb", "WANDB_PROJECT": "clipbench-test",
           "MLFLOW_TRACKING_URI": (base / "mlruns").as_uri(), "MLFLOW_ALLOW_FILE_STORE": "true"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, str(value))
        assert main(["run", "--suite", "smoke", "--log-to", "wandb,mlflow,tensorboard", "--results-dir",
                     str(base / "r"), "--cache-dir", str(base / "c"), "--no-progress", "--device", "cpu"]) == 0
    return base


@pytest.fixture(scope="module")
def records(run_dir):
    return [json.loads(line) for line in (run_dir / "r" / "results.jsonl").read_text().splitlines()]


def _prefix(record):
    return f"{record['model']}/{record['dataset']}/{record['task']}"


# ------------------------------------------------------------------ trackers, read back by their own readers

def _wandb_records(run_file: Path):
    """The protobuf records of W&B's offline run file (its LevelDB-style log: a 7-byte header, 32 KiB blocks of
    chunks with a 7-byte header: CRC32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, chunks, out = run_file.read_bytes(), 7, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pos += 7
        if kind == 0:
            pos += left - 7
            continue
        chunks += data[pos:pos + length]
        pos += length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            out.append(record)
            chunks = b""
    return out


def test_wandb_offline_run_holds_each_records_metric_ci_and_weights_hash(run_dir, records):
    (run_file,) = (run_dir / "r" / "wandb").glob("offline-run-*/run-*.wandb")
    summary, config = {}, {}
    for item in _wandb_records(run_file):
        kind = item.WhichOneof("record_type")
        if kind == "summary":
            summary.update({"/".join(u.nested_key) or u.key: json.loads(u.value_json) for u in item.summary.update})
        elif kind in ("config", "run"):
            updates = item.config.update if kind == "config" else item.run.config.update
            config.update({u.key: json.loads(u.value_json) for u in updates})
    files = {p.relative_to(run_file.parent / "files").as_posix() for p in (run_file.parent / "files").rglob("*")}
    for record in records:
        prefix, primary = _prefix(record), record["primary_metric"]
        assert summary[f"{prefix}/{primary}"] == pytest.approx(record["metrics"][primary], abs=1e-9)
        assert summary[f"{prefix}/{primary}_ci95_low"] == pytest.approx(record["ci95"]["low"], abs=1e-9)
        assert summary[f"{prefix}/{primary}_ci95_high"] == pytest.approx(record["ci95"]["high"], abs=1e-9)
        assert config[prefix]["weights_sha256"] == record["weights_sha256"]
        assert config[prefix]["dataset_fingerprint"] == record["dataset_fingerprint"]
        assert record["samples"]["path"] in files  # the per-sample file, saved with the run
    assert config["options/seed"] == "0" and config["clipbench_version"] == records[0]["versions"]["clipbench"]
    assert "report/report.md" in files


def test_mlflow_run_holds_each_records_metric_ci_weights_hash_and_files(run_dir, records):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(run_dir / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("clipbench").experiment_id])
    metrics, params = run.data.metrics, run.data.params
    for record in records:
        prefix, primary = _prefix(record), record["primary_metric"]
        assert metrics[f"{prefix}/{primary}"] == pytest.approx(record["metrics"][primary], abs=1e-9)
        assert metrics[f"{prefix}/primary"] == pytest.approx(record["metrics"][primary], abs=1e-9)
        assert metrics[f"{prefix}/{primary}_ci95_low"] == pytest.approx(record["ci95"]["low"], abs=1e-9)
        assert metrics[f"{prefix}/{primary}_ci95_high"] == pytest.approx(record["ci95"]["high"], abs=1e-9)
        assert params[f"{prefix}/weights_sha256"] == record["weights_sha256"]
        assert params[f"{prefix}/git_commit"] == ((record.get("git") or {}).get("commit") or "")
    assert run.info.status == "FINISHED" and params["options/seed"] == "0"
    samples = {Path(f.path).name for f in client.list_artifacts(run.info.run_id, "samples")}
    assert samples == {Path(r["samples"]["path"]).name for r in records}
    assert "report/report.md" in {f.path for f in client.list_artifacts(run.info.run_id, "report")}


def test_tensorboard_events_hold_each_records_metric_ci_and_weights_hash(run_dir, records):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (logdir,) = (run_dir / "r" / "tensorboard").iterdir()
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    for record in records:
        prefix, primary = _prefix(record), record["primary_metric"]
        assert events.Scalars(f"{prefix}/{primary}")[0].value == pytest.approx(record["metrics"][primary], rel=1e-6)
        assert events.Scalars(f"{prefix}/{primary}_ci95_low")[0].value == pytest.approx(record["ci95"]["low"], rel=1e-6)
        assert events.Scalars(f"{prefix}/{primary}_ci95_high")[0].value == pytest.approx(record["ci95"]["high"],
                                                                                         rel=1e-6)
        params = events.Tensors(f"{prefix}/params")[0].tensor_proto.string_val[0].decode()
        assert f"| weights_sha256 | {record['weights_sha256']} |" in params
    assert "clipbench" in events.Tensors("clipbench/report")[0].tensor_proto.string_val[0].decode()


# ------------------------------------------------------------------ peers' formats, read by the peers' own readers

@pytest.mark.peer
def test_clip_benchmark_build_turns_the_export_into_its_csv_with_the_same_numbers(run_dir, records, tmp_path):
    from clip_benchmark.cli import main_build

    assert main(["export", str(run_dir / "r"), "--format", "clip_benchmark", "--out", str(tmp_path / "cb")]) == 0
    main_build(argparse.Namespace(files=[str(tmp_path / "cb")], output=str(tmp_path / "benchmark.csv")))
    with open(tmp_path / "benchmark.csv", newline="") as fh:
        rows = {row["task"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"zeroshot_classification", "linear_probe"}
    by_task = {r["task"]: r for r in records}
    for peer_task, ours, prefix in (("zeroshot_classification", "zeroshot", ""), ("linear_probe", "linear_probe", "lp_")):
        row, record = rows[peer_task], by_task[ours]
        assert (row["model"], row["pretrained"], row["dataset"]) == ("clipbench-tiny", "clipbench", "digits")
        for metric, peer in (("top1", "acc1"), ("top5", "acc5"), ("mean_per_class_recall", "mean_per_class_recall")):
            assert float(row[prefix + peer]) == pytest.approx(record["metrics"][metric] / 100, abs=1e-12)
        assert float(row["ci95_low"]) == pytest.approx(record["ci95"]["low"] / 100, abs=1e-12)
        assert row["weights_sha256"] == record["weights_sha256"]


@pytest.mark.peer
def test_mteb_result_cache_loads_the_export(run_dir, records, tmp_path):
    import mteb
    from mteb.models.model_meta import ModelMeta

    api.export(run_dir / "r", "mteb", tmp_path / "mteb")
    results = mteb.ResultCache(tmp_path / "mteb").load_results(include_remote=False)
    (model,) = results.model_results
    assert (model.model_name, model.model_revision) == ("clipbench/clipbench-tiny", records[0]["weights_sha256"])
    scores = {t.task_name: t for t in model.task_results}
    for record in records:
        task = scores[f"clipbench_digits_{record['task']}"]
        assert task.get_score() == pytest.approx(record["metrics"]["top1"] / 100, abs=1e-12)
        assert task.scores["test"][0]["main_score_ci95_high"] == pytest.approx(record["ci95"]["high"] / 100)
    (meta,) = (tmp_path / "mteb" / "results").glob("*/*/model_meta.json")
    assert ModelMeta.model_validate(json.loads(meta.read_text())).n_parameters == records[0]["model_facts"]["params"]

    # a dataset MIEB has: MIEB's task name, and the scores pass mteb's own validation against that task
    cifar = dict(records[0], dataset="cifar10", record_id="c" * 32)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.jsonl").write_text(json.dumps(cifar) + "\n")
    api.export(tmp_path / "c", "mteb", tmp_path / "mteb2")
    loaded = mteb.ResultCache(tmp_path / "mteb2").load_results(tasks=["CIFAR10ZeroShot"], include_remote=False,
                                                                validate_and_filter=True)
    (task,) = loaded.model_results[0].task_results
    assert task.task_name == "CIFAR10ZeroShot" and task.get_score() == pytest.approx(cifar["metrics"]["top1"] / 100)


def test_openclip_csv_has_open_clips_columns_and_the_zero_shot_numbers(run_dir, records, tmp_path):
    (path,) = api.export(run_dir / "r", "openclip_csv", tmp_path)
    with open(path, newline="") as fh:
        header, row = list(csv.reader(fh))
    # open_clip's docs/openclip_results.csv begins: name,pretrained,params (M),FLOPs (B),Average perf. on 38 datasets
    assert header == ["name", "pretrained", "params (M)", "FLOPs (B)", "Average perf. on 1 datasets", "digits"]
    zeroshot = next(r for r in records if r["task"] == "zeroshot")
    assert row[:3] == ["clipbench-tiny", "clipbench", "3.38"]
    assert float(row[5]) == pytest.approx(zeroshot["metrics"]["top1"] / 100, abs=5e-5) and row[4] == row[5]


def test_hostile_names_stay_inside_the_output_and_inert_in_the_csv(records, tmp_path):
    hostile = [dict(r, model="=cmd|'/c calc'!A1/../../x", dataset="../../etc", record_id=f"{i}" * 32)
               for i, r in enumerate(records)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hostile))
    written = [p for fmt in ("clip_benchmark", "mteb", "openclip_csv")
               for p in api.export(tmp_path / "in", fmt, tmp_path / "out" / fmt)]
    assert written and all((tmp_path / "out").resolve() in p.resolve().parents for p in written)
    text = (tmp_path / "out" / "openclip_csv" / "openclip_results.csv").read_text()
    assert "\n=cmd" not in text and ",=cmd" not in text  # a formula cell is quoted for spreadsheets
    data = json.loads(next(p for p in written if p.suffix == ".json" and "clip_benchmark" in p.parts).read_text())
    assert data["model"] == hostile[0]["model"]  # the name itself survives, as JSON data


def test_export_refuses_a_leaderboard_csv_and_an_unknown_format(run_dir, capsys):
    assert main(["export", str(run_dir / "r" / "leaderboard.csv"), "--format", "mteb", "--out", "x"]) == 2
    assert "not a leaderboard CSV" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(run_dir / "r"), "--format", "lm_eval", "--out", "x"])


# ------------------------------------------------------------------ the results dataset

def test_published_folder_loads_with_datasets_and_holds_the_records_and_their_samples(run_dir, records, tmp_path):
    import datasets

    assert main(["publish", str(run_dir / "r"), "--to", str(tmp_path / "ds")]) == 0
    table = datasets.load_dataset(str(tmp_path / "ds"), "records", split="train", cache_dir=str(tmp_path / "hf"))
    rows = {row["record_id"]: row for row in table}
    assert set(rows) == {r["record_id"] for r in records}
    for record in records:
        row = rows[record["record_id"]]
        assert row["value"] == record["metrics"][record["primary_metric"]]
        assert (row["ci95_low"], row["ci95_high"]) == (record["ci95"]["low"], record["ci95"]["high"])
        assert row["weights_sha256"] == record["weights_sha256"] and json.loads(row["record"]) == record
    samples = datasets.load_dataset(str(tmp_path / "ds"), "samples_classification", split="train",
                                    cache_dir=str(tmp_path / "hf"))
    assert samples.num_rows == sum(r["samples"]["n"] for r in records)
    for record in records:  # each record's rows, in split order, with its accuracy
        mine = samples.filter(lambda row, rid=record["record_id"]: row["record_id"] == rid)
        assert 100 * sum(mine["correct"]) / mine.num_rows == pytest.approx(record["metrics"]["top1"])
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "config_name: samples_classification" in card and "| clipbench-tiny | digits | zeroshot |" in card
    assert records[0]["weights_sha256"] in card


def test_publish_to_the_hub_builds_the_folder_and_uploads_it_as_a_dataset(run_dir, tmp_path, monkeypatch):
    """Up to the push: HfApi is replaced by a recorder (the push itself needs the network and a token)."""
    import huggingface_hub

    calls = []

    class Recorder:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, folder_path, **kwargs):
            files = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
            calls.append(("upload_folder", files, kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", Recorder)
    where = api.publish(run_dir / "r", "hf:my-org/clipbench-results")
    assert where == "https://huggingface.co/datasets/my-org/clipbench-results"
    (create, upload) = calls
    assert create == ("create_repo", "my-org/clipbench-results", {"repo_type": "dataset", "exist_ok": True})
    assert upload[1] == ["README.md", "data/records.parquet", "samples/classification.parquet"]
    assert upload[2]["repo_id"] == "my-org/clipbench-results" and upload[2]["repo_type"] == "dataset"
    with pytest.raises(api.ClipbenchError, match="hf:ORG/NAME"):
        api.publish(run_dir / "r", "hf:../etc")


# ------------------------------------------------------------------ reference rows: published numbers next to measured

def test_report_sets_an_open_clip_table_and_a_clip_benchmark_export_next_to_the_measured_rows(run_dir, records,
                                                                                               tmp_path):
    zeroshot = next(r for r in records if r["task"] == "zeroshot")
    table = tmp_path / "openclip_results.csv"  # open_clip's columns; a published 0.7000 for this model on digits
    table.write_text("name,pretrained,params (M),FLOPs (B),Average perf. on 2 datasets,digits,ImageNet 1k\n"
                     "clipbench-tiny,clipbench,3.38,,0.6,0.7000,0.5\nViT-B-32,openai,151.28,14.78,0.6,0.9,NaN\n")
    api.export(run_dir / "r", "clip_benchmark", tmp_path / "cb")
    report = api.report(run_dir / "r", out_dir=tmp_path / "rep", references=[table, tmp_path / "cb"])
    text = report.markdown.read_text()
    section = text[text.index("## Reference numbers"):]
    measured = f"{zeroshot['metrics']['top1']:.2f}"
    assert f"| clipbench-tiny | digits | zeroshot | top1 | {measured} | 70.00 | " \
           f"{zeroshot['metrics']['top1'] - 70:+.2f} | reference: openclip_results.csv |" in section
    assert f"| {measured} | {measured} | +0.00 | reference: digits_clipbench" in section  # the export reads back
    assert "ViT-B-32" not in section and "not measured here" in section


def test_compare_prints_reference_rows_without_touching_the_verdict(run_dir, tmp_path, capsys):
    api.export(run_dir / "r", "openclip_csv", tmp_path)
    args = ["compare", str(run_dir / "r"), "--baseline", str(run_dir / "r")]
    assert main([*args, "--reference", str(tmp_path / "openclip_results.csv")]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "Reference numbers (published, not measured here; not part of the verdict)" in out
    (tmp_path / "bad.json").write_text('{"dataset": "digits", "model": "x", "task": "zeroshot_classification", '
                                       '"metrics": {"acc1": 55.0}}')  # a percentage where a fraction belongs
    assert main([*args, "--reference", str(tmp_path / "bad.json")]) == 2
    assert "holds no CLIP_benchmark or open_clip result" in capsys.readouterr().err
