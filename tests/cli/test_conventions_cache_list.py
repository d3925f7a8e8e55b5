"""`clipbench cache list` names the model of each entry, shows the probe's carved val as ``val`` and speaks
``--format table|json|csv`` like the other listing commands (issue 28, items 14 and 15)."""

from __future__ import annotations

import csv
import io
import json

from _engine_fixtures import FakeAdapter, FakeModel

from clipbench.cli import main
from clipbench.datasets.splits import probe_splits
from clipbench.features import FeatureStore, extract_features
from clipbench.features.text_classifier import text_classifier


def _fill(cache):
    """Two models' features of the probe's (train, carved val) and one model's text classifier."""
    train, val, _ = probe_splits(FakeAdapter(sizes={"train": 30, "test": 10}), cache)
    assert (len(train), len(val), train.split, val.split) == (20, 10, "train", "train")
    for model in (FakeModel(0, name="alpha-model"), FakeModel(1, name="beta-model")):
        for split in (train, val):
            extract_features(model, split, FeatureStore(cache / "features"), batch_size=5, progress=False)
    text_classifier(FakeModel(0, name="alpha-model"), [["a"], ["b"]], cache / "text")


def test_cache_list_json_names_models_and_the_carved_val(tmp_path, capsys):
    _fill(tmp_path)
    assert main(["cache", "list", "--cache-dir", str(tmp_path), "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    features = [e for e in entries if e["kind"] == "features"]
    assert sorted((e["model"], e["split"], e["n_samples"]) for e in features) == [
        ("alpha-model", "train", 20), ("alpha-model", "val", 10), ("beta-model", "train", 20), ("beta-model", "val", 10)]
    assert [e["model"] for e in entries if e["kind"] == "text"] == ["alpha-model"]
    assert all(isinstance(e["size_bytes"], int) and e["size_bytes"] > 0 for e in entries)


def test_cache_list_table_and_csv_have_a_model_column(tmp_path, capsys):
    _fill(tmp_path)
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    header, _, *lines = capsys.readouterr().out.splitlines()
    assert header.split()[:4] == ["kind", "model", "dataset", "split"]
    assert sum(line.split()[1:4] == ["beta-model", "fake10", "val"] for line in lines) == 1
    assert main(["cache", "list", "--cache-dir", str(tmp_path), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 5 and {r["model"] for r in rows} == {"alpha-model", "beta-model"}
    assert sorted(r["split"] for r in rows if r["kind"] == "features") == ["train", "train", "val", "val"]
