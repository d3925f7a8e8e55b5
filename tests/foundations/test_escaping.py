"""Escaping rules for outputs built from untrusted names (issue 27): CSV cells no spreadsheet runs, read back
losslessly by clipbench's own readers, and plot file names that always land inside --out."""

from __future__ import annotations

import csv
import io
import json

import pytest

from clipbench.foundations.escaping import csv_cell, csv_value, file_slug, plain_text
from clipbench.foundations.tables import render
from clipbench.results.records import append_record, write_leaderboards
from clipbench.results.report import build_report, load_results
from clipbench.results.source import primary_rows

HOSTILE = ["=HYPERLINK(\"http://evil\")+cmd.pt", "+1+cmd", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd", "\t=1+1",
           "\r=1+1", "'=already quoted", "'plain quote", "plain"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _record(model, dataset, value, task="zeroshot"):
    return {"schema_version": 1, "model": model, "dataset": dataset, "task": task, "primary_metric": "top1",
            "metrics": {"top1": value, "delta_like": -3.5}, "ci95": {"low": value - 1, "high": value + 1},
            "n_samples": 10, "timestamp": "2026-11-23T12:00:00+00:00", "model_family": "ViT"}


@pytest.mark.parametrize("text", [*HOSTILE, "-3.5", "+1e-3", "-inf", "", "'", "''", "=", "-"])
def test_csv_cell_round_trip(text):
    cell = csv_cell(text)
    assert csv_value(cell) == text
    assert not cell.startswith(FORMULA_START) or cell in ("-3.5", "+1e-3")  # numbers stay numbers


def test_leaderboards_quote_formulas_and_readers_get_the_names_back(tmp_path):
    for i, name in enumerate(HOSTILE):
        append_record(tmp_path, _record(name, HOSTILE[-1 - i], 50.0 + i))
    long_path, pivot_path = write_leaderboards(tmp_path)
    for path in (long_path, pivot_path):
        for row in csv.reader(io.StringIO(path.read_text())):
            for cell in row:
                assert not cell.startswith(FORMULA_START) or _is_number(cell), (path.name, cell)
    values = [r for r in csv.DictReader(io.StringIO(long_path.read_text())) if r["metric"] == "delta_like"]
    assert {r["value"] for r in values} == {"-3.5000"}  # a negative number is left a number
    rows, _ = primary_rows(long_path)
    assert sorted((r.model, r.dataset, r.value) for r in rows) == sorted(
        (name, HOSTILE[-1 - i], 50.0 + i) for i, name in enumerate(HOSTILE))
    frame, _ = load_results(long_path)
    assert set(frame["model"]) == set(HOSTILE)
    report = build_report(long_path, out_dir=tmp_path / "report")  # provenance is read back the same way
    assert "HYPERLINK" in report.markdown.read_text()


def test_table_format_shows_control_characters():
    text = render([{"model": "a\x1b[2Jb\nc"}], "table")
    assert "\x1b" not in text and text.splitlines()[2] == "a\\x1b[2Jb\\nc"


def test_format_csv_quotes_formulas():
    text = render([{"model": HOSTILE[0], "delta": -1.25, "note": "-x", "@col": 1}], "csv")
    header, row = csv.reader(io.StringIO(text))
    assert header == ["model", "delta", "note", "'@col"] and row == ["'" + HOSTILE[0], "-1.25", "'-x", "1"]


@pytest.mark.parametrize("name", ["zeroshot", "linear_probe", "flickr30k", "ViT-B.32"])
def test_plain_names_keep_their_file_name(name):
    assert file_slug(name) == name


@pytest.mark.parametrize("name", ["../../escaped", "x/../../../escaped", "/abs/path", ".hidden", "..", "a\x00b",
                                  "x" * 300, "a b", "C:\\evil", ""])
def test_slugs_are_plain_bounded_and_distinct(name):
    slug = file_slug(name)
    assert slug and "/" not in slug and "\\" not in slug and not slug.startswith(".") and ".." not in slug
    assert len(slug) <= 64 and slug != file_slug(name + "x")


def test_a_crafted_task_or_dataset_writes_no_plot_outside_out(tmp_path):
    results = tmp_path / "deep" / "results"
    results.mkdir(parents=True)
    evil_task, evil_dataset = "x/../../../../escaped_task", "../../../escaped_dataset"
    records = [_record(m, d, v, task=t) for m, v in (("RN50", 60.0), ("ViT-B/32", 70.0))
               for t, d in ((evil_task, "cifar10"), (evil_task, "cifar100"), ("zeroshot_retrieval", evil_dataset))]
    for r in records:
        if r["task"] == "zeroshot_retrieval":
            r["metrics"] = {"mean_recall": 50.0, "i2t_recall@1": 40.0, "t2i_recall@1": 30.0}
            r["primary_metric"], r["recall_k"] = "mean_recall", [1]
    (results / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "deep" / "results" / "report"
    before = {p for p in tmp_path.rglob("*") if out not in p.parents}
    report = build_report(results, out_dir=out)
    after = {p for p in tmp_path.rglob("*") if out not in p.parents and p != out}
    assert after == before  # nothing written beside --out or above it
    assert report.images and all(p.parent == out for p in report.images)
    assert {p.name for p in out.iterdir() if p.suffix == ".png"} == {p.name for p in report.images}


def test_history_prints_no_escape_sequence_to_the_terminal(tmp_path, capsys):
    from clipbench.cli import main

    evil = "\x1b]0;owned\x07\x1b[2J" + "m\nfake line"
    append_record(tmp_path, {**_record(evil, "d", 50.0), "tag": "\x1b[31mred"})
    assert main(["history", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert not any(line.startswith("fake line") for line in out.splitlines())  # a name adds no line
    assert plain_text(evil) in out and "\\x1b[31mred" in out
