"""The fake classic datasets (tests/_fake_layouts_classic.py) load through their registered adapters: every
evaluation sample written is read back, with labels inside the adapter's class range."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.datasets import get_dataset
from tests._fake_layouts_classic import WRITERS, fake_checksums

#: evaluation samples per class: 1 where a class costs many files (ImageNet's 1000 folders, Caltech-101's 30
#: train images a class, SUN397's 397 folders), else 2
PER_CLASS = {"imagenet1k": 1, "imagenet_sketch": 1, "imagenet_v2": 1, "caltech101": 1, "sun397": 1}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_fake_loads_through_its_adapter(name, tmp_path):
    written = WRITERS[name](tmp_path, PER_CLASS.get(name, 2))
    adapter = get_dataset(name)
    split = "val" if "val" in adapter.splits and "test" not in adapter.splits else "test"
    with fake_checksums():
        data = adapter.load_split(split, tmp_path)
    assert written > 0 and len(data) == written
    if name in ("flickr30k", "mscoco_captions"):
        assert all(len(c) == 5 for c in data.captions)
        return
    labels = np.asarray(data.labels)
    assert labels.min() >= 0 and labels.max() < len(adapter.classnames)
    if name != "cifar10":  # cifar10_tree draws its labels at random
        assert set(labels.tolist()) == set(range(len(adapter.classnames)))
