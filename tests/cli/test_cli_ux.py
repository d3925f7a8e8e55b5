"""CLI conventions (issue 19): --version, flags after the subcommand, one-line argparse errors with close
matches, repeated/escaped list flags, duplicates rejected, --limit at or above the split size, --format,
and suites over datasets a user only partly has (checked before any model is loaded, --skip-missing)."""

from __future__ import annotations

import json
import re

import pytest
from _engine_fixtures import write_tiny_clip

from clipbench import __version__, api
from clipbench.cli import main


def _one_line_error(capsys, code: int = 2) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"clipbench {__version__}"


def test_debug_and_verbose_after_the_subcommand(capsys):
    assert main(["run", "--suite", "smok", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "unknown suite 'smok'" in err  # --debug was honoured after `run`
    assert main(["list", "suites", "-v"]) == 0


@pytest.mark.parametrize("argv, expected", [
    (["runn"], "did you mean run?"),
    (["run", "--modle", "x"], "did you mean --model"),
    (["run", "--precision", "fp64"], "did you mean fp16"),
    (["list", "suits"], "did you mean suites?"),
])
def test_argparse_errors_are_one_line_with_close_matches(capsys, argv, expected):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = _one_line_error(capsys)
    assert expected in err and "--help" in err and "usage:" not in err


def test_repeated_and_escaped_list_flags(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(api, "run", lambda model, **kw: calls.append((model, kw["datasets"])) or [])
    comma_path = tmp_path / "a,b.pt"
    comma_path.write_bytes(b"x")
    assert main(["run", "--model", "RN50,ViT-B/32", "--model", str(comma_path), "--model", r"my\,model",
                 "--dataset", "digits", "--dataset", "cifar10,cifar100"]) == 0
    assert calls == [(["RN50", "ViT-B/32", str(comma_path), "my,model"], ["digits", "cifar10", "cifar100"])]


@pytest.mark.parametrize("argv, message", [
    (["run", "--suite", "smoke", "--dataset", "digits,digits"], "digits given more than once"),
    (["run", "--suite", "smoke", "--dataset", "digits", "--dataset", "digits"], "digits given more than once"),
    (["run", "--suite", "smoke", "--fewshot-k", "2", "--seeds", "0,0,0"], "--seeds lists a seed more than once"),
])
def test_duplicates_are_rejected(capsys, argv, message):
    assert main(argv) == 2
    assert message in _one_line_error(capsys)


def test_duplicate_yaml_keys_are_rejected_naming_the_file(tmp_path, capsys):
    suite = tmp_path / "dup.yaml"
    suite.write_text("version: 1\ndatasets: [digits]\ntasks: [zeroshot]\noptions:\n  seed: 1\n  seed: 2\n")
    assert main(["run", "--suite", str(suite)]) == 2
    err = _one_line_error(capsys)
    assert str(suite) in err and "'seed' appears more than once" in err and "line 6" in err


def test_limit_at_least_the_split_size_is_a_full_run(tmp_path, capsys):
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    (tmp_path / "zs.yaml").write_text("version: 1\ndatasets: [digits]\ntasks: [zeroshot]\n"
                                      "options: {batch_size: 64, bootstrap: 0}\n")
    common = ["run", "--model", str(ckpt), "--suite", str(tmp_path / "zs.yaml"), "--results-dir", str(tmp_path / "r"),
              "--cache-dir", str(tmp_path / "c"), "--no-progress", "--format", "json"]
    assert main([*common, "--limit", "100000"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["variant"] == "" and row["n"] == 797  # the whole test split: the full-run row
    record = json.loads((tmp_path / "r" / "results.jsonl").read_text().splitlines()[0])
    assert record["limit"] is None
    assert main([*common, "--limit", "50"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["variant"] == "limit=50" and row["n"] == 50


def test_format_json_and_csv_for_list_and_compare(tmp_path, capsys):
    assert main(["list", "suites", "--format", "json"]) == 0
    suites = json.loads(capsys.readouterr().out)
    assert {"smoke", "ci"} <= {s["name"] for s in suites}
    assert main(["list", "tasks", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("task,title,dataset_kinds")
    assert main(["compare", "results/baseline", "--baseline", "results/baseline", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["task"] for r in rows} == {"zeroshot", "linear_probe", "zeroshot_retrieval"} and not any(r["failed"] for r in rows)


def test_missing_datasets_are_listed_before_any_model_is_loaded(tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the datasets were checked")

    monkeypatch.setattr("clipbench.engine.runner.model_of", no_model)
    empty = tmp_path / "data"
    empty.mkdir()
    assert main(["run", "--suite", "zeroshot", "--model", "ViT-B/32", "--data-root", str(empty),
                 "--results-dir", str(tmp_path / "r")]) == 2
    err = _one_line_error(capsys)
    assert "19 of 19 datasets are not under the data root" in err and "cifar10 (clipbench download cifar10)" in err
    assert "--skip-missing" in err and "imagenet1k (ImageNet needs a licence" in err


def test_skip_missing_runs_what_is_present_and_says_what_it_skipped(tmp_path, capsys):
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    argv = ["run", "--model", str(ckpt), "--suite", "smoke", "--dataset", "digits,cifar10", "--skip-missing",
            "--limit", "30", "--bootstrap", "0", "--data-root", str(tmp_path / "data"),
            "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped cifar10: not present (clipbench download cifar10)" in out
    records = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert {r["dataset"] for r in records} == {"digits"}


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_train_tiny_checks_its_output_before_training(tmp_path, capsys, monkeypatch, where):
    import clipbench.training.tiny as tiny

    monkeypatch.setattr(tiny, "train_tiny", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    (tmp_path / "file").write_text("x")
    out = tmp_path / "out.pt" if where == "a directory" else tmp_path / "file" / "out.pt"
    if where == "a directory":
        out.mkdir()
    assert main(["train-tiny", "--out", str(out), "--steps", "1"]) == 2
    err = _one_line_error(capsys)
    assert "cannot write" in err or "not a directory" in err
    assert f"--out {out}" in err and not re.search(r"\.tmp[-_.]|tmp[a-z0-9_]{8}", err.replace(str(tmp_path), ""))
