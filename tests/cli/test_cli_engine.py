"""CLI layer of the engine: compare exit codes, one-line errors (exit 2), list suites, cache list/clear."""

from __future__ import annotations

import pytest
from _engine_fixtures import FakeModel, make_split

from clipbench.cli import main
from clipbench.features import FeatureStore, extract_features
from clipbench.features.text_classifier import text_classifier
from clipbench.models.loading import load_model
from clipbench.models.registry import MODELS
from clipbench.results.records import RESULT_SCHEMA, append_record, write_leaderboards


def _results(folder, values):
    for (dataset, top1) in values.items():
        append_record(folder, {"schema_version": RESULT_SCHEMA, "model": "m", "dataset": dataset, "task": "zeroshot",
                               "primary_metric": "top1", "metrics": {"top1": top1}, "ci95": None})
    write_leaderboards(folder)
    return str(folder / "leaderboard.csv")


def test_compare_exit_codes(tmp_path, capsys):
    base = _results(tmp_path / "base", {"a": 50.0, "b": 60.0})
    assert main(["compare", _results(tmp_path / "same", {"a": 50.0, "b": 60.5}), "--baseline", base]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["compare", _results(tmp_path / "drop", {"a": 49.0, "b": 60.0}), "--baseline", base,
                 "--max-drop", "0.5"]) == 1
    assert "| DROP |" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "drop"), "--baseline", base, "--max-drop", "1"]) == 0
    assert main(["compare", _results(tmp_path / "miss", {"a": 50.0}), "--baseline", base, "--max-drop", "9"]) == 1
    assert "MISSING" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["compare", "nowhere", "--baseline", "nowhere"], "results not found"),
    (["run", "--suite", "smok"], "unknown suite 'smok'"),
    (["run", "--suite", "smoke", "--dataset", "digitz"], "digitz"),
    (["run", "--suite", "smoke", "--batch-size", "0"], "--batch-size must be a positive integer"),
    (["run", "--suite", "smoke", "--seeds", "0,1"], "--seeds only applies to few-shot"),
    (["run", "--suite", "zeroshot", "--fewshot-k", "4"], "--fewshot-k applies to the linear probe"),
    (["run", "--suite", "smoke", "--device", "cpu", "--precision", "fp16"], "fp16 needs a CUDA device"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    # these errors must all come before any model is loaded or data is read
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("clipbench: error:")


def test_bad_suite_file_exit_2(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("version: 1\ndatasets: [x]\ntasks: [zeroshot]\nextra: 1\n")
    assert main(["run", "--suite", str(path)]) == 2
    assert "unknown key 'extra'" in capsys.readouterr().err


def test_list_suites(capsys):
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "clipbench-tiny" in out and "linear_probe" in out


def test_cache_list_and_clear(tmp_path, capsys):
    model = FakeModel()
    extract_features(model, make_split(12), FeatureStore(tmp_path / "features"), batch_size=5, progress=False)
    text_classifier(model, [["a"], ["b"]], tmp_path / "text")
    load_model("clipbench-tiny", cache_dir=tmp_path, lazy=True)  # describes it in <cache>/models
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fake10" in out and "features" in out and "text" in out and "KiB" in out
    assert "description" in out and MODELS.get("clipbench-tiny").sha256 in out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "freed" in capsys.readouterr().out
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    assert "(none)" in capsys.readouterr().out
    assert not (tmp_path / "models").exists()
