"""`--log-to`: a missing extra or a bad name is one line before any model loads; a tracker failing mid-run costs a
warning, never the record. (The trackers' real runs and read-backs are in tests/results/test_export.py.)"""

from __future__ import annotations

import json
import logging
import sys

import pytest
from _engine_fixtures import FakeAdapter, FakeModel

import clipbench
from clipbench.cli import main
from clipbench.engine import runner
from clipbench.foundations.errors import ClipbenchError
from clipbench.results import tracker_backends
from clipbench.suites import parse_suite

ZS = parse_suite({"version": 1, "datasets": ["fake10"], "tasks": ["zeroshot"], "options": {"batch_size": 8}},
                 "test suite", "zs", check_dataset=None)


def _no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(runner, "model_of", refuse)


@pytest.mark.parametrize("tracker, module", [("wandb", "wandb"), ("mlflow", "mlflow"),
                                             ("tensorboard", "tensorboard.summary.writer.event_file_writer")])
def test_a_missing_extra_is_one_line_with_the_install_command_before_any_model_loads(tracker, module, monkeypatch,
                                                                                     tmp_path, capsys):
    _no_model_loads(monkeypatch)
    monkeypatch.setitem(sys.modules, module, None)  # `import wandb` raises ImportError: as if not installed
    code = main(["run", "--suite", "smoke", "--log-to", f"tensorboard,{tracker}", "--results-dir", str(tmp_path),
                 "--cache-dir", str(tmp_path / "c"), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"--log-to {tracker} needs" in err and f"pip install 'clipbench[{tracker}]'" in err
    assert not (tmp_path / "results.jsonl").exists() and not (tmp_path / "tensorboard").exists()


@pytest.mark.parametrize("value", ["comet", "wandb,,mlflow"])
def test_an_unknown_tracker_is_one_line(value, monkeypatch, tmp_path, capsys):
    _no_model_loads(monkeypatch)
    assert main(["run", "--suite", "smoke", "--log-to", value, "--results-dir", str(tmp_path), "--no-progress"]) == 2
    assert "--log-to must be a comma-separated list of wandb, mlflow, tensorboard" in capsys.readouterr().err


def test_an_unreachable_tracker_is_one_line_before_any_model_loads(monkeypatch, tmp_path, capsys):
    _no_model_loads(monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the discard port: nothing answers
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    assert main(["run", "--suite", "smoke", "--log-to", "mlflow", "--results-dir", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--log-to mlflow: cannot use the tracking store http://127.0.0.1:9" in err


def test_a_tracker_failing_mid_run_is_a_warning_and_the_record_is_kept(monkeypatch, tmp_path, caplog):
    def broken(self, *args):
        raise ConnectionError("the tracker went away")

    monkeypatch.setattr(tracker_backends.TensorBoardTracker, "log", broken)
    with caplog.at_level(logging.WARNING, logger="clipbench"):
        (record,) = clipbench.run(FakeModel(), suite=ZS, datasets=[FakeAdapter()], results_dir=tmp_path / "r",
                                  cache_dir=tmp_path / "c", device="cpu", progress=False, log_to="tensorboard")
    (stored,) = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert stored["record_id"] == record["record_id"]
    assert any("--log-to tensorboard: could not log fake-model/fake10/zeroshot (ConnectionError: the tracker went "
               "away); the record is in results.jsonl" in m for m in caplog.messages)


def test_suite_key_log_to_is_validated_like_the_flag():
    suite = parse_suite({"version": 1, "datasets": ["fake10"], "tasks": ["zeroshot"],
                         "options": {"log_to": ["tensorboard"]}}, "test suite", "zs", check_dataset=None)
    assert runner.resolve_options(suite, {}, "cpu").log_to == ("tensorboard",)
    with pytest.raises(ClipbenchError, match="log_to"):
        parse_suite({"version": 1, "datasets": ["fake10"], "tasks": ["zeroshot"], "options": {"log_to": "comet"}},
                    "test suite", "zs", check_dataset=None)
