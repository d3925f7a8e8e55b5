"""A file that is not a results file at all (a README) gets one line saying so, not per-line repair hints
(issue 28, item 11): deleting lines would not turn it into results."""

from __future__ import annotations

import json
import logging

import pytest

from clipbench.cli import main
from clipbench.foundations.errors import ClipbenchError
from clipbench.results.records import read_records

README = "# My project\n\nSome text.\n\n| model | top1 |\n|---|---|\n| x | 1 |\n"


@pytest.mark.parametrize("command", [["compare", "{f}", "--baseline", "{f}"], ["history", "{f}"],
                                     ["report", "{f}", "--out", "{out}"]])
def test_a_readme_is_named_not_a_results_file_in_one_line(tmp_path, capsys, caplog, command):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    caplog.set_level(logging.WARNING)
    assert main([a.format(f=readme, out=tmp_path / "out") for a in command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a clipbench results file" in err and "5 non-empty lines" in err
    assert "delete" not in err and "sed" not in err and not caplog.records


def test_a_damaged_results_file_still_names_its_bad_lines(tmp_path, caplog):
    """Torn lines of a real results file, even a lone one (a crash during the first write), keep the repair hint."""
    good = {"schema_version": 1, "model": "m", "dataset": "d", "task": "zeroshot", "primary_metric": "top1",
            "metrics": {"top1": 50.0}}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(good) + "\n{\"model\": \"m\", \"data\n")
    with pytest.raises(ClipbenchError, match=r"results.jsonl:2 is not a complete JSON record.*delete"):
        read_records(path, strict=True)
    caplog.set_level(logging.WARNING)
    assert [r["model"] for r in read_records(path)] == ["m"]
    assert any("results.jsonl:2" in r.getMessage() for r in caplog.records)
    torn = tmp_path / "torn" / "results.jsonl"
    torn.parent.mkdir()
    torn.write_text('{"schema_version": 1, "model": "m", "dat')
    assert read_records(torn) == []
    assert any("delete the unreadable line" in r.getMessage() for r in caplog.records)
