"""The multi-label, binary and grouped sets of issue 29, read from fake copies in their real layouts
(``tests/_fake_layouts_groups.py``): targets, groups, the count check, subsets and the fingerprint."""

from __future__ import annotations

import numpy as np
import pytest
from _fake_layouts_groups import WRITERS, relaxed_counts

from clipbench.datasets import get_dataset
from clipbench.datasets.splits import limit_split
from clipbench.foundations.errors import DataError


@pytest.mark.parametrize("name", sorted(n for n in WRITERS if n != "winogavil"))  # winogavil: its own test below
def test_every_group_set_reads_its_fake_copy(name, tmp_path):
    WRITERS[name](tmp_path, 3)
    adapter = get_dataset(name)
    assert adapter.is_present(tmp_path)
    with relaxed_counts([name]):
        split = adapter.load_split(adapter.evaluation_split, tmp_path)
    n_classes = len(adapter.classnames)
    # fakes write n_per_class (3) images of every class, or of a few classes of the large sets
    assert len(split) % 3 == 0 and len(split) >= 6 and split.labels.max() < n_classes
    assert split.sample_names() is not None and len(split.sample_names()) == len(split)
    image, label = split.torch_dataset(lambda im: im.size)[0]
    assert image == ((16, 16) if name in ("ucf101", "kinetics700") else (8, 8)) and label == split.labels[0]
    # the real copy's count is checked before any model loads: the fake is "a partial copy", in one line
    if adapter.expected_count:  # every set but UTKFace and Kinetics-700, whose complete counts are not fixed
        import dataclasses

        from clipbench.datasets.counts import check_counts

        with pytest.raises(DataError, match=f"expected {adapter.expected_count:,}"):  # a copy: DataComp's set names
            check_counts([dataclasses.replace(adapter)], tmp_path)
    else:
        assert name.startswith("utkface") or name == "kinetics700"


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
        assert "roc_auc" in get_task(task).single_label_note(memes)[0]
        assert get_task(task).single_label_note(get_dataset("camelyon17")) == []  # its own metric is top-1
    from clipbench.engine.runner import check_task_fits
    from clipbench.foundations.errors import ClipbenchError

    with pytest.raises(ClipbenchError, match="a multi-label set; linear_probe scores one label per image"):
        check_task_fits([get_task("linear_probe")], [voc])


def test_wilds_splits_and_groups_follow_wilds(tmp_path):
    for name in ("iwildcam", "camelyon17", "fmow"):
        WRITERS[name](tmp_path, 3)
    with relaxed_counts(["iwildcam", "camelyon17", "fmow"]):
        fmow_test, fmow_train = (get_dataset("fmow").load_split(s, tmp_path) for s in ("test", "train"))
        camelyon = get_dataset("camelyon17").load_split("test", tmp_path)
        camelyon_train = get_dataset("camelyon17").load_split("train", tmp_path)
        iwildcam = get_dataset("iwildcam").load_split("test", tmp_path)
    # FMoW: test = 2016 and later (the 2014 test rows are OOD validation); train = before 2013
    assert len(fmow_test) == 9 and len(fmow_train) == 9
    codes, names = fmow_test.sample_groups["region"]
    assert "Other" in names and {names[c] for c in codes} == {"Americas", "Europe", "Africa", "Asia", "Other"}
    assert get_dataset("fmow").group_by == "region" and get_dataset("fmow").group_excluded == ("Other",)
    # Camelyon17: test = hospital 2, train = split 0 outside hospitals 1 and 2
    assert len(camelyon) == 6 and len(camelyon_train) == 6
    assert all("patient_002" in n for n in camelyon.sample_names())
    assert set(camelyon.sample_groups["slide"][1]) == {"20", "21"}
    assert set(iwildcam.sample_groups["location"][1]) == {"0", "1", "2"} and len(iwildcam) == 12
    # a subset carries the groups; they are part of the fingerprint
    sub = limit_split(fmow_test, 5, seed=0)
    assert np.array_equal(sub.sample_groups["region"][0], codes[sub.indices])
    before = fmow_test.fingerprint
    fmow_test._groups["region"] = (codes[::-1].copy(), names)
    del fmow_test.__dict__["_fingerprints"]
    assert fmow_test.fingerprint != before


def test_a_wilds_file_name_cannot_leave_its_folder(tmp_path):
    WRITERS["iwildcam"](tmp_path, 1)
    meta = tmp_path / "iwildcam_v2.0" / "metadata.csv"
    meta.write_text(meta.read_text().replace("test-0-0.jpg", "../../x.jpg"))
    with relaxed_counts(["iwildcam"]), pytest.raises(DataError, match="not a plain file name"):
        get_dataset("iwildcam").load_split("test", tmp_path)


def test_datacomp_copies_bring_their_names_and_group_metadata(tmp_path):
    WRITERS["dollar_street"](tmp_path, 3)
    adapter = get_dataset("dollar_street")
    with relaxed_counts(["dollar_street"]):
        split = adapter.load_split("test", tmp_path)
        assert adapter.classnames[0] == "thing 0" and adapter.templates == ["a photo of a {c}.", "an image of {c}."]
    assert adapter.classnames[0] == "class 0"  # the placeholders are back once the fake is gone
    codes, names = split.sample_groups["income_ds"]
    assert names == ["0", "1", "2", "3"] and len(codes) == 9 and adapter.group_by == "income_ds"
    assert split.sample_names()[0].startswith("test/0.tar:")
    # a --prompts file's templates win over the copy's; its classnames still come from the copy
    from clipbench.datasets.prompts import PromptSet, with_prompts

    custom = with_prompts(adapter, PromptSet([], ["a {c} at home."]))
    with relaxed_counts(["dollar_street"]):
        custom.expected_count = 0
        custom.load_split("test", tmp_path)
    assert custom.templates == ["a {c} at home."] and custom.classnames[1] == "thing 1"


def test_a_pickled_npy_member_is_refused(tmp_path):
    import io
    import tarfile

    WRITERS["geode"](tmp_path, 1)
    shard = tmp_path / "wds_geode_test" / "test" / "0.tar"
    data = io.BytesIO()
    np.save(data, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with tarfile.open(shard, "w") as tar:
        for ext, payload in (("jpg", b"x"), ("cls", b"0"), ("npy", data.getvalue())):
            info = tarfile.TarInfo(f"bad.{ext}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with relaxed_counts(["geode"]), pytest.raises(DataError, match="unreadable .npy metadata"):
        get_dataset("geode").load_split("test", tmp_path)


def test_face_sets_classify_one_attribute_and_carry_every_group(tmp_path):
    WRITERS["fairface"](tmp_path, 3)
    WRITERS["utkface"](tmp_path, 3)
    with relaxed_counts(["fairface", "fairface_race", "utkface_age"]):
        gender = get_dataset("fairface").load_split("test", tmp_path)
        race = get_dataset("fairface_race").load_split("test", tmp_path)
        utk_age = get_dataset("utkface_age").load_split("test", tmp_path)
    assert np.array_equal(gender.labels, gender.sample_groups["gender"][0])
    assert np.array_equal(race.labels, race.sample_groups["race"][0]) and race.labels.tolist()[:3] == [0, 1, 2]
    assert len(utk_age) == 6  # the file whose name lacks a field is skipped
    from clipbench.datasets.fairness import age_bin

    ages = [int(n.split("/")[-1].split("_")[0]) for n in utk_age.sample_names()]
    assert [utk_age.sample_groups["age"][1][c] for c in utk_age.labels] == [age_bin(a) for a in ages]
    assert age_bin(2) == "0-2" and age_bin(3) == "3-9" and age_bin(70) == "more than 70"
    codes, names = gender.sample_groups["race_x_gender"]
    assert names[codes[0]] == "White Male" and set(gender.sample_groups["race_binary"][1]) == {"White", "non-White"}


def test_winogavil_items_images_and_limit(tmp_path):
    from clipbench.datasets.winogavil import cue_prompt

    WRITERS["winogavil"](tmp_path, 3)
    split = get_dataset("winogavil").load_split("test", tmp_path)
    assert split.kind == "associations" and len(split.cues) == 6 and len(split) == 12  # the words used
    assert [len(c) for c in split.candidates] == [5, 5, 5, 10, 10, 10] and split.gold[1].sum() == 3
    assert split.texts[:2] == ["An apple", "A sun"] and cue_prompt("Owl") == "An owl"
    sub = limit_split(split, 4, seed=0)
    assert sub.cues and all(c.max() < len(sub) for c in sub.candidates)  # items whole, images remapped
    assert split.paths[split.candidates[0][0]].endswith("word0.png")
    assert sub.fingerprint != split.fingerprint
    bad = tmp_path / "winogavil" / "winogavil_dataset.csv"
    bad.write_text(bad.read_text().replace("word1", "../x", 1))
    with pytest.raises(DataError, match="plain words"):
        get_dataset("winogavil").load_split("test", tmp_path)


def test_ucf101_scores_the_middle_frame_and_names_the_rule(tmp_path):
    WRITERS["ucf101"](tmp_path, 2)
    with relaxed_counts(["ucf101"]):
        split = get_dataset("ucf101").load_split("test", tmp_path)
    assert len(split) == 6 and split.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert split.fingerprint_inputs["source"] == {"frames": "middle", "decoder": "pyav"}
    image, label = split.torch_dataset(lambda im: np.asarray(im, dtype=np.float64).mean())[0]
    assert abs(image - 100) < 8 and label == 0  # frame 2 of 0..4 is grey level 100 (lossy codec)
    broken = tmp_path / "ucf101" / "UCF-101" / "Archery" / "v_Archery_g01_c01.avi"
    broken.write_bytes(b"not a video")
    with pytest.raises(DataError, match="cannot be decoded"):
        split.torch_dataset(lambda im: im)[4]


def test_kinetics700_reads_torchvisions_layout_in_clips_prompt_order(tmp_path):
    from clipbench.datasets.video import kinetics_folder

    WRITERS["kinetics700"](tmp_path, 2)
    adapter = get_dataset("kinetics700")
    split = adapter.load_split("test", tmp_path)
    names = [adapter.classnames[c] for c in split.labels]
    assert names == ["abseiling"] * 2 + ["passing American football (in game)"] * 2 + ["yoga"] * 2
    assert kinetics_folder("massaging person's head") == "massaging_persons_head"
    assert adapter.primary_metric == "mean_top1_top5" and split.fingerprint_inputs["source"]["frames"] == "middle"
    (tmp_path / "kinetics700" / "val" / "not_a_class").mkdir()
    with pytest.raises(DataError, match="not one of Kinetics-700's"):
        adapter.load_split("test", tmp_path)
