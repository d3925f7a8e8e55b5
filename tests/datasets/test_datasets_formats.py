"""Datasets in their real on-disk formats: download (CIFAR-10 tar.gz over 127.0.0.1), ImageNet synset
folders, a Hugging Face dataset saved to disk, a CSV, a class-folder tree; plus the bad-input errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from _datasets_fixtures import cifar10_archive, class_tree, serve, write_image

from clipbench.datasets import Archive, download_dataset, get_dataset, probe_splits
from clipbench.datasets.download import MARKER
from clipbench.foundations.errors import ChecksumError, DataError, OfflineError


def identity(image):
    return image


def _cifar_from(base_url: str, md5: str):
    return dataclasses.replace(get_dataset("cifar10"), downloads=(Archive(f"{base_url}/cifar-10-python.tar.gz", md5),))


def test_cifar10_download_verify_extract_and_load(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    md5, labels = cifar10_archive(served / "cifar-10-python.tar.gz")
    data_root = tmp_path / "data"
    with serve(served) as base:
        adapter = _cifar_from(base, md5)
        assert not adapter.is_present(data_root)
        target = download_dataset(adapter, data_root)
    assert target == data_root / "cifar10" and (target / MARKER).is_file()
    assert adapter.is_present(data_root)
    assert not list(data_root.glob(".cifar10.partial-*")) and not list((data_root / ".downloads").iterdir())
    train, test = adapter.load_split("train", data_root), adapter.load_split("test", data_root)
    assert len(train) == 20 and len(test) == 6
    np.testing.assert_array_equal(train.labels, labels["train"])
    np.testing.assert_array_equal(test.labels, labels["test"])
    image, label = train.torch_dataset(identity)[3]
    assert image.size == (32, 32) and image.mode == "RGB" and label == labels["train"][3]
    # stable across loads, different across splits
    assert train.fingerprint == adapter.load_split("train", data_root).fingerprint
    assert train.fingerprint != test.fingerprint
    # already present: no network needed
    assert download_dataset(adapter, data_root, offline=True) == target


def test_cifar10_wrong_md5_is_rejected_and_nothing_extracted(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    cifar10_archive(served / "cifar-10-python.tar.gz")
    data_root = tmp_path / "data"
    with serve(served) as base:
        adapter = _cifar_from(base, "0" * 32)
        with pytest.raises(ChecksumError, match="MD5 .* expected 0{32}"):
            download_dataset(adapter, data_root)
    assert not (data_root / "cifar10").exists()
    assert not list(data_root.glob(".cifar10.partial-*"))
    assert not list((data_root / ".downloads").glob("*.tar.gz"))
    with pytest.raises(DataError, match="cifar10.*not found.*clipbench download cifar10"):
        adapter.load_split("test", data_root)


def test_download_offline_and_manual_datasets_say_what_to_do(tmp_path):
    with pytest.raises(OfflineError, match="cifar-10-python.tar.gz"):
        download_dataset(get_dataset("cifar10"), tmp_path, offline=True)
    with pytest.raises(DataError, match=f"ILSVRC2012.*{tmp_path}/imagenet1k/val/n01440764"):
        download_dataset(get_dataset("imagenet1k"), tmp_path)


def test_incomplete_folder_is_not_treated_as_complete(tmp_path):
    half = tmp_path / "cifar10" / "cifar-10-batches-py"
    half.mkdir(parents=True)
    (half / "data_batch_1").write_bytes(b"partial")
    adapter = get_dataset("cifar10")
    assert not adapter.is_present(tmp_path)
    with pytest.raises(DataError, match="exists but is incomplete"):
        download_dataset(dataclasses.replace(adapter, downloads=(Archive("http://127.0.0.1:9/x.tar.gz", "0" * 32),)), tmp_path)


IMAGENET_CLASSES = {"n01440764": 0, "n01443537": 1, "n01484850": 2, "n15075141": 999}


def test_imagenet_synset_folders(tmp_path):
    class_tree(tmp_path / "imagenet1k" / "val", {w: 2 + i for i, w in enumerate(IMAGENET_CLASSES)}, ext=".JPEG")
    adapter = get_dataset("imagenet1k")
    assert adapter.is_present(tmp_path) and adapter.splits == ("val",) and adapter.evaluation_split == "val"
    split = adapter.load_split("val", tmp_path)
    expected = np.repeat(list(IMAGENET_CLASSES.values()), [2, 3, 4, 5])
    np.testing.assert_array_equal(split.labels, expected)
    assert adapter.classnames[0] == "tench" and adapter.classnames[999] == "toilet paper"
    image, label = split.torch_dataset(identity)[len(split) - 1]
    assert label == 999 and image.mode == "RGB"
    # the 7-template variant reads the same images under the same fingerprint (features are shared)
    seven = get_dataset("imagenet1k_7t")
    assert len(seven.templates) == 7 and seven.load_split("val", tmp_path).fingerprint == split.fingerprint
    with pytest.raises(DataError, match="has no split 'test'"):
        adapter.load_split("test", tmp_path)


def test_imagenet_a_maps_its_200_wnids(tmp_path):
    adapter = get_dataset("imagenet_a")
    wnids = adapter.keys
    class_tree(tmp_path / "imagenet_a" / "imagenet-a", {wnids[0]: 1, wnids[199]: 2})
    split = adapter.load_split("test", tmp_path)
    np.testing.assert_array_equal(split.labels, [0, 199, 199])
    imagenet = get_dataset("imagenet1k")
    assert adapter.classnames[0] == imagenet.classnames[imagenet.keys.index(wnids[0])]
    (tmp_path / "imagenet_a" / "imagenet-a" / "n99999999").mkdir()
    with pytest.raises(DataError, match="n99999999 is not a known class folder"):
        adapter.load_split("test", tmp_path)


def test_imagenet_from_hf_save_to_disk(tmp_path):
    import datasets
    names = list(get_dataset("imagenet1k").keys)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    images = [str(write_image(tmp_path / "src" / f"{i}.png", i)) for i in range(3)]
    ds = datasets.Dataset.from_dict({"image": images, "label": [5, 0, 999]}, features=features)
    datasets.DatasetDict({"validation": ds}).save_to_disk(str(tmp_path / "imagenet1k" / "hf"))
    split = get_dataset("imagenet1k").load_split("val", tmp_path)
    np.testing.assert_array_equal(split.labels, [5, 0, 999])
    assert split.dataset_name == "imagenet1k" and split.torch_dataset(identity)[2][1] == 999


def _hf_saved(tmp_path: Path) -> Path:
    import datasets
    features = datasets.Features({"img": datasets.Image(), "fine": datasets.ClassLabel(names=["red_fox", "cat", "dog"])})
    def part(n: int, offset: int):
        files = [str(write_image(tmp_path / "src" / f"{offset + i}.png", offset + i)) for i in range(n)]
        return datasets.Dataset.from_dict({"img": files, "fine": [(offset + i) % 3 for i in range(n)]}, features=features)
    path = tmp_path / "saved"
    datasets.DatasetDict({"train": part(9, 0), "validation": part(4, 100), "test": part(5, 200)}).save_to_disk(str(path))
    return path


def test_hf_saved_dataset(tmp_path):
    path = _hf_saved(tmp_path)
    adapter = get_dataset(f"hf:{path}")
    assert adapter.classnames == ["red fox", "cat", "dog"] and adapter.splits == ("train", "val", "test")
    assert adapter.image_column == "img" and adapter.label_column == "fine"
    sizes = {s: len(adapter.load_split(s, tmp_path)) for s in adapter.splits}
    assert sizes == {"train": 9, "val": 4, "test": 5}
    val = adapter.load_split("val", tmp_path)
    np.testing.assert_array_equal(val.labels, [(100 + i) % 3 for i in range(4)])
    image, label = val.torch_dataset(identity)[1]
    assert image.mode == "RGB" and label == 101 % 3
    # the dataset's own val split is used by the probe
    train, pval, test = probe_splits(adapter, tmp_path)
    assert (len(train), len(pval), len(test)) == (9, 4, 5) and pval.subset_spec == ""
    assert get_dataset(f"hf:{path}").load_split("val", tmp_path).fingerprint == val.fingerprint


def test_hf_missing_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="nothing-here is not a dataset saved with save_to_disk"):
        get_dataset(f"hf:{tmp_path / 'nothing-here'}")
    with pytest.raises(DataError, match="hf:someone/unknown-dataset: cannot load it"):
        get_dataset("hf:someone/unknown-dataset")  # offline in tests: the Hub is unreachable


def test_csv_dataset(tmp_path):
    files = class_tree(tmp_path / "imgs", {"cat": 3, "dog": 2})
    rows = ["path,label,split"]
    for name, paths in files.items():
        for i, p in enumerate(paths):
            rows.append(f"{p.relative_to(tmp_path)},{name},{'train' if i else 'test'}")
    rows.append(f"{files['cat'][0]},cat,validation")  # absolute path, split alias
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    adapter = get_dataset(f"csv:{tmp_path / 'data.csv'}")
    assert adapter.classnames == ["cat", "dog"] and adapter.splits == ("train", "val", "test")
    train = adapter.load_split("train", None)
    np.testing.assert_array_equal(train.labels, [0, 0, 1])
    assert len(adapter.load_split("test", None)) == 2 and len(adapter.load_split("val", None)) == 1
    assert train.torch_dataset(identity)[2][1] == 1


def test_csv_unknown_label_and_missing_file(tmp_path):
    files = class_tree(tmp_path, {"cat": 1, "dog": 1})
    (tmp_path / "classnames.txt").write_text("cat\ndog\n")
    (tmp_path / "bad.csv").write_text(f"image,label\n{files['cat'][0]},cat\n{files['dog'][0]},horse\n")
    with pytest.raises(DataError, match=r"bad.csv line 3: unknown label 'horse'.*classnames.txt"):
        get_dataset(f"csv:{tmp_path / 'bad.csv'}")
    (tmp_path / "missing.csv").write_text("image,label\nnope.png,cat\n")
    with pytest.raises(DataError, match=r"nope.png does not exist"):
        get_dataset(f"csv:{tmp_path / 'missing.csv'}").load_split("test", None)
    (tmp_path / "cols.csv").write_text("a,b\nx,y\n")
    with pytest.raises(DataError, match="no image path column"):
        get_dataset(f"csv:{tmp_path / 'cols.csv'}")


def test_class_folder_tree_with_splits_and_classnames_file(tmp_path):
    class_tree(tmp_path / "train", {"golden_retriever": 4, "tabby": 6}, seed=1)
    class_tree(tmp_path / "test", {"golden_retriever": 2, "tabby": 3}, seed=2)
    (tmp_path / "classnames.txt").write_text("golden retriever\ntabby cat\n")
    adapter = get_dataset(f"folder:{tmp_path}")
    assert adapter.classnames == ["golden retriever", "tabby cat"] and adapter.splits == ("train", "test")
    test = adapter.load_split("test", None)
    np.testing.assert_array_equal(test.labels, [0, 0, 1, 1, 1])
    train, val, test2 = probe_splits(adapter, tmp_path, val_fraction=0.5, seed=3)
    assert (len(train), len(val)) == (5, 5) and sorted(np.bincount(val.labels)) == [2, 3]
    assert "seed=3" in val.subset_spec and "frac=0.5" in val.subset_spec
    assert len({train.fingerprint, val.fingerprint, test2.fingerprint}) == 3
    assert probe_splits(adapter, tmp_path, val_fraction=0.5, seed=3)[1].fingerprint == val.fingerprint
    assert probe_splits(adapter, tmp_path, val_fraction=0.5, seed=4)[1].fingerprint != val.fingerprint


def test_plain_class_folders_are_one_test_split(tmp_path):
    class_tree(tmp_path, {"a": 2, "b": 1})
    adapter = get_dataset(f"folder:{tmp_path}")
    assert adapter.splits == ("test",) and len(adapter.load_split("test", None)) == 3


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        get_dataset(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "noimg" / "cls").mkdir(parents=True)
    (tmp_path / "noimg" / "cls2").mkdir()  # two classes: a single class is an error of its own
    (tmp_path / "noimg" / "cls" / "readme.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images under"):
        get_dataset(f"folder:{tmp_path / 'noimg'}").load_split("test", None)


def test_corrupt_image_stops_with_its_path(tmp_path):
    files = class_tree(tmp_path / "ds", {"a": 2, "b": 2})
    files["b"][1].write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    split = get_dataset(f"folder:{tmp_path / 'ds'}").load_split("test", None)
    dataset = split.torch_dataset(identity)
    assert dataset[0][1] == 0  # good images still load
    with pytest.raises(DataError, match=f"corrupt image {files['b'][1]}"):
        dataset[3]


def test_missing_data_root_and_missing_data(tmp_path):
    with pytest.raises(DataError, match=f"data root {tmp_path / 'nope'} does not exist"):
        get_dataset("food101").load_split("test", tmp_path / "nope")
    with pytest.raises(DataError, match=r"food101: .*food-101/meta/test.json not found; run `clipbench download food101`"):
        get_dataset("food101").load_split("test", tmp_path)
    with pytest.raises(DataError, match=r"stanford_cars: .* not found; its original host is gone"):
        get_dataset("cars").load_split("test", tmp_path)
    with pytest.raises(DataError, match="has no split 'val'"):
        get_dataset("cifar10").load_split("val", tmp_path)


def test_torchvision_layout_dtd(tmp_path):
    """A torchvision-read dataset (DTD) from its own layout: images/<class>/, labels/{split}1.txt."""
    base = tmp_path / "dtd" / "dtd" / "dtd"  # torchvision: root/dtd/dtd/{images,labels}; root = <data-root>/dtd
    classes = get_dataset("dtd").classnames
    lines = {"train": [], "val": [], "test": []}
    for c, name in enumerate(classes[:3]):
        for i, split in enumerate(("train", "val", "test", "test")):
            rel = f"{name}/{name}_{i:04d}.jpg"
            write_image(base / "images" / rel, c * 10 + i, fmt="JPEG")
            lines[split].append(rel)
    (base / "labels").mkdir()
    for split, rels in lines.items():
        (base / "labels" / f"{split}1.txt").write_text("\n".join(rels) + "\n")
    adapter = get_dataset("dtd")
    test = adapter.load_split("test", tmp_path)
    np.testing.assert_array_equal(test.labels, [0, 0, 1, 1, 2, 2])
    image, label = test.torch_dataset(identity)[5]
    assert image.mode == "RGB" and label == 2
    (base / "images" / lines["test"][-1]).write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt image .*banded|corrupt image .*dtd"):
        adapter.load_split("test", tmp_path).torch_dataset(identity)[5]
