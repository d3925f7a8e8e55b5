"""`wds:PATTERN` image-text shards: the same images, captions, features and retrieval metrics as the same data in a
caption folder; a fingerprint that follows the shard bytes and the captions; one-line errors for bad shard sets."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from _datasets_fixtures import write_image
from _engine_fixtures import write_tiny_clip

from clipbench import api
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.datasets.image_text import split_captions
from clipbench.datasets.images import images_in
from clipbench.features import FeatureStore, extract_features
from clipbench.features.extraction import FORWARD_STATS, extract_range, feature_key
from clipbench.foundations.errors import DataError
from clipbench.models import load_model

#: captions of image i; every third image (i % 3 == 2) has one caption (written img2dataset-style: .txt + .json)
CAPTIONS = [["a red thing", "something red on a table"], ["a blue square", "a square", "blue"], ["a green dot"],
            ["two cats"], ["a dog in the snow", "snow and a dog"], ["a tree"], ["a car", "a parked car"],
            ["the sea"], ["a small house"], ["a bird on a wire", "a wire"], ["clouds"], ["a bridge at night"]]


def caption_folder(root: Path, captions: list[list[str]] = CAPTIONS) -> Path:
    """``captions:DIR`` layout: ``a/00.jpg`` + ``a/00.txt`` (one caption per line), in two sub-folders."""
    for i, caps in enumerate(captions):
        image = write_image(root / ("a" if i < len(captions) // 2 else "b") / f"{i:02d}.jpg", i, size=16, fmt="JPEG")
        image.with_suffix(".txt").write_text("\n".join(caps) + "\n", encoding="utf-8")
    return root


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0  # fixed times: rewriting a shard changes only the bytes we change
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, out: Path, per_shard: int, captions: list[list[str]] = CAPTIONS) -> str:
    """The caption folder's images in its order, as tar shards ``pairs-000.tar`` ...; returns the brace pattern.

    Captions ride three ways: ``.txt`` (one caption per line), ``.json`` with ``captions``, and img2dataset's
    pair of ``.txt`` plus a ``.json`` with ``caption`` and other fields (the .txt member first, to show member
    order inside a sample does not matter)."""
    out.mkdir(parents=True, exist_ok=True)
    images = images_in(folder)
    n_shards = (len(images) + per_shard - 1) // per_shard
    for s in range(n_shards):
        with tarfile.open(out / f"pairs-{s:03d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(s * per_shard, min(len(images), (s + 1) * per_shard)):
                key = images[i].relative_to(folder).with_suffix("").as_posix()
                caps, jpg = captions[i], images[i].read_bytes()
                if i % 3 == 0:
                    _add(tar, f"{key}.jpg", jpg)
                    _add(tar, f"{key}.txt", "\n".join(caps).encode())
                elif i % 3 == 1:
                    _add(tar, f"{key}.jpg", jpg)
                    _add(tar, f"{key}.json", json.dumps({"captions": caps, "url": f"http://x/{i}"}).encode())
                else:
                    (caption,) = caps
                    _add(tar, f"{key}.txt", caption.encode())
                    _add(tar, f"{key}.jpg", jpg)
                    _add(tar, f"{key}.json", json.dumps({"caption": caption, "key": f"{i:09d}", "width": 16}).encode())
    return str(out / f"pairs-{{000..{n_shards - 1:03d}}}.tar")


@pytest.fixture
def data(tmp_path):
    folder = caption_folder(tmp_path / "folder")
    return folder, write_shards(folder, tmp_path / "shards", per_shard=5)


def test_shards_read_like_the_caption_folder_and_like_webdataset_streams(data):
    folder, pattern = data
    adapter = get_dataset(f"wds:{pattern}")
    assert adapter.kind == "image_text" and adapter.splits == ("test",) and adapter.evaluation_split == "test"
    split, images = adapter.load_split("test"), get_dataset(f"captions:{folder}").load_split("test")
    assert split_captions(split) == split_captions(images) == CAPTIONS
    assert split.n_captions == images.n_captions == sum(map(len, CAPTIONS)) and len(split.shards) == 3
    texts, owner = split.flat_captions()
    assert (texts, owner.tolist()) == (images.flat_captions()[0], images.flat_captions()[1].tolist())
    assert split.labels.tolist() == list(range(len(CAPTIONS)))
    streamed = list(wds.WebDataset(pattern, shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in streamed] == split.keys == [p.relative_to(folder).with_suffix("").as_posix()
                                                             for p in images_in(folder)]
    assert [s["jpg"] for s in streamed] == [Path(p).read_bytes() for p in images.paths]
    with pytest.raises(DataError, match="has no split 'train'"):
        adapter.load_split("train")


def test_shards_give_the_caption_folders_features_and_retrieval_metrics(data, tmp_path):
    folder, pattern = data
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    model = load_model(ckpt)
    specs = (f"wds:{pattern}", f"captions:{folder}")
    feats = {spec: extract_features(model, get_dataset(spec).load_split("test"),
                                    FeatureStore(tmp_path / "f" / spec[:3]), batch_size=4, progress=False,
                                    workers=1 if spec.startswith("wds") else 0)  # the split pickles into workers
             for spec in specs}
    np.testing.assert_array_equal(feats[specs[0]].features, feats[specs[1]].features)
    for options in ({}, {"limit": 5}):
        records = {}
        for spec in specs:
            (records[spec],) = api.run(model=str(ckpt), suite="smoke-retrieval", datasets=[spec], bootstrap=20,
                                       cache_dir=tmp_path / "cache", results_dir=tmp_path / "res" / spec[:3],
                                       progress=False, **options)
        a, b = records[specs[0]], records[specs[1]]
        assert a["task"] == "zeroshot_retrieval" and a["n_samples"] == options.get("limit", len(CAPTIONS))
        for name in ("metrics", "ci95", "metric_ci95", "n_samples", "zeroshot_retrieval", "prompt_hash"):
            assert a[name] == b[name], name
        assert a["dataset"] == specs[0] and a["data_identity"]["kind"] == "wds"
        assert a["dataset_fingerprint"] != b["dataset_fingerprint"]


def test_rank_ranges_and_resume_over_image_text_shards(data, tmp_path):
    """Two "ranks" extract disjoint index ranges from their own loads of the shards and one assembles them: the
    caption folder's features; a lost feature shard is re-encoded alone (the torchrun / resume contract)."""
    folder, pattern = data
    model = load_model(write_tiny_clip(tmp_path / "tiny.pt"))
    store = FeatureStore(tmp_path / "f")
    key = feature_key(model, get_dataset(f"wds:{pattern}").load_split("test"), batch_size=2)
    for start, end in ((0, 6), (6, len(CAPTIONS))):  # each rank loads the split itself, as a process would
        extract_range(model, get_dataset(f"wds:{pattern}").load_split("test"), store, key, start, end, shard_size=2,
                      progress=False)
    store.assemble(key)
    folder_feats = extract_features(model, get_dataset(f"captions:{folder}").load_split("test"),
                                    FeatureStore(tmp_path / "g"), batch_size=2, progress=False)
    np.testing.assert_array_equal(store.load(key).features, folder_feats.features)
    (store.entry_dir(key) / "manifest.json").unlink()
    (lost,) = (store.entry_dir(key) / "shards").glob("0000000004-0000000006.npz")
    lost.unlink()
    before = FORWARD_STATS.samples
    again = extract_features(model, get_dataset(f"wds:{pattern}").load_split("test"), store, batch_size=2,
                             shard_size=2, progress=False)
    assert FORWARD_STATS.samples - before == 2
    np.testing.assert_array_equal(again.features, folder_feats.features)


def test_fingerprint_follows_captions_images_and_subsets(data, tmp_path):
    folder, pattern = data
    split = get_dataset(f"wds:{pattern}").load_split("test")
    assert get_dataset(f"wds:{pattern}").load_split("test").fingerprint == split.fingerprint
    shard = tmp_path / "shards" / "pairs-001.tar"
    stat = shard.stat()
    edited = [list(c) for c in CAPTIONS]
    edited[6][1] = "a parked cat"  # same length, same tar offsets: only the caption bytes differ
    write_shards(folder, tmp_path / "shards", per_shard=5, captions=edited)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = get_dataset(f"wds:{pattern}").load_split("test")
    assert changed.captions[6] == ["a car", "a parked cat"] and changed.places.tolist() == split.places.tolist()
    assert changed.fingerprint != split.fingerprint
    write_shards(folder, tmp_path / "shards", per_shard=5)  # the captions back
    restored = get_dataset(f"wds:{pattern}").load_split("test")
    write_image(folder / "a" / "00.jpg", 99, size=16, fmt="JPEG")  # another image, same captions
    write_shards(folder, tmp_path / "shards", per_shard=5)
    other_image = get_dataset(f"wds:{pattern}").load_split("test")
    assert other_image.captions == restored.captions and other_image.fingerprint != restored.fingerprint

    sub = restored.subset([7, 2, 9], "limit=3")
    assert sub.captions == [CAPTIONS[7], CAPTIONS[2], CAPTIONS[9]] and sub.keys == [restored.keys[i] for i in (7, 2, 9)]
    assert sub.labels.tolist() == [0, 1, 2] and sub.subset_spec == "limit=3" and sub.fingerprint != restored.fingerprint
    image, label = sub.torch_dataset(np.asarray)[1]
    assert label == 1 and image.shape == (16, 16, 3)

    # --verify-data: the shards' bytes are hashed; an identical copy elsewhere has the same data identity
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in (tmp_path / "shards").iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    twin = get_dataset(f"wds:{copy}/pairs-{{000..002}}.tar").load_split("test")
    assert twin.fingerprint_inputs["manifest_sha256"] != other_image.fingerprint_inputs["manifest_sha256"]
    plain = other_image.fingerprint
    twin.verify_data = other_image.verify_data = True
    assert other_image.fingerprint != plain
    a, b = twin.fingerprint_inputs, other_image.fingerprint_inputs
    assert a["content_sha256"] and (a["content_sha256"], a["members_sha256"]) == (b["content_sha256"], b["members_sha256"])


def _shard(path: Path, samples: list[dict[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for sample in samples:
            for ext, data in sample.items():
                if ext != "__key__":
                    _add(tar, f"{sample['__key__']}.{ext}", data)
    return path


def _error(spec: str) -> str:
    with pytest.raises(DataError) as info:
        get_dataset(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bad_shard_sets_are_one_line_errors(tmp_path, capsys):
    jpg = write_image(tmp_path / "x.jpg", 0, fmt="JPEG").read_bytes()
    bad = tmp_path / "bad"
    _shard(bad / "mixed-0.tar", [{"__key__": "a", "jpg": jpg, "cls": b"0"}])
    _shard(bad / "mixed-1.tar", [{"__key__": "b", "jpg": jpg, "txt": b"a caption"}])
    assert "mix classification and image-text samples ('a' has a label and no caption, 'b' captions" in _error(
        f"wds:{bad}/mixed-{{0..1}}.tar")
    # a label plus a caption is a labelled sample: the set is classification
    _shard(bad / "both-0.tar", [{"__key__": "a", "jpg": jpg, "cls": b"1", "txt": b"x"},
                                {"__key__": "b", "jpg": jpg, "json": b'{"label": 0, "caption": "y"}'}])
    (bad / "classnames.txt").write_text("zero\none\n")
    both = get_dataset(f"wds:{bad}/both-0.tar")
    assert getattr(both, "kind", "classification") == "classification" and both.load_split("test").labels.tolist() == [1, 0]

    _shard(bad / "none-0.tar", [{"__key__": "a", "jpg": jpg, "txt": b"fine"},
                                {"__key__": "b", "jpg": jpg, "json": b'{"url": "http://x", "caption": null}'}])
    assert "sample 'b' has neither a label" in _error(f"wds:{bad}/none-0.tar")
    _shard(bad / "empty-0.tar", [{"__key__": "a", "jpg": jpg, "txt": b"\n \n"}])
    assert "sample 'a' has neither a label" in _error(f"wds:{bad}/empty-0.tar")
    _shard(bad / "noimg-0.tar", [{"__key__": "a", "txt": b"a caption"}])
    assert "sample 'a' has no image" in _error(f"wds:{bad}/noimg-0.tar")
    _shard(bad / "type-0.tar", [{"__key__": "a", "jpg": jpg, "json": b'{"captions": [1, 2]}'}])
    assert "'captions' must be a string or a list of strings" in _error(f"wds:{bad}/type-0.tar")
    _shard(bad / "latin-0.tar", [{"__key__": "a", "jpg": jpg, "txt": "caf\xe9".encode("latin-1")}])
    assert "latin-0.tar:a.txt: .txt caption is not UTF-8" in _error(f"wds:{bad}/latin-0.tar")

    good = _shard(bad / "good-0.tar", [{"__key__": "a", "jpg": jpg, "txt": b"a caption"}]).read_bytes()
    (bad / "good-0.tar.gz").write_bytes(gzip.compress(good))
    assert "not an uncompressed .tar" in _error(f"wds:{bad}/good-0.tar.gz")
    (bad / "gz-0.tar").write_bytes(gzip.compress(good))  # compressed behind a plain .tar name
    assert "gz-0.tar is gzip-compressed" in _error(f"wds:{bad}/gz-0.tar")

    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    assert main(["run", "--model", str(ckpt), "--suite", "smoke-retrieval", "--dataset", f"wds:{bad}/mixed-{{0..1}}.tar",
                 "--cache-dir", str(tmp_path / "c"), "--results-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clipbench: error: wds:") and "mix classification" in err and len(err.splitlines()) == 1


def test_classification_shards_share_the_scanner_and_the_shard_identity(tmp_path):
    """Labelled shards go through the same scanner; their fingerprint now follows the image bytes too."""
    images = [write_image(tmp_path / "src" / f"{i}.png", i) for i in range(4)]

    def write() -> str:
        _shard(tmp_path / "cls" / "c-0.tar", [{"__key__": f"s{i}", "png": p.read_bytes(), "cls": str(i % 2).encode()}
                                              for i, p in enumerate(images)])
        return f"wds:{tmp_path / 'cls'}/c-0.tar"

    spec = write()
    (tmp_path / "cls" / "classnames.txt").write_text("even\nodd\n")
    adapter = get_dataset(spec)
    assert adapter.classnames == ["even", "odd"] and getattr(adapter, "kind", "classification") == "classification"
    split = adapter.load_split("test")
    assert split.labels.tolist() == [0, 1, 0, 1] and split.fingerprint_inputs["kind"] == "wds"
    before, sub = split.fingerprint, split.subset([0, 1], "val:first2").fingerprint
    write_image(images[3], 77)  # same size and labels: only the pixels of sample 3 differ
    spec = write()
    again = get_dataset(spec).load_split("test")
    assert again.labels.tolist() == split.labels.tolist() and again.fingerprint != before
    assert again.subset([0, 1], "val:first2").fingerprint != sub  # the shard file changed under the subset too
