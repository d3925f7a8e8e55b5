"""Issue 29's datasets load from fake copies in their real layouts; a copy of the wrong size is one DataError."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.datasets import DATASETS, get_dataset, load_split
from clipbench.datasets.counts import check_counts
from clipbench.foundations.errors import DataError
from tests._fake_layouts import WRITERS, write_mirror

CLASSES = {"clevr_count": 8, "clevr_distance": 6, "kitti_distance": 4, "dsprites_location": 32,
           "dsprites_orientation": 40, "smallnorb_azimuth": 18, "smallnorb_elevation": 9, "dmlab": 6,
           "diabetic_retinopathy": 5, "svhn": 10, "resisc45": 45, "imagenet_o": 200, "objectnet": 113, "birdsnap": 500}
PUBLISHED = {"clevr_count": 15_000, "kitti_distance": 711, "svhn": 26_032, "resisc45": 6_300, "imagenet_o": 2_000,
             "objectnet": 18_574, "birdsnap": 0}


def test_every_writer_has_a_registered_adapter_and_class_count():
    assert sorted(WRITERS) == sorted(CLASSES)
    for name, n in CLASSES.items():
        adapter = get_dataset(name)
        assert len(adapter.classnames) == n and adapter.primary_metric == "top1" and adapter.origin
    for name, n in PUBLISHED.items():
        assert get_dataset(name).expected_count == n


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """One data root with every writer's fake copy (1 image per class), written once for the module."""
    root = tmp_path_factory.mktemp("fake-layouts")
    return root, {name: write(root, 1) for name, write in WRITERS.items()}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_adapter_reads_its_fake_layout(fakes, name):
    tmp_path, counts = fakes
    n = counts[name]
    adapter = get_dataset(name)
    assert adapter.is_present(tmp_path)
    split = load_split(adapter, adapter.evaluation_split, tmp_path)
    assert len(split) == n
    assert sorted(set(split.labels.tolist())) == list(range(len(adapter.classnames)))
    image, label = split.torch_dataset(lambda im: np.asarray(im).shape)[0]
    assert len(image) == 3 and image[2] == 3 and label == split.labels[0]
    if adapter.expected_count:  # the fake is not the published copy
        with pytest.raises(DataError, match=f"expected {adapter.expected_count:,}"):
            check_counts([adapter], tmp_path)


def test_mirror_shards_are_read_in_numeric_order(tmp_path):
    write_mirror(tmp_path / "kitti_distance", ["a", "b", "c", "d"], 6, per_shard=2)  # 0.tar .. 11.tar
    split = load_split(get_dataset("kitti_distance"), "test", tmp_path)
    assert split.labels.tolist() == [c for c in range(4) for _ in range(6)]


def test_wrong_objectnet_copy_is_one_clear_line(fakes):
    with pytest.raises(DataError) as info:
        check_counts([get_dataset("objectnet")], fakes[0])
    message = str(info.value)
    assert "\n" not in message and "113 samples" in message and "expected 18,574" in message
    assert "--allow-count-mismatch" in message and "ImageNet-mapped" in message


def test_mirror_label_outside_the_classes_and_missing_copy_are_data_errors(tmp_path):
    write_mirror(tmp_path / "dmlab", [str(i) for i in range(9)], 1)  # labels up to 8, dmlab has 6 classes
    with pytest.raises(DataError, match="outside 0..5"):
        load_split(get_dataset("dmlab"), "test", tmp_path)
    with pytest.raises(DataError, match="clip-benchmark/wds_vtab-smallnorb_label_azimuth --local-dir "):
        get_dataset("smallnorb_azimuth").load_split("test", tmp_path)


def test_datacomp_and_clip_benchmark_spellings_resolve():
    pairs = {"vtab/clevr_count_all": "clevr_count", "vtab/kitti_closest_vehicle_distance": "kitti_distance",
             "wds/vtab/svhn": "svhn", "vtab/pets": "oxford_pets", "vtab/flowers": "flowers102",
             "imagenetv2": "imagenet_v2", "imagenet-o": "imagenet_o", "renderedsst2": "rendered_sst2",
             "retrieval/mscoco_2014_5k_test_image_text_retrieval": "mscoco_captions", "cars": "stanford_cars",
             "vtab/dsprites_label_orientation": "dsprites_orientation", "vtab/resisc45": "resisc45"}
    for spelling, name in pairs.items():
        assert DATASETS.canonical(spelling) == name


def test_sun397_copy_of_another_size_is_one_line_naming_the_whole_set(tmp_path):
    from tests._datasets_fixtures import write_image

    base = tmp_path / "sun397" / "SUN397"
    for c, name in enumerate(("abbey", "airport_terminal")):
        for i in range(5):
            write_image(base / name[0] / name / f"sun_{c}{i:03d}.jpg", c * 10 + i)
    (base / "ClassName.txt").write_text("/a/abbey\n/a/airport_terminal\n")
    with pytest.raises(DataError) as info:
        check_counts([get_dataset("sun397")], tmp_path)
    assert "sun397 (whole set): 10 samples" in str(info.value) and "expected 108,754" in str(info.value)


def test_svhn_download_verifies_the_mat_files_and_loads(tmp_path):
    import dataclasses
    import hashlib

    from clipbench.datasets import Archive, download_dataset
    from tests._datasets_fixtures import serve

    WRITERS["svhn"](tmp_path / "made", 2)
    served = tmp_path / "made" / "svhn"
    md5 = hashlib.md5((served / "test_32x32.mat").read_bytes(), usedforsecurity=False).hexdigest()
    with serve(served) as base:
        adapter = dataclasses.replace(get_dataset("svhn"), downloads=(Archive(f"{base}/test_32x32.mat", md5,
                                                                                  extract=False),))
        download_dataset(adapter, tmp_path / "data")
    split = load_split(adapter, "test", tmp_path / "data")
    assert split.labels.tolist() == [d for d in range(10) for _ in range(2)]
    assert [a.filename for a in get_dataset("svhn").downloads] == ["train_32x32.mat", "test_32x32.mat"]


def test_birdsnap_train_is_what_the_test_list_leaves_out(fakes):
    train = load_split(get_dataset("birdsnap"), "train", fakes[0])
    assert len(train) == 1 and train.labels.tolist() == [0]


def test_imagenet_copies_of_another_size_stop_with_one_line(tmp_path):
    from clipbench.datasets.imagenet import imagenet_wnids
    from tests._datasets_fixtures import class_tree

    expected = {"imagenet1k": 50_000, "imagenet1k_7t": 50_000, "imagenet_v2": 10_000, "imagenet_sketch": 50_889,
                "imagenet_a": 7_500, "imagenet_r": 30_000}
    assert {name: get_dataset(name).expected_count for name in expected} == expected
    class_tree(tmp_path / "imagenet1k" / "val", {imagenet_wnids()[0]: 2}, ext=".JPEG")
    with pytest.raises(DataError, match=r"imagenet1k val: 2 samples under .*, expected 50,000"):
        check_counts([get_dataset("imagenet1k")], tmp_path)


def test_cifar10_copy_of_another_size_stops_with_one_line(tmp_path):
    from tests._datasets_fixtures import cifar10_tree

    cifar10_tree(tmp_path / "cifar10")  # the official batch files with 6 test images
    with pytest.raises(DataError, match=r"cifar10 test: 6 samples under .*, expected 10,000"):
        check_counts([get_dataset("cifar10")], tmp_path)
    assert get_dataset("dtd").expected_count == 1_880 and get_dataset("pcam").expected_count == 32_768
