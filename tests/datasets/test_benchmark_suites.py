"""The clip_paper, datacomp, vtab and robustness suites name registered datasets (or the agreed names of the
other half of issue 29), with DataComp's task per dataset; a dataset may name its own tasks."""

from __future__ import annotations

import pytest

from clipbench.datasets import DATASETS
from clipbench.foundations.errors import ClipbenchError
from clipbench.suites import load_suite

#: the datasets the metrics half of issue 29 registers (agreed names)
OTHER_HALF = {"voc2007", "hateful_memes", "iwildcam", "camelyon17", "fmow", "dollar_street", "geode", "fairface",
              "utkface", "winogavil", "kinetics700", "ucf101"}
#: DataComp's tasklist.yml keys (github.com/mlfoundations/datacomp), in its order
DATACOMP_KEYS = ["vtab/caltech101", "cifar10", "vtab/cifar100", "vtab/clevr_count_all",
                 "vtab/clevr_closest_object_distance", "country211", "vtab/dtd", "vtab/eurosat", "fgvc_aircraft",
                 "food101", "gtsrb", "imagenet1k", "imagenet_sketch", "imagenetv2", "imagenet-a", "imagenet-o",
                 "imagenet-r", "vtab/kitti_closest_vehicle_distance", "mnist", "objectnet", "vtab/flowers",
                 "vtab/pets", "voc2007", "vtab/pcam", "renderedsst2", "vtab/resisc45", "cars", "stl10", "sun397",
                 "vtab/svhn", "retrieval/flickr30k", "retrieval/mscoco_2014_5k_test_image_text_retrieval",
                 "misc/winogavil", "wilds/iwildcam", "wilds/camelyon17", "wilds/fmow", "fairness/dollar_street",
                 "fairness/geode", "fairness/fairface", "fairness/utkface"]


@pytest.mark.parametrize("name, size", [("clip_paper", 27), ("datacomp", 40), ("vtab", 19), ("robustness", 7)])
def test_suite_datasets_exist_once_merged(name, size):
    suite = load_suite(name, check_dataset=None)
    assert len(suite.datasets) == size == len(set(suite.datasets))
    unknown = [d for d in suite.datasets if d not in DATASETS and d not in OTHER_HALF]
    assert not unknown


def test_datacomp_suite_is_tasklist_yml_under_our_names():
    suite = load_suite("datacomp", check_dataset=None)
    ours = [DATASETS.canonical(k) if k in DATASETS else k.split("/")[-1] for k in DATACOMP_KEYS]
    assert list(suite.datasets) == ours
    assert suite.tasks_for("flickr30k") == suite.tasks_for("mscoco_captions") == ("zeroshot_retrieval",)
    assert suite.tasks_for("cifar10") == ("zeroshot",) and suite.tasks_for("winogavil") != ("zeroshot",)


def test_dataset_entries_with_their_own_tasks(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("version: 1\ndatasets: [digits, {shapes: [zeroshot_retrieval]}]\ntasks: [zeroshot]\n")
    suite = load_suite(path, check_dataset=None)
    assert suite.datasets == ("digits", "shapes") and suite.tasks == ("zeroshot", "zeroshot_retrieval")
    assert suite.tasks_for("digits") == ("zeroshot",) and suite.tasks_for("shapes") == ("zeroshot_retrieval",)
    for bad, message in (("{shapes: zeroshot}", "{name: [task, ...]}"), ("{shapes: [zeroshoot]}", "did you mean")):
        path.write_text(f"version: 1\ndatasets: [digits, {bad}]\ntasks: [zeroshot]\n")
        with pytest.raises(ClipbenchError, match=message.replace("[", r"\[").replace("{", r"\{")):
            load_suite(path, check_dataset=None)


def test_task_narrowing_keeps_each_datasets_own_tasks():
    from clipbench.engine.plan import select_tasks

    datacomp = load_suite("datacomp", check_dataset=None)
    narrowed = select_tasks(datacomp, "zeroshot_retrieval", None)
    assert narrowed.tasks_for("flickr30k") == ("zeroshot_retrieval",) and narrowed.tasks_for("cifar10") == ()
    assert select_tasks(datacomp, "zeroshot", None).tasks_for("mscoco_captions") == ()
