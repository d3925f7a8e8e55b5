"""Other tools' spellings of clipbench's datasets, so their task lists resolve here too.

DataComp's ``tasklist.yml`` keys (``vtab/pets``, ``imagenetv2``, ``renderedsst2``,
``retrieval/mscoco_2014_5k_test_image_text_retrieval``, ...) and CLIP_benchmark's dataset names
(``vtab/flowers``, ``wds/vtab/pcam``, ...). Spellings that differ only in case, ``/``, ``-`` or ``_``
resolve already (``imagenet-a`` is ``imagenet_a``); the ones here differ in more.
The VTAB sets and ImageNet variants added with them carry their own (``datasets.vtab``,
``datasets.imagenet_variants``).
"""

from __future__ import annotations


def _both(*names: str) -> tuple[str, ...]:
    """A CLIP_benchmark name and its ``wds/`` (webdataset copy) form."""
    return tuple(n for name in names for n in (name, f"wds/{name}"))


#: clipbench name -> other spellings
OTHER_SPELLINGS: dict[str, tuple[str, ...]] = {
    "caltech101": _both("vtab/caltech101"),
    "cifar10": _both("vtab/cifar10"),
    "cifar100": _both("vtab/cifar100"),
    "dtd": _both("vtab/dtd"),
    "eurosat": _both("vtab/eurosat"),
    "flowers102": _both("vtab/flowers"),
    "oxford_pets": _both("vtab/pets"),
    "pcam": _both("vtab/pcam"),
    "sun397": ("vtab/sun397", "wds/sun397"),
    "imagenet_v2": ("imagenetv2", "wds/imagenetv2"),
    "imagenet_sketch": ("wds/imagenet_sketch",),
    "imagenet_a": ("wds/imagenet-a",),
    "imagenet_r": ("wds/imagenet-r",),
    "imagenet1k": ("wds/imagenet1k",),
    "rendered_sst2": ("renderedsst2", "wds/renderedsst2"),
    "stanford_cars": ("wds/cars",),
    "fgvc_aircraft": ("wds/fgvc_aircraft",),
    "food101": ("wds/food101",),
    "stl10": ("wds/stl10",),
    "gtsrb": ("wds/gtsrb",),
    "country211": ("wds/country211",),
    "mnist": ("wds/mnist",),
    "fer2013": ("wds/fer2013",),
    "flickr30k": ("retrieval/flickr30k", "wds/flickr30k"),
    "mscoco_captions": ("retrieval/mscoco_2014_5k_test_image_text_retrieval", "wds/mscoco_captions"),
    # the other half of issue 29 registers these; DataComp's keys
    "voc2007": ("wds/voc2007",),
    "winogavil": ("misc/winogavil",),
    "iwildcam": ("wilds/iwildcam",),
    "camelyon17": ("wilds/camelyon17",),
    "fmow": ("wilds/fmow",),
    "dollar_street": ("fairness/dollar_street",),
    "geode": ("fairness/geode",),
    "fairface": ("fairness/fairface",),
    "utkface": ("fairness/utkface",),
    # issue 30: CLIP_benchmark's multilingual_mscoco_captions reads XTD10's files (datasets.multilingual)
    "xtd10": ("multilingual_mscoco_captions", "multilingual_mscoco"),
}
