"""The CI gate never passes what it cannot judge (issue 18, item 3).

NaN, Inf or a missing primary metric on either side, an unreadable or wrongly typed line of a
``results.jsonl`` and an empty input are exit 2 naming the row or line; a 4-decimal leaderboard
compared with the full-precision records it came from passes; rows computed with other weights or
on other data are "not comparable" and fail unless ``--allow-mismatch``; only a real regression is 1.
"""

from __future__ import annotations

import json

import pytest

from clipbench.cli import main
from clipbench.results.records import RESULT_SCHEMA, append_record, write_leaderboards

IDENTITY = {"model_identity": "NativeClipModel:aaaa", "dataset_fingerprint": "f00d"}


def _record(dataset="digits", value=66.12304, task="zeroshot", **extra):
    record = {"schema_version": RESULT_SCHEMA, "model": "m", "dataset": dataset, "task": task,
              "primary_metric": "top1", "metrics": {"top1": value, "top5": 98.6}, "ci95": None, **IDENTITY}
    record.update(extra)
    return record


def _results(folder, *records):
    for record in records:
        append_record(folder, record)
    write_leaderboards(folder)
    return folder


def _raw(folder, *lines):
    """A results.jsonl written byte for byte (NaN literals, wrong types: what append_record refuses)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder


def _gate(capsys, new, base, *extra):
    capsys.readouterr()
    code = main(["compare", str(new), "--baseline", str(base), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_identical_run_passes_against_its_rounded_leaderboard(tmp_path, capsys):
    """The README's usage: a results dir against a leaderboard.csv (4 decimals) of the same numbers."""
    res = _results(tmp_path / "res", _record(value=66.12304), _record(task="linear_probe", value=84.94354))
    for new, base in ((res, res / "leaderboard.csv"), (res / "leaderboard.csv", res),
                      (res / "results.jsonl", res / "leaderboard.csv")):
        code, out, _ = _gate(capsys, new, base)
        assert code == 0, out
        assert "DROP" not in out and "PASS" in out and "+0.00" in out and "-0.00" not in out


def test_a_real_drop_still_fails_at_the_stored_precision(tmp_path, capsys):
    base = _results(tmp_path / "base", _record(value=66.1230))
    new = _results(tmp_path / "new", _record(value=66.1228))  # 0.0002 below: visible at 4 decimals
    code, out, _ = _gate(capsys, new, base / "leaderboard.csv")
    assert code == 1 and "| DROP |" in out


@pytest.mark.parametrize("side", ["new", "baseline"])
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_primary_metric_is_exit_2_naming_the_row(tmp_path, capsys, side, literal):
    good = _results(tmp_path / "good", _record())
    bad_line = json.dumps(_record()).replace("66.12304", literal)
    bad = _raw(tmp_path / "bad", bad_line)
    new, base = (bad, good) if side == "new" else (good, bad)
    code, out, err = _gate(capsys, new, base)
    assert code == 2, out + err
    assert err.count("\n") == 1 and "m/digits/zeroshot" in err and "top1" in err and "cannot judge" in err


@pytest.mark.parametrize("side", ["new", "baseline"])
def test_nan_in_a_leaderboard_csv_is_exit_2(tmp_path, capsys, side):
    good = _results(tmp_path / "good", _record())
    bad = _results(tmp_path / "bad", _record())
    csv_path = bad / "leaderboard.csv"
    csv_path.write_text(csv_path.read_text().replace("66.1230", "nan"))
    new, base = (csv_path, good) if side == "new" else (good, csv_path)
    code, _, err = _gate(capsys, new, base)
    assert code == 2 and "m/digits/zeroshot" in err and "cannot judge" in err


@pytest.mark.parametrize("side", ["new", "baseline"])
def test_missing_primary_metric_is_exit_2(tmp_path, capsys, side):
    good = _results(tmp_path / "good", _record())
    bad = _results(tmp_path / "bad", _record(metrics={"top5": 98.0}))
    for bad_input in (bad, bad / "leaderboard.csv"):
        new, base = (bad_input, good) if side == "new" else (good, bad_input)
        code, _, err = _gate(capsys, new, base)
        assert code == 2 and "m/digits/zeroshot" in err and "lacks its primary metric 'top1'" in err


@pytest.mark.parametrize("line, fragment", [
    ('{"model": "m", "dataset": "digits", "task": "zeroshot", "metrics": 5}', "'metrics' is int"),
    ('{"model": "m", "dataset": "digits", "task": "zeroshot", "metrics": {"top1": "66"}}', "metric 'top1' is str"),
    ('{"model": 7, "dataset": "digits", "task": "zeroshot", "metrics": {"top1": 1.0}}', "'model' is int"),
    ('{"model": "m", "dataset": "digits", "task": "zeroshot", "metrics": {}, "probe": "x"}', "'probe' is str"),
    ('{"oops": 1}', "lacks model, dataset, task, metrics"),
    ("garbage", "not a complete JSON record"),
    ('{"model": "m", "dataset": "dig', "not a complete JSON record"),  # torn by a crash
])
def test_unreadable_results_line_is_exit_2_in_compare(tmp_path, capsys, line, fragment):
    good = _results(tmp_path / "good", _record())
    bad = _raw(tmp_path / "bad", json.dumps(_record()), line)
    for new, base in ((bad, good), (good, bad)):
        code, out, err = _gate(capsys, new, base)
        assert code == 2, out + err
        assert err.count("\n") == 1 and "results.jsonl:2" in err and fragment in err and "delete" in err


def test_empty_results_is_exit_2(tmp_path, capsys):
    good = _results(tmp_path / "good", _record())
    empty = _raw(tmp_path / "empty")
    code, _, err = _gate(capsys, empty, good)
    assert code == 2 and "holds no results" in err


@pytest.mark.parametrize("field", ["model_identity", "dataset_fingerprint"])
def test_other_weights_or_data_are_not_comparable(tmp_path, capsys, field):
    base = _results(tmp_path / "base", _record(), _record(dataset="other"))
    new = _results(tmp_path / "new", _record(**{field: "something-else"}), _record(dataset="other"))
    for base_input in (base, base / "leaderboard.csv"):
        code, out, _ = _gate(capsys, new, base_input, "--max-drop", "5")
        assert code == 1, out
        assert f"NOT COMPARABLE ({field} differ)" in out and "1 not comparable" in out and "FAIL" in out
        assert "| m | other | zeroshot | - | top1 | 66.12 | 66.12 | +0.00 | ok |" in out
        code, out, _ = _gate(capsys, new, base_input, "--max-drop", "5", "--allow-mismatch")
        assert code == 0, out
        assert f"ok ({field} differ)" in out and "PASS" in out


def test_identity_recorded_on_one_side_only_is_not_comparable(tmp_path, capsys):
    base = _results(tmp_path / "base", _record())
    new = _results(tmp_path / "new", _record(dataset_fingerprint=None))
    code, out, _ = _gate(capsys, new, base)
    assert code == 1 and "NOT COMPARABLE (dataset_fingerprint differ)" in out


def test_wrong_type_records_in_report_are_skipped_not_a_crash(tmp_path, capsys):
    res = _raw(tmp_path / "res", json.dumps(_record()),
               '{"model": "m", "dataset": "digits", "task": "zeroshot", "metrics": 5}',
               '{"model": "m", "dataset": "digits", "task": "zeroshot", "metrics": {"top1": [1]}}')
    assert main(["report", str(res), "--out", str(tmp_path / "report"), "--no-published"]) == 0
    assert "66.1" in (tmp_path / "report" / "report.md").read_text()
    only_bad = _raw(tmp_path / "only_bad", '{"model": "m", "dataset": "d", "task": "zeroshot", "metrics": 5}')
    capsys.readouterr()
    assert main(["report", str(only_bad), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no readable result records" in err


def test_bad_max_drop_is_exit_2(tmp_path, capsys):
    good = _results(tmp_path / "good", _record())
    for value in ("nan", "inf", "-1"):
        code, _, err = _gate(capsys, good, good, "--max-drop", value)
        assert code == 2 and "--max-drop" in err


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code, word in (("1", "regression"), ("2", "bad input"), ("3", "bug"), ("130", "Ctrl-C"),
                       ("143", "SIGTERM")):
        assert any(line.strip().startswith(code) and word in line for line in out.splitlines()), (code, out)
