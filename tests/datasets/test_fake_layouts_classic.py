"""The fake classic datasets (tests/_fake_layouts_classic.py) load through their registered adapters: every
evaluation sample written is read back, with labels inside the adapter's class range."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.datasets import get_dataset
from clipbench.foundations.errors import DataError
from tests._fake_layouts_classic import WRITERS

#: evaluation samples per class: 1 where a class costs many files (ImageNet's 1000 folders, Caltech-101's 30
#: train images a class, SUN397's 397 folders), else 2
PER_CLASS = {"imagenet1k": 1, "imagenet_sketch": 1, "imagenet_v2": 1, "caltech101": 1, "sun397": 1}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_fake_loads_through_its_adapter(name, tmp_path):
    written = WRITERS[name](tmp_path, PER_CLASS.get(name, 2))
    adapter = get_dataset(name)
    split = "val" if "val" in adapter.splits and "test" not in adapter.splits else "test"
    data = adapter.load_split(split, tmp_path)
    assert written > 0 and len(data) == written
    if name in ("flickr30k", "mscoco_captions"):
        assert all(len(c) == 5 for c in data.captions)
        return
    labels = np.asarray(data.labels)
    assert labels.min() >= 0 and labels.max() < len(adapter.classnames)
    if name != "cifar10":  # cifar10_tree draws its labels at random
        assert set(labels.tolist()) == set(range(len(adapter.classnames)))


def test_stl10_and_flowers102_need_only_the_files_their_split_reads(tmp_path):
    """torchvision's STL10 and Flowers102 would re-hash every file against the release's MD5s (the fakes fail that),
    and STL10 would need its 2.6 GB unlabeled file for the test split; clipbench's subclasses only require the
    split's files, and pickle by name (DataLoader workers under spawn)."""
    import pickle

    WRITERS["stl10"](tmp_path, 1)
    for name in ("train_X.bin", "train_y.bin", "unlabeled_X.bin"):
        (tmp_path / "stl10" / "stl10_binary" / name).unlink()
    stl10 = get_dataset("stl10")
    assert len(stl10.load_split("test", tmp_path)) == 10
    inner = stl10._construct(tmp_path / "stl10", "test")
    assert type(pickle.loads(pickle.dumps(inner))) is type(inner)
    WRITERS["flowers102"](tmp_path, 1)
    (tmp_path / "flowers102" / "flowers-102" / "imagelabels.mat").unlink()  # a file the split reads is still required
    with pytest.raises(DataError, match="flowers102 test: cannot read the data"):
        get_dataset("flowers102").load_split("test", tmp_path)
