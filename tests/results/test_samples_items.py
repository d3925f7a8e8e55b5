"""Per-sample files name each sample's file (issue 28, item 13): an error in `clipbench samples` can be
opened, as lm-eval's ``--log_samples`` keeps the document. The ``item`` column is the path relative to
the dataset's folder; splits without files (pixels in memory) have none."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

import clipbench
from clipbench.cli import main
from clipbench.datasets.identity import relative_paths
from clipbench.results.samples import read_samples
from clipbench.scoring.samples.table import with_items
from clipbench.suites import parse_suite


def _run(tmp_path, dataset: str):
    suite = parse_suite({"version": 1, "datasets": [dataset], "tasks": ["zeroshot"],
                         "options": {"bootstrap": 0, "offline": True, "threads": 1, "log_samples": "always"}},
                        "t", "items", check_dataset=None)
    (record,) = clipbench.run("clipbench-tiny", suite=suite, cache_dir=tmp_path / "cache",
                              results_dir=tmp_path / "res", device="cpu", progress=False)
    return record


def test_classification_samples_name_each_file_and_samples_shows_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    names = {"cat": ["a.png", "b.png"], "dog": ["c.png", "evil\x1b[31m.png"]}
    for cls, files in names.items():
        (tmp_path / "data" / cls).mkdir(parents=True)
        for f in files:
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "data" / cls / f, "PNG")
    record = _run(tmp_path, f"folder:{tmp_path / 'data'}")
    table = pq.read_table(tmp_path / "res" / record["samples"]["path"])
    items = table.column("item").to_pylist()
    labels = table.column("label").to_pylist()
    assert sorted(items) == sorted(f"{c}/{f}" for c, fs in names.items() for f in fs)
    classnames = read_samples(tmp_path / "res", record).meta["classnames"]
    assert all(item.split("/")[0] == classnames[label] for item, label in zip(items, labels, strict=True))
    assert main(["samples", record["record_id"][:8], "--results", str(tmp_path / "res"), "-n", "4"]) == 0
    out = capsys.readouterr().out
    assert "item" in out.split("Most confident errors:")[1].splitlines()[1]
    wrong = [i for i, ok in zip(items, table.column("correct").to_pylist(), strict=True) if not ok]
    assert wrong and all(w.replace("\x1b", "\\x1b") in out for w in wrong)
    assert "\x1b" not in out  # a planted escape sequence in a file name is shown, never acted on
    assert main(["samples", record["record_id"][:8], "--results", str(tmp_path / "res"), "--format", "json"]) == 0
    assert [r["item"] for r in json.loads(capsys.readouterr().out)] == items


def test_retrieval_samples_name_each_image(tmp_path, capsys):
    rng = np.random.default_rng(1)
    (tmp_path / "imgs").mkdir()
    rows = ["image,caption"]
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"p{i}.png")
        rows.append(f"imgs/p{i}.png,a picture number {i}")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    suite = parse_suite({"version": 1, "datasets": [f"pairs:{tmp_path / 'pairs.csv'}"], "tasks": ["zeroshot_retrieval"],
                         "options": {"bootstrap": 0, "offline": True, "threads": 1, "log_samples": "always"}},
                        "t", "items", check_dataset=None)
    (record,) = clipbench.run("clipbench-tiny", suite=suite, cache_dir=tmp_path / "cache",
                              results_dir=tmp_path / "res", device="cpu", progress=False)
    table = pq.read_table(tmp_path / "res" / record["samples"]["path"]).to_pylist()
    assert {r["image"]: r["item"] for r in table} == {i: f"imgs/p{i}.png" for i in range(3)}
    assert main(["samples", record["record_id"][:8], "--results", str(tmp_path / "res")]) == 0
    assert "imgs/p" in capsys.readouterr().out


def test_with_items_leaves_tables_without_names_or_out_of_range_rows_alone():
    table = pa.table({"index": pa.array([0, 1, 2])})
    assert with_items(table, None).column_names == ["index"]
    assert with_items(table, ["a", "b"]).column_names == ["index"]  # a row past the names: no guessing
    assert with_items(table, ["a", "b", "c"]).column("item").to_pylist() == ["a", "b", "c"]
    assert relative_paths("/d", ["/d/x/a.png", "/elsewhere/b.png"]) == ["x/a.png", "/elsewhere/b.png"]
    assert relative_paths(None, ["/d/x/a.png", "/d/y/b.png"]) == ["x/a.png", "y/b.png"]
