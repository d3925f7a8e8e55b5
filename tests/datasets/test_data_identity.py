"""The feature cache is keyed on the data itself: real files on disk are edited, swapped, replaced or
touched, and the rerun re-encodes exactly the split that changed (forward passes counted)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from _datasets_fixtures import class_tree, write_image
from _engine_fixtures import FakeModel

from clipbench.datasets import get_dataset, load_split, probe_splits
from clipbench.datasets.images import ArraySplit, WrappedSplit
from clipbench.features import FORWARD_STATS, FeatureStore, extract_features

COUNTS = {"cat": 6, "dog": 6, "fox": 6}  # equal sizes, identical file names in every class folder


def _tree(root: Path, seed: int = 0) -> Path:
    class_tree(root / "train", COUNTS, seed=seed)
    class_tree(root / "test", {k: 3 for k in COUNTS}, seed=seed + 50)
    return root


def _encode_all(root: Path, store: FeatureStore, verify_data: bool = False, spec: str | None = None) -> dict[str, int]:
    """What the probe encodes (probe-train, probe-val, test), loaded afresh; forward samples per split."""
    model = FakeModel()
    adapter = get_dataset(spec or f"folder:{root}")
    train, val, test = probe_splits(adapter, root, 0.2, 0, verify_data=verify_data)
    counts = {}
    for name, split in (("train", train), ("val", val), ("test", test)):
        FORWARD_STATS.reset()
        extract_features(model, split, store, batch_size=4, progress=False)
        counts[name] = FORWARD_STATS.samples
    return counts


def _val_file(root: Path) -> Path:
    _, val, _ = probe_splits(get_dataset(f"folder:{root}"), root, 0.2, 0)
    return Path(val.parent.paths[int(val.indices[0])])


def test_unchanged_tree_reuses_everything(tmp_path):
    root, store = _tree(tmp_path / "ds"), FeatureStore(tmp_path / "cache")
    assert _encode_all(root, store) == {"train": 15, "val": 3, "test": 9}
    assert _encode_all(root, store) == {"train": 0, "val": 0, "test": 0}


def _edit(path: Path) -> None:
    write_image(path, 999)  # other pixels, same name and size


def _edit_keep_mtime(path: Path) -> None:
    before = path.stat()
    _edit(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as tools that restore timestamps do


def _replace(path: Path) -> None:
    tmp = path.with_name("new.tmp")
    shutil.copy2(path, tmp)  # the same bytes and mtime under a new inode
    os.replace(tmp, path)


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.mark.parametrize("change", [_edit, _edit_keep_mtime, _replace, _touch], ids=lambda f: f.__name__[1:])
def test_a_changed_test_image_reencodes_exactly_the_test_split(tmp_path, change):
    root, store = _tree(tmp_path / "ds"), FeatureStore(tmp_path / "cache")
    _encode_all(root, store)
    change(root / "test" / "dog" / "img_001.png")
    assert _encode_all(root, store) == {"train": 0, "val": 0, "test": 9}


def test_a_changed_image_in_the_carved_val_reencodes_only_that_subset(tmp_path):
    root, store = _tree(tmp_path / "ds"), FeatureStore(tmp_path / "cache")
    _encode_all(root, store)
    _edit(_val_file(root))
    assert _encode_all(root, store) == {"train": 0, "val": 3, "test": 0}


def test_swapped_class_folders_of_equal_size_reencode_and_score_like_a_fresh_cache(tmp_path):
    root, store = _tree(tmp_path / "ds"), FeatureStore(tmp_path / "cache")
    _encode_all(root, store)
    test_dir = root / "test"
    before = get_dataset(f"folder:{root}").load_split("test", root)
    before_fingerprint = before.fingerprint  # computed when the split is first used, as the engine does
    os.rename(test_dir / "cat", test_dir / "tmp")
    os.rename(test_dir / "dog", test_dir / "cat")
    os.rename(test_dir / "tmp", test_dir / "dog")
    after = get_dataset(f"folder:{root}").load_split("test", root)
    # same relative paths, sizes and labels: only the data (inodes moved with the files) tells them apart
    np.testing.assert_array_equal(before.labels, after.labels)
    assert [os.path.relpath(p, root) for p in before.paths] == [os.path.relpath(p, root) for p in after.paths]
    assert after.fingerprint != before_fingerprint
    assert _encode_all(root, store) == {"train": 0, "val": 0, "test": 9}
    cached = extract_features(FakeModel(), after, store, batch_size=4, progress=False).features
    fresh = extract_features(FakeModel(), after, FeatureStore(tmp_path / "fresh"), batch_size=4, progress=False)
    np.testing.assert_array_equal(cached, fresh.features)


def test_same_relative_path_from_two_working_directories_never_shares_an_entry(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path / "cache")
    for name, seed in (("a", 0), ("b", 7)):
        class_tree(tmp_path / name / "data", {"cat": 3, "dog": 3}, seed=seed)
    got = {}
    for name in ("a", "b"):
        monkeypatch.chdir(tmp_path / name)
        split = get_dataset("folder:data").load_split("test", None)
        assert split.fingerprint_inputs["root"] == str((tmp_path / name / "data").resolve())
        FORWARD_STATS.reset()
        got[name] = (split.fingerprint, extract_features(FakeModel(), split, store, batch_size=4, progress=False))
        assert FORWARD_STATS.samples == 6  # the second directory is encoded, not served from the first
    assert got["a"][0] != got["b"][0]
    assert not np.array_equal(got["a"][1].features, got["b"][1].features)


def test_fingerprint_inputs_describe_the_data(tmp_path):
    root = _tree(tmp_path / "ds")
    split = get_dataset(f"folder:{root}").load_split("test", root)
    inputs = split.fingerprint_inputs
    assert inputs["kind"] == "files" and inputs["root"] == str(root.resolve()) and inputs["n_files"] == 9
    assert len(inputs["manifest_sha256"]) == 64 and inputs["content_sha256"] is None
    verified = load_split(get_dataset(f"folder:{root}"), "test", root, verify_data=True)
    assert len(verified.fingerprint_inputs["content_sha256"]) == 64
    assert verified.fingerprint != split.fingerprint  # the content-addressed key is another key
    limited = split.subset([0, 4], "limit=2:seed=0:stratified")
    assert limited.fingerprint_inputs["n_files"] == 2 and limited.fingerprint != split.fingerprint


def test_verify_data_shares_identical_copies_and_catches_a_byte_that_stat_cannot_see(tmp_path, monkeypatch):
    store = FeatureStore(tmp_path / "cache")
    root, copy = _tree(tmp_path / "here" / "ds"), tmp_path / "there" / "ds"
    shutil.copytree(root, copy)  # another machine's copy: other root, inodes and ctimes, same bytes
    monkeypatch.chdir(root.parent)  # the same command (`folder:ds`) on both machines
    assert _encode_all(root, store, verify_data=True, spec="folder:ds") == {"train": 15, "val": 3, "test": 9}
    monkeypatch.chdir(copy.parent)
    assert _encode_all(copy, store, spec="folder:ds") == {"train": 15, "val": 3, "test": 9}  # stat cannot vouch
    assert _encode_all(copy, store, verify_data=True, spec="folder:ds") == {"train": 0, "val": 0, "test": 0}
    victim = copy / "test" / "fox" / "img_002.png"
    before = victim.stat()
    write_image(victim, 999)  # other pixels, same size ...
    assert victim.stat().st_size == before.st_size
    os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and the same mtime
    assert _encode_all(copy, store, verify_data=True, spec="folder:ds") == {"train": 0, "val": 0, "test": 9}


def test_csv_split_notices_a_touched_image(tmp_path):
    files = [write_image(tmp_path / "img" / f"{i}.png", i) for i in range(4)]
    (tmp_path / "data.csv").write_text("path,label\n" + "".join(f"img/{f.name},{i % 2}\n" for i, f in enumerate(files)))
    first = get_dataset(f"csv:{tmp_path / 'data.csv'}").load_split("test", None)
    assert first.fingerprint_inputs["root"] == str(tmp_path.resolve())
    _touch(files[2])
    assert get_dataset(f"csv:{tmp_path / 'data.csv'}").load_split("test", None).fingerprint != first.fingerprint


def test_in_memory_pixels_are_hashed(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    split = ArraySplit("arr", "test", images, [0, 1, 0, 1, 0])
    other = images.copy()
    other[3, 2, 2, 1] ^= 1
    assert ArraySplit("arr", "test", other, [0, 1, 0, 1, 0]).fingerprint != split.fingerprint
    assert ArraySplit("arr", "test", images.copy(), [0, 1, 0, 1, 0]).fingerprint == split.fingerprint
    digits = get_dataset("digits").load_split("test", None)
    assert digits.fingerprint_inputs["kind"] == "arrays" and digits.fingerprint_inputs["content_sha256"]


def test_wrapped_split_without_per_sample_files_fingerprints_its_tree(tmp_path):
    (tmp_path / "raw").mkdir()
    blob = tmp_path / "raw" / "images.bin"
    blob.write_bytes(b"\x00" * 64)
    split = WrappedSplit("tv", "test", inner=None, labels=[0, 1], root=tmp_path)
    assert split.fingerprint_inputs["n_files"] == 1
    _touch(blob)
    assert WrappedSplit("tv", "test", inner=None, labels=[0, 1], root=tmp_path).fingerprint != split.fingerprint


def test_hf_split_carries_the_datasets_fingerprint(tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})

    def save(seed: int) -> str:
        files = [str(write_image(tmp_path / f"src{seed}" / f"{i}.png", seed * 10 + i)) for i in range(3)]
        path = tmp_path / f"saved{seed}"
        datasets.Dataset.from_dict({"image": files, "label": [0, 1, 0]}, features=features).save_to_disk(str(path))
        return str(path)

    first = get_dataset(f"hf:{save(0)}").load_split("test", None)
    inputs = first.fingerprint_inputs
    assert inputs["source"]["hf_fingerprint"] and inputs["n_files"] >= 1
    shutil.rmtree(tmp_path / "saved0")
    os.rename(save(1), tmp_path / "saved0")  # other images saved under the same path and labels
    again = get_dataset(f"hf:{tmp_path / 'saved0'}").load_split("test", None)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.fingerprint != first.fingerprint


def test_a_run_after_swapping_folders_scores_like_a_cleared_cache(tmp_path):
    """The issue's reproduction through the engine: swap two equal-size class folders, rerun zero-shot."""
    import clipbench
    from clipbench.suites import parse_suite

    suite = parse_suite({"version": 1, "datasets": ["x"], "tasks": ["zeroshot"], "options": {"bootstrap": 0}},
                        "t", "zs", check_dataset=None)
    root = tmp_path / "ds"
    class_tree(root, {"cat": 4, "dog": 4, "fox": 4})

    def run(cache: str) -> dict:
        (rec,) = clipbench.run(FakeModel(), suite=suite, datasets=[get_dataset(f"folder:{root}")],
                               cache_dir=tmp_path / cache, write=False, device="cpu", progress=False)
        return rec

    first = run("cache")
    os.rename(root / "cat", root / "tmp")
    os.rename(root / "dog", root / "cat")
    os.rename(root / "tmp", root / "dog")
    FORWARD_STATS.reset()
    rerun = run("cache")
    assert FORWARD_STATS.samples == 12 and rerun["dataset_fingerprint"] != first["dataset_fingerprint"]
    assert rerun["metrics"] == run("cleared")["metrics"]


def test_registered_layouts_fingerprint_their_files_per_split(tmp_path):
    """ImageNet's synset folders and a torchvision layout (EuroSAT, carved train/test): a touched image
    changes the fingerprint of exactly the split that holds it."""
    from clipbench.datasets.imagenet import imagenet_wnids

    wnids = imagenet_wnids()[:3]
    class_tree(tmp_path / "imagenet1k" / "val", {w: 2 for w in wnids}, ext=".JPEG")
    val = get_dataset("imagenet1k").load_split("val", tmp_path)
    assert val.fingerprint_inputs["root"] == str((tmp_path / "imagenet1k" / "val").resolve())
    before = val.fingerprint
    _touch(tmp_path / "imagenet1k" / "val" / wnids[1] / "img_000.JPEG")
    assert get_dataset("imagenet1k").load_split("val", tmp_path).fingerprint != before

    class_tree(tmp_path / "eurosat" / "eurosat" / "2750", {f"C{c}": 5 for c in range(10)}, ext=".jpg")
    adapter = get_dataset("eurosat")
    train, test = adapter.load_split("train", tmp_path), adapter.load_split("test", tmp_path)
    fingerprints = {"train": train.fingerprint, "test": test.fingerprint}
    assert test.fingerprint_inputs["n_files"] == len(test) == 10
    victim = test.parent.sample_path(test.parent.inner, int(test.indices[0]))
    _touch(Path(victim))
    again = {s: adapter.load_split(s, tmp_path).fingerprint for s in ("train", "test")}
    assert again["train"] == fingerprints["train"] and again["test"] != fingerprints["test"]


def test_a_downloaded_datasets_verified_archive_joins_its_fingerprint(tmp_path):
    from _datasets_fixtures import cifar10_tree

    from clipbench.datasets.download import MARKER

    cifar10_tree(tmp_path / "cifar10")
    plain = get_dataset("cifar10").load_split("test", tmp_path)
    assert "source" not in plain.fingerprint_inputs and plain.fingerprint_inputs["kind"] == "arrays"
    archive = {"url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "md5": "c58f30108f718f92721af3b95e74349a"}
    (tmp_path / "cifar10" / MARKER).write_text(json.dumps({"dataset": "cifar10", "archives": [archive]}))
    marked = get_dataset("cifar10").load_split("test", tmp_path)
    assert marked.fingerprint_inputs["source"] == {"archives": [archive]}
    assert marked.fingerprint != plain.fingerprint
