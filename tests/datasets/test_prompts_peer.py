"""clipbench's packaged classnames and templates against CLIP_benchmark 1.6.2's own files
(``en_classnames.json``, ``en_zeroshot_classification_templates.json``) for every dataset both have: equal, or one
of the listed deliberate differences, each still a difference and each from the CLIP paper's own prompt file where
that is the reason."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from clipbench.datasets import get_dataset

#: CLIP_benchmark's key -> clipbench's dataset (its ``caltech101_vtab`` names VTAB's class order, which clipbench's
#: folder-ordered caltech101 does not use; ``voc2007_multilabel`` and ``dummy`` have no counterpart)
SAME_SET = {"caltech101": "caltech101", "cars": "stanford_cars", "cifar10": "cifar10", "cifar100": "cifar100",
            "clevr_closest_object_distance": "clevr_distance", "clevr_count_all": "clevr_count",
            "country211": "country211", "diabetic_retinopathy": "diabetic_retinopathy", "dmlab": "dmlab",
            "dsprites_label_orientation": "dsprites_orientation", "dsprites_label_x_position": "dsprites_location",
            "dtd": "dtd", "eurosat": "eurosat", "fer2013": "fer2013", "fgvc_aircraft": "fgvc_aircraft",
            "flowers": "flowers102", "food101": "food101", "gtsrb": "gtsrb", "imagenet1k": "imagenet1k",
            "kitti_closest_vehicle_distance": "kitti_distance", "mnist": "mnist", "pcam": "pcam", "pets": "oxford_pets",
            "renderedsst2": "rendered_sst2", "resisc45": "resisc45", "smallnorb_label_azimuth": "smallnorb_azimuth",
            "smallnorb_label_elevation": "smallnorb_elevation", "stl10": "stl10", "sun397": "sun397", "svhn": "svhn",
            "voc2007": "voc2007"}
PAPER = "openai/CLIP data/prompts.md"
#: (CLIP_benchmark key, what) -> why clipbench differs; True: the CLIP paper's prompt file is the reason
DELIBERATE = {
    ("clevr_count_all", "classnames"): True, ("clevr_count_all", "templates"): True,
    ("pcam", "templates"): True, ("resisc45", "templates"): True,
    ("pets", "classnames"): True,  # the paper's lower-case names
    ("fer2013", "classnames"): False,  # torchvision's emotion ids (4 sad, 5 surprise, 6 neutral); CLIP_benchmark's
    # ImageFolder sorts the Kaggle PNG folders (4 neutral, 5 sad, 6 surprise): each right for its own layout
    ("clevr_closest_object_distance", "classnames"): False,  # CLIP_benchmark's 4th name is "" (docs/suites.md)
}


def _peer(name: str) -> dict:
    return json.loads(resources.files("clip_benchmark.datasets").joinpath(name).read_text(encoding="utf-8"))


@pytest.mark.peer
def test_packaged_prompts_match_clip_benchmarks_or_differ_on_purpose():
    peers = {"classnames": _peer("en_classnames.json"), "templates": _peer("en_zeroshot_classification_templates.json")}
    assert set(SAME_SET) == (set(peers["classnames"]) | set(peers["templates"])) - {"caltech101_vtab", "dummy",
                                                                                      "voc2007_multilabel"}
    compared = 0
    for key, name in SAME_SET.items():
        adapter = get_dataset(name)
        for what, table in peers.items():
            if key not in table:
                continue
            ours, theirs = list(getattr(adapter, what)), table[key]
            compared += 1
            if (key, what) not in DELIBERATE:
                assert ours == theirs, f"{name} {what} differ from CLIP_benchmark's {key}"
                continue
            assert ours != theirs, f"{name} {what} now equal CLIP_benchmark's {key}: drop it from DELIBERATE"
            assert len(ours) == len(theirs) or what == "templates"
            if DELIBERATE[key, what]:
                assert adapter.origin.startswith(PAPER) or PAPER in adapter.origin
    assert compared == 47  # 31 template lists, 16 classname lists
