"""`wds:PATTERN` tar shards: same samples, features and metrics as the same images in a folder; a killed run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from _datasets_fixtures import class_tree
from _engine_fixtures import write_tiny_clip
from _fault_fixtures import expect_killed, start_cli

from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.features import FeatureStore, extract_features
from clipbench.foundations.errors import DataError
from clipbench.models import load_model
from clipbench.results.records import read_records

CLASSES = {"cat": 5, "dog": 4, "red_fox": 3}


def write_shards(folder: Path, out: Path, per_shard: int) -> str:
    """The folder's images, in the folder adapter's order, as webdataset shards; returns the brace pattern.

    Even samples carry ``.cls`` labels, odd ones ``.json`` with a classname (both conventions).
    """
    out.mkdir(parents=True, exist_ok=True)
    classes = sorted(p.name for p in folder.iterdir())
    items = [(c, i, p) for i, c in enumerate(classes) for p in sorted((folder / c).iterdir())]
    n_shards = (len(items) + per_shard - 1) // per_shard
    for s in range(n_shards):
        with wds.TarWriter(str(out / f"val-{s:06d}.tar")) as sink:
            for n, (c, label, path) in enumerate(items[s * per_shard:(s + 1) * per_shard], s * per_shard):
                sample = {"__key__": f"{c}/{path.stem}", path.suffix.lstrip("."): path.read_bytes()}
                if n % 2 == 0:
                    sample["cls"] = str(label).encode()
                else:
                    sample["json"] = json.dumps({"label": label, "classname": c.replace("_", " ")}).encode()
                sink.write(sample)
    return str(out / f"val-{{000000..{n_shards - 1:06d}}}.tar")


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "folder"
    class_tree(folder, CLASSES, ext=".jpg")
    pattern = write_shards(folder, tmp_path / "shards", per_shard=5)
    return folder, pattern


def test_shards_index_like_the_folder_and_like_webdataset_streams(data):
    folder, pattern = data
    shards, images = get_dataset(f"wds:{pattern}"), get_dataset(f"folder:{folder}")
    assert shards.classnames == images.classnames == ["cat", "dog", "red fox"]  # from the .json classnames
    split = shards.load_split("test")
    np.testing.assert_array_equal(split.labels, images.load_split("test").labels)
    streamed = [(s["__key__"], int(s["cls"]) if "cls" in s else json.loads(s["json"])["label"])
                for s in wds.WebDataset(pattern, shardshuffle=False, empty_check=False)]
    assert [k for k, _ in streamed] == split.keys and [lab for _, lab in streamed] == list(split.labels)


def test_shards_give_the_folders_features_and_metrics(data, tmp_path):
    folder, pattern = data
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    model = load_model(ckpt)
    feats = {}
    for spec in (f"wds:{pattern}", f"folder:{folder}"):
        split = get_dataset(spec).load_split("test")
        feats[spec] = extract_features(model, split, FeatureStore(tmp_path / "f" / spec[:3]), batch_size=4,
                                       progress=False, workers=1 if spec.startswith("wds") else 0)
    np.testing.assert_array_equal(feats[f"wds:{pattern}"].features, feats[f"folder:{folder}"].features)
    records = {}
    for spec in (f"wds:{pattern}", f"folder:{folder}"):
        res = tmp_path / "res" / spec[:3]
        assert main(["run", "--model", str(ckpt), "--suite", "zeroshot", "--dataset", spec, "--device", "cpu",
                     "--no-progress", "--bootstrap", "20", "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
                     "--results-dir", str(res)]) == 0
        (records[spec],) = read_records(res)
    a, b = records[f"wds:{pattern}"], records[f"folder:{folder}"]
    assert a["metrics"] == b["metrics"] and a["ci95"] == b["ci95"]


@pytest.mark.subprocess
def test_killed_run_over_shards_resumes_from_complete_feature_shards(tmp_path, monkeypatch):
    """24 images in batches of 1: feature shards [0, 16) and [16, 24); killed after 17 batches, [0, 16) is kept."""
    folder = tmp_path / "folder"
    class_tree(folder, {"a": 8, "b": 8, "c": 8}, ext=".jpg")
    pattern = write_shards(folder, tmp_path / "shards", per_shard=7)
    (tmp_path / "shards" / "classnames.txt").write_text("apple\nbanana\ncherry\n")
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    (tmp_path / "suite.yaml").write_text("version: 1\ndatasets: [digits]\ntasks: [zeroshot]\n"
                                         "options: {batch_size: 1, bootstrap: 20, workers: 0}\n")

    def argv(name):
        return ["run", "--model", str(ckpt), "--suite", str(tmp_path / "suite.yaml"), "--dataset", f"wds:{pattern}",
                "--device", "cpu", "--no-progress", "--cache-dir", str(tmp_path / name / "cache"),
                "--results-dir", str(tmp_path / name / "res")]

    expect_killed(start_cli(argv("killed"), CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES="17",
                            CLIPBENCH_TEST_INTERRUPT_MODE="kill"))
    assert not (tmp_path / "killed" / "res" / "results.jsonl").exists()
    (entry,) = [p for p in (tmp_path / "killed" / "cache" / "features").iterdir() if p.is_dir()]
    assert sorted(p.name for p in (entry / "shards").glob("*.npz")) == ["0000000000-0000000016.npz"]

    log = tmp_path / "forwards.log"
    monkeypatch.setenv("CLIPBENCH_TEST_FORWARD_LOG", str(log))
    assert main(argv("killed")) == 0
    assert log.read_text().split() == ["1"] * 8  # only samples 16..23 were encoded again
    log.unlink()
    assert main(argv("fresh")) == 0
    assert len(log.read_text().split()) == 24
    (resumed,) = read_records(tmp_path / "killed" / "res")
    (fresh,) = read_records(tmp_path / "fresh" / "res")
    assert resumed["metrics"] == fresh["metrics"] and resumed["ci95"] == fresh["ci95"]
    assert resumed["dataset"] == f"wds:{pattern}"


def test_bad_shards_are_one_line_errors(data, tmp_path):
    folder, pattern = data
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"wds:{tmp_path}/nope-{{0..1}}.tar")
    (tmp_path / "x.tar.gz").write_bytes(b"")
    with pytest.raises(DataError, match="not an uncompressed .tar"):
        get_dataset(f"wds:{tmp_path}/x.tar.gz")
    bad = tmp_path / "bad"
    bad.mkdir()
    with wds.TarWriter(str(bad / "b-0.tar")) as sink:
        sink.write({"__key__": "x", "jpg": b"not a jpeg", "cls": b"0"})
        sink.write({"__key__": "y", "cls": b"0"})
    with pytest.raises(DataError, match=r"sample 'y' has no image"):
        get_dataset(f"wds:{bad}/b-0.tar")
    with wds.TarWriter(str(bad / "c-0.tar")) as sink:
        sink.write({"__key__": "x", "jpg": b"not a jpeg", "cls": b"0"})
    (bad / "classnames.txt").write_text("thing\n")
    split = get_dataset(f"wds:{bad}/c-0.tar").load_split("test")
    with pytest.raises(DataError, match=r"corrupt image .*c-0.tar:x"):
        split.torch_dataset(lambda im: im)[0]


def test_shard_images_get_pils_decompression_bomb_limit_like_files(tmp_path, monkeypatch):
    """A tar member is decoded by the same code as an image file: over the pixel limit it is refused."""
    import io

    from PIL import Image

    from clipbench.datasets import images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    buf = io.BytesIO()
    Image.new("RGB", (120, 100), (10, 20, 30)).save(buf, "JPEG")  # 12,000 pixels
    with wds.TarWriter(str(tmp_path / "d-0.tar")) as sink:
        sink.write({"__key__": "big", "jpg": buf.getvalue(), "cls": b"0"})
    (tmp_path / "classnames.txt").write_text("thing\n")
    dataset = get_dataset(f"wds:{tmp_path}/d-0.tar").load_split("test").torch_dataset(lambda im: im)
    assert dataset[0][0].size == (120, 100)
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "5000")
    with pytest.raises(DataError, match=r"image .*d-0.tar:big is too large: 12,000 pixels"):
        dataset[0]
