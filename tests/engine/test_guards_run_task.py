"""`clipbench run --task`: only those tasks of the suite (same numbers as the whole suite gives them), or
those tasks alone over --dataset without a suite; unknown or misplaced names are one line."""

from __future__ import annotations

import json

import pytest
from _guards_fixtures import one_line_exit_2

from clipbench.cli import main

QUICK = ["--model", "clipbench-tiny", "--limit", "120", "--bootstrap", "0", "--no-progress", "--device", "cpu",
         "--format", "json"]


def run_json(capsys, argv) -> list[dict]:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def records(results_dir) -> list[dict]:
    return [json.loads(line) for line in (results_dir / "results.jsonl").read_text().splitlines()]


def test_task_narrows_the_suite_with_the_same_numbers(tmp_path, capsys):
    whole = run_json(capsys, ["run", "--suite", "smoke", *QUICK, "--results-dir", tmp_path / "all"])
    assert sorted(r["task"] for r in whole) == ["linear_probe", "zeroshot"]
    only = run_json(capsys, ["run", "--suite", "smoke", "--task", "zeroshot", *QUICK, "--results-dir", tmp_path / "one"])
    assert [r["task"] for r in only] == ["zeroshot"]
    assert only[0]["value"] == next(r["value"] for r in whole if r["task"] == "zeroshot")
    (record,) = records(tmp_path / "one")
    assert record["suite"] == "smoke" and record["task"] == "zeroshot"


def test_task_alone_over_a_dataset(tmp_path, capsys):
    rows = run_json(capsys, ["run", "--task", "zeroshot", "--dataset", "digits", *QUICK, "--offline",
                             "--results-dir", tmp_path / "r"])
    assert [(r["task"], r["dataset"]) for r in rows] == [("zeroshot", "digits")]
    assert records(tmp_path / "r")[0]["suite"] == "task:zeroshot"


@pytest.mark.parametrize("argv, message", [
    (["--task", "zeroshoot", "--dataset", "digits"], "did you mean zeroshot"),
    (["--suite", "smoke", "--task", "knn"], "suite 'smoke' runs zeroshot, linear_probe, not knn"),
    (["--task", "zeroshot"], "--task zeroshot without --suite needs --dataset"),
    (["--suite", "smoke", "--task", "zeroshot,zeroshot"], "zeroshot given more than once"),
])
def test_bad_task_is_one_line(tmp_path, capsys, argv, message):
    err = one_line_exit_2(capsys, ["run", *argv, "--model", "clipbench-tiny", "--device", "cpu",
                                   "--results-dir", tmp_path])
    assert message in err, err
