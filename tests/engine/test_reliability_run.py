"""A failed, interrupted or terminated run keeps what completed, and bad history or outputs are found
up front (issue 18, items 3 and 6b-6d).

Faults are real: a corrupt image in the second dataset, SIGINT and SIGTERM delivered to the running
CLI process in the middle of the second dataset's extraction, a JSON line in ``results.jsonl`` that is
not a record, a directory where the leaderboard must go.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys

import pytest
from _datasets_fixtures import class_tree
from _engine_fixtures import write_tiny_clip
from _fault_fixtures import start_cli, subprocess_env

from clipbench.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runfaults")
    write_tiny_clip(base / "tiny.pt")
    class_tree(base / "pets", {"cat": 3, "dog": 3})
    class_tree(base / "birds", {"owl": 3, "jay": 3}, seed=1)
    class_tree(base / "broken", {"cat": 3, "dog": 3}, seed=2)
    (base / "broken" / "dog" / "img_999.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return base


def _argv(base, results, datasets, cache="cache"):
    return ["run", "--model", str(base / "tiny.pt"), "--suite", "zeroshot", "--device", "cpu", "--no-progress",
            "--workers", "0", "--batch-size", "2", "--bootstrap", "0", "--cache-dir", str(base / cache),
            "--results-dir", str(results), "--dataset", ",".join(f"folder:{base / d}" for d in datasets)]


def _short(dataset):  # "folder:/tmp/.../pets" -> "pets"
    return dataset.rsplit("/", 1)[-1] if dataset else dataset


def _leaderboard_datasets(results):
    with open(results / "leaderboard.csv", newline="") as fh:
        return sorted({_short(row["dataset"]) for row in csv.DictReader(fh)})


def _datasets(results):
    lines = (results / "results.jsonl").read_text().splitlines()
    return [_short(json.loads(line).get("dataset")) for line in lines if line.strip()]


def test_failed_run_regenerates_leaderboards_and_prints_completed_rows(inputs, tmp_path, capsys):
    results = tmp_path / "res"
    capsys.readouterr()
    assert main(_argv(inputs, results, ["pets", "broken"])) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("clipbench: error: corrupt image") and captured.err.count("\n") == 1
    assert "pets" in captured.out and "zeroshot" in captured.out and "1 completed result(s) kept" in captured.out
    assert "broken" not in captured.out
    assert _datasets(results) == ["pets"]
    assert _leaderboard_datasets(results) == ["pets"]


_SIGNAL_AT_BATCH = """
import os, signal, sys
# a shell's background job inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
signal.signal(signal.SIGINT, signal.default_int_handler)
import clipbench.features.extraction as extraction
real = extraction._note_forward
def note(n):
    real(n)
    if extraction.FORWARD_STATS.batches == {batch}:  # inside the second dataset's extraction
        os.kill(os.getpid(), signal.{sig})
extraction._note_forward = note
from clipbench.cli import main
sys.exit(main({argv!r}))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("sig, code, line", [("SIGINT", 130, "clipbench: interrupted"),
                                             ("SIGTERM", 143, "clipbench: interrupted (SIGTERM)")])
def test_signal_mid_run_keeps_completed_rows(inputs, tmp_path, sig, code, line):
    results = tmp_path / "res"
    argv = _argv(inputs, results, ["pets", "birds"], cache=f"cache-{sig}")
    # pets: 6 images in batches of 2 = batches 1-3; birds starts at batch 4
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_AT_BATCH.format(batch=4, sig=sig, argv=argv)],
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1] == line, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 completed result(s) kept" in proc.stdout and "pets" in proc.stdout
    assert _datasets(results) == ["pets"]
    assert _leaderboard_datasets(results) == ["pets"]


@pytest.mark.subprocess
def test_a_non_record_line_is_skipped_with_one_warning_and_one_repair_hint(inputs, tmp_path):
    results = tmp_path / "res"
    results.mkdir()
    good = {"schema_version": 1, "model": "old", "dataset": "d", "task": "zeroshot", "primary_metric": "top1",
            "metrics": {"top1": 1.0}}
    (results / "results.jsonl").write_text(json.dumps(good) + '\n{"oops": 1}\n')
    proc = start_cli(_argv(inputs, results, ["pets"]))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    warnings = [w for w in err.splitlines() if "results.jsonl:2" in w]
    assert len(warnings) == 1 and "is not a clipbench result record" in warnings[0], err
    hints = [w for w in err.splitlines() if "to repair" in w]
    assert len(hints) == 1 and "'2d'" in hints[0], err
    assert _datasets(results) == ["d", None, "pets"]
    assert _leaderboard_datasets(results) == ["d", "pets"]


@pytest.mark.parametrize("name", ["leaderboard.csv", "leaderboard_pivot.csv", "results.jsonl"])
def test_unwritable_output_path_is_found_before_any_work(inputs, tmp_path, capsys, name):
    results = tmp_path / "res"
    (results / name).mkdir(parents=True)  # a directory where a file must go
    capsys.readouterr()
    cache = f"cache-blocked-{name}"
    assert main(_argv(inputs, results, ["pets"], cache=cache)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write {results / name}: it is a directory" in err
    assert not (inputs / cache / "features").exists()  # no image was encoded
    if name != "results.jsonl":
        assert not (results / "results.jsonl").exists()  # no record appended, so a rerun duplicates nothing


@pytest.mark.subprocess
def test_bug_exit_code_is_3_through_the_real_cli(inputs, tmp_path):
    """An unexpected exception (here: a results path the OS cannot even stat) is exit 3, not 1."""
    code = ("import sys, clipbench.results.significance as s\n"
            "s.load_result_set = lambda *a, **k: 1 / 0\n"
            "from clipbench.cli import main\n"
            f"sys.exit(main(['compare', {str(tmp_path)!r}, '--baseline', {str(tmp_path)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.count("\n") == 1 and "a bug in clipbench" in proc.stderr and "--debug" in proc.stderr


def test_sigterm_default_is_restored_after_main(inputs, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    main(["list", "suites"])
    assert signal.getsignal(signal.SIGTERM) is before
