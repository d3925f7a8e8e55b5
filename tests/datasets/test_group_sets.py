"""The multi-label, binary and grouped sets of issue 29, read from fake copies in their real layouts
(``tests/_fake_layouts_groups.py``): targets, groups, the count check, subsets and the fingerprint."""

from __future__ import annotations

import numpy as np
import pytest
from _fake_layouts_groups import WRITERS, relaxed_counts

from clipbench.datasets import get_dataset
from clipbench.datasets.splits import limit_split
from clipbench.foundations.errors import DataError


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_group_set_reads_its_fake_copy(name, tmp_path):
    WRITERS[name](tmp_path, 3)
    adapter = get_dataset(name)
    assert adapter.is_present(tmp_path)
    with relaxed_counts([name]):
        split = adapter.load_split(adapter.evaluation_split, tmp_path)
    n_classes = len(adapter.classnames)
    assert len(split) == 3 * n_classes and split.labels.max() < n_classes
    assert split.sample_names() is not None and len(split.sample_names()) == len(split)
    image, label = split.torch_dataset(lambda im: im.size)[0]
    assert image == (8, 8) and label == split.labels[0]
    # the real copy's count is checked before any model loads: the fake is "a partial copy", in one line
    with pytest.raises(DataError, match="a complete copy has"):
        adapter.load_split(adapter.evaluation_split, tmp_path)


def test_voc2007_targets_are_multilabel_and_subsets_carry_them(tmp_path):
    WRITERS["voc2007"](tmp_path, 3)
    adapter = get_dataset("voc2007")
    with relaxed_counts(["voc2007"]):
        split = adapter.load_split("test", tmp_path)
    names = adapter.classnames
    targets = split.multilabel
    assert targets.shape == (60, 20) and targets.sum() == 60 + 20  # every third image shows a second class
    first = split.sample_names().index("VOCdevkit/VOC2007/JPEGImages/000060.jpg")
    assert names[split.labels[first]] == "aeroplane" and targets[first].sum() == 1
    sub = limit_split(split, 10, seed=0)
    assert np.array_equal(sub.multilabel, targets[sub.indices])
    assert sub.fingerprint != limit_split(split, 11, seed=0).fingerprint
    # the targets are part of the fingerprint: the same labels with other multi-label targets differ
    before = split.fingerprint
    split._targets = split._targets.copy()
    split._targets[first, 5] = True
    del split.__dict__["_fingerprints"]
    assert split.fingerprint != before


def test_a_hostile_voc_annotation_is_refused(tmp_path):
    WRITERS["voc2007"](tmp_path, 1)
    xml = next((tmp_path / "voc2007" / "VOCdevkit" / "VOC2007" / "Annotations").glob("*.xml"))
    xml.write_text('<!DOCTYPE a [<!ENTITY x "xx">]><annotation><object><name>&x;</name></object></annotation>')
    with relaxed_counts(["voc2007"]), pytest.raises(DataError, match="DTD or entity"):
        get_dataset("voc2007").load_split("train", tmp_path)
    ids = tmp_path / "voc2007" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "test.txt"
    ids.write_text("../../../etc/passwd\n")
    with relaxed_counts(["voc2007"]), pytest.raises(DataError, match="not a VOC image id"):
        get_dataset("voc2007").load_split("test", tmp_path)


def test_probe_and_knn_refuse_a_multilabel_set_and_score_roc_auc_sets_by_top1():
    from clipbench.tasks.registry import get_task

    voc, memes = get_dataset("voc2007"), get_dataset("hateful_memes")
    assert get_task("zeroshot").accepts(voc) and get_task("zeroshot").primary_metric(voc) == "mean_average_precision_11pt"
    for task in ("linear_probe", "knn"):
        assert not get_task(task).accepts(voc)
        assert get_task(task).accepts(memes) and get_task(task).primary_metric(memes) == "top1"
