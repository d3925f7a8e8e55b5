"""The task seam: a task written in one file (outside clipbench) runs through `clipbench run` and shows
up in the leaderboard, compare and report with no edit anywhere else; the registry drives suites,
options and `clipbench list tasks`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _engine_fixtures import write_tiny_clip

import clipbench
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.engine.options import all_options
from clipbench.engine.runner import limit_split, resolve_options
from clipbench.foundations.errors import ClipbenchError
from clipbench.suites import parse_suite
from clipbench.tasks.registry import TASKS, task_for_record, task_title

PLUGIN = '''
"""A throwaway task: the mean and the largest p-norm of the image features."""
import numpy as np

from clipbench.foundations.option import Option, positive_int
from clipbench.tasks.base import DetailTable, SampleTable, Task, TaskResult, cell
from clipbench.tasks.registry import register_task


class MeanFeatureNorm(Task):
    name = "mean_feature_norm"
    title = "Mean image-feature norm"
    metrics = ("mean_norm", "max_norm")
    summary_columns = ("max_norm",)
    options = (Option("norm_order", 2, positive_int, "a positive integer", "which p-norm", int,
                      owner="mean_feature_norm"),)

    def primary_metric(self, adapter):
        return "mean_norm"

    def variant_parts(self, record):
        order = self.block(record)["norm_order"]
        return [] if order == 2 else [f"p={order}"]

    def detail_table(self, records, names):
        rows = [[names.get(r["model"], r["model"]), r["dataset"], str(self.block(r)["norm_order"]),
                 cell(r["metrics"]["max_norm"])] for r in records]
        return DetailTable("Feature norms", ["model", "dataset", "p", "max norm"], rows, "p-norms of image features.")

    def run(self, ctx, model, adapter):
        split = ctx.evaluation_split(adapter)
        feats = ctx.features(model, split)
        norms = np.linalg.norm(feats.features.astype(np.float64), ord=ctx.options.norm_order, axis=1)

        return TaskResult(split, {"mean_norm": float(norms.mean()), "max_norm": float(norms.max())},
                          block={"norm_order": ctx.options.norm_order},
                          notes=[] if ctx.options.norm_order == 2 else ["not the Euclidean norm"],
                          samples=SampleTable("outcomes", len(norms), {"index": np.arange(len(norms)),  # metric = 100 x mean
                                                                         "outcomes": {"norm": norms / 100.0}},
                                              {"metrics": {"mean_norm": "norm"}}))


register_task(MeanFeatureNorm())
'''
LIMIT = 30


def _clipbench(args: list[str], plugin_dir: Path, python: bool = False, **env) -> subprocess.CompletedProcess:
    """``clipbench ARGS`` (or ``python ARGS``) with the plugin task registered."""
    environ = {**os.environ, "CLIPBENCH_PLUGINS": "feature_norm_task",
               "PYTHONPATH": os.pathsep.join([str(plugin_dir), *sys.path]), **env}
    command = [sys.executable] if python else [sys.executable, "-m", "clipbench.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=environ, timeout=300)


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("seam")
    (base / "feature_norm_task.py").write_text(PLUGIN)
    ckpt = write_tiny_clip(base / "tiny.pt")
    (base / "suite.yaml").write_text("version: 1\ndatasets: [digits]\ntasks: [mean_feature_norm]\n"
                                     "options: {batch_size: 16}\n")
    common = ["--model", str(ckpt), "--suite", str(base / "suite.yaml"), "--limit", str(LIMIT),
              "--cache-dir", str(base / "cache"), "--device", "cpu", "--no-progress"]
    first = _clipbench(["run", *common, "--results-dir", str(base / "res")], base)
    assert first.returncode == 0, first.stderr
    p3 = _clipbench(["run", *common, "--results-dir", str(base / "res"), "--norm-order", "3"], base)
    assert p3.returncode == 0, p3.stderr
    return base, ckpt, first


@pytest.mark.subprocess
def test_plugin_task_runs_through_the_cli_and_scores_what_it_says(plugin_run):
    base, ckpt, first = plugin_run
    records = [json.loads(line) for line in (base / "res" / "results.jsonl").read_text().splitlines()]
    assert [r["task"] for r in records] == ["mean_feature_norm", "mean_feature_norm"]
    assert [r["mean_feature_norm"] for r in records] == [{"norm_order": 2}, {"norm_order": 3}]  # its block
    assert "notes" not in records[0] and records[1]["notes"] == ["not the Euclidean norm"]
    header = first.stdout.splitlines()[0].split()
    assert "mean_feature_norm" in first.stdout and header[-2:] == ["max_norm", "n"]  # the printed table: its column
    assert all((base / "res" / r["samples"]["path"]).is_file() for r in records)  # its per-sample file
    # the number, computed here without the engine
    model = clipbench.load_model(ckpt)
    split = limit_split(get_dataset("digits").load_split("test", base), LIMIT, 0)
    ds = split.torch_dataset(model.preprocess)
    with torch.inference_mode():
        feats = np.stack([model.encode_image(ds[i][0][None])[0].numpy() for i in range(len(split))])
    norms = np.linalg.norm(feats.astype(np.float64), axis=1)
    expected = norms.mean()
    assert records[0]["metrics"]["mean_norm"] == pytest.approx(expected, rel=1e-4)
    assert records[0]["primary_metric"] == "mean_norm" and records[0]["n_samples"] == LIMIT


@pytest.mark.subprocess
def test_plugin_task_in_leaderboard_compare_and_report(plugin_run):
    base, _, _ = plugin_run
    with open(base / "res" / "leaderboard.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["task"] == "mean_feature_norm"]
    assert sorted({r["variant"] for r in rows}) == [f"limit={LIMIT}", f"limit={LIMIT},p=3"]  # the task's variant
    same = _clipbench(["compare", str(base / "res" / "leaderboard.csv"), "--baseline", str(base / "res" / "leaderboard.csv")], base)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.count("| mean_feature_norm |") == 2
    gated = _clipbench(["compare", str(base / "res"), "--baseline", str(base / "res"), "--max-drop", "0"], base)
    assert gated.returncode == 0, gated.stdout + gated.stderr  # the gate's verdict: a paired test on its samples
    assert gated.stdout.count("(mean_norm): no change, p = 1 (paired bootstrap)") == 2
    report = _clipbench(["report", str(base / "res"), "--out", str(base / "report")], base)
    assert report.returncode == 0, report.stderr
    assert "## Mean image-feature norm" in (base / "report" / "report.md").read_text()
    # its report table, from its declaration (what the report's detail section renders)
    details = _clipbench(["-c", "import sys; from clipbench.results.records import latest_records, read_records; "
                          "from clipbench.tasks.details import task_detail_blocks; "
                          "print(task_detail_blocks(latest_records(read_records(sys.argv[1]))))",
                          str(base / "res")], base, python=True)
    assert details.returncode == 0, details.stderr
    assert "DetailTable(title='Feature norms', header=['model', 'dataset', 'p', 'max norm']" in details.stdout
    assert "'3'" in details.stdout and "'2'" in details.stdout


@pytest.mark.subprocess
def test_plugin_task_listed_and_its_option_is_a_flag(plugin_run):
    base, _, _ = plugin_run
    listed = _clipbench(["list", "tasks"], base)
    assert listed.returncode == 0
    assert "mean_feature_norm" in listed.stdout and "norm_order=2" in listed.stdout
    assert "--norm-order" in _clipbench(["run", "--help"], base).stdout
    bad = _clipbench(["run", "--suite", "smoke", "--norm-order", "2"], base)
    assert bad.returncode == 2 and "--norm-order applies to the mean image-feature norm" in bad.stderr


def test_builtin_registry_and_titles():
    assert TASKS.names()[:2] == ["zeroshot", "linear_probe"]
    assert task_for_record("linear_probe_4shot").name == "linear_probe"
    assert task_for_record("no_such_task") is None
    assert task_title("linear_probe_4shot") == "Linear probe (4-shot)"
    owners = {name: o.owner for name, o in all_options().items()}
    assert owners["solver"] == "linear_probe" and owners["batch_size"] == ""


def test_suite_per_task_options_apply_and_are_checked():
    suite = parse_suite({"version": 1, "datasets": ["digits"], "tasks": ["zeroshot", {"linear_probe": {"solver":
                        "sklearn"}}]}, "s.yaml", "s")
    assert suite.tasks == ("zeroshot", "linear_probe") and suite.task_options == {"linear_probe": {"solver": "sklearn"}}
    assert resolve_options(suite, {}, "cpu").solver == "sklearn"
    assert resolve_options(suite, {"solver": "torch"}, "cpu").solver == "torch"  # the caller still wins
    for tasks, message in [([{"linear_probe": {"batch_size": 3}}], "not an option of this task"),
                           ([{"linear_probe": {"solvr": "torch"}}], "did you mean solver"),
                           (["zeroshot", "zeroshot"], "more than once"),
                           (["zeroshoot"], "did you mean zeroshot")]:
        with pytest.raises(ClipbenchError, match=message):
            parse_suite({"version": 1, "datasets": ["digits"], "tasks": tasks}, "s.yaml", "s")


def test_list_tasks_in_process(capsys):
    assert main(["list", "tasks"]) == 0
    out = capsys.readouterr().out
    assert "zeroshot" in out and "solver='torch'" in out and "classification" in out


def test_records_name_their_data_and_how_their_features_were_extracted(tmp_path):
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    kwargs = dict(model=str(ckpt), suite="smoke", limit=24, bootstrap=0, device="cpu", progress=False,
                  cache_dir=tmp_path / "cache", results_dir=tmp_path / "res")
    zs, probe = clipbench.run(batch_size=8, **kwargs)
    assert zs["extraction"]["batch_size"] == 8 and probe["extraction"]["batch_size"] == 8
    assert zs["extraction"]["torch_threads"] == 1 and zs["verify_data"] is False
    assert zs["data_identity"]["kind"] == "arrays" and zs["data_identity"]["content_sha256"]
    assert probe["linear_probe"]["train_data_identity"]["kind"] == "arrays"
    # another batch size is other features (float bits move with it): the record never borrows them
    zs16, _ = clipbench.run(batch_size=16, **kwargs)
    assert zs16["extraction"]["batch_size"] == 16
