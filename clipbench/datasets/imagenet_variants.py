"""ImageNet's distribution shifts clipbench lacked: ImageNet-O and ObjectNet (DataComp's and CLIP_benchmark's
``imagenet-o`` and ``objectnet``), from their releases or CLIP_benchmark's webdataset copies.

- ImageNet-O (hendrycks/natural-adv-examples, ``imagenet-o.tar``): 2,000 images in 200 wnid folders;
  label i is the i-th of the sorted wnids, classnames CLIP's ImageNet names for them (``imagenet_o.yaml``).
- ObjectNet 1.0 (objectnet.dev, ``objectnet-1.0.zip``): the 113 of its 313 classes that map to ImageNet-1k,
  18,574 images (the subset DataComp and CLIP_benchmark score); label i is the i-th of the sorted class
  folders (``objectnet.yaml`` ``folders``), images under ``objectnet-1.0/images/<folder>/``; the other
  200 folders are ignored. A copy with another count (the full 50,000, a partial unzip) is one DataError
  before any model loads (``datasets.counts``).
"""

from __future__ import annotations

from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.imagenet import imagenet_classes, imagenet_wnids, read_class_folders
from clipbench.datasets.images import FileSplit, images_in
from clipbench.datasets.mirror import CB_MIRROR, MirrorAdapter
from clipbench.datasets.prompts import packaged_prompts
from clipbench.foundations.errors import DataError


def _imagenet_o_native(adapter: MirrorAdapter, split: str, root: Path) -> SplitData:
    wnids = packaged_prompts("imagenet_o", require_classnames=False).raw["wnids"]
    return read_class_folders(adapter.name, split, root / "imagenet-o", {w: i for i, w in enumerate(wnids)})


def _objectnet_native(adapter: MirrorAdapter, split: str, root: Path) -> SplitData:
    base = root / "objectnet-1.0" / "images"
    folders = packaged_prompts("objectnet").raw["folders"]
    missing = [f for f in folders if not (base / f).is_dir()]
    if missing:
        raise DataError(f"{adapter.name}: {base} lacks {len(missing)} of the 113 ImageNet-mapped class folders "
                        f"(e.g. {missing[0]}); unzip the whole objectnet-1.0.zip")
    paths, labels = [], []
    for label, folder in enumerate(folders):
        files = images_in(base / folder)
        paths += files
        labels += [label] * len(files)
    return FileSplit(adapter.name, split, paths, labels, root=root)


def imagenet_variant_adapters() -> list[MirrorAdapter]:
    imagenet = packaged_prompts("imagenet1k")
    names = dict(zip(imagenet_wnids(), imagenet.classnames, strict=True))
    o_prompts = packaged_prompts("imagenet_o", require_classnames=False)
    objectnet = packaged_prompts("objectnet")
    return [
        MirrorAdapter(
            name="imagenet_o", splits=("test",), folder="imagenet_o", expected="imagenet-o",
            classnames=[names[w] for w in o_prompts.raw["wnids"]], templates=list(imagenet.templates),
            prompts_of="imagenet1k", prompt_classes=imagenet_classes(o_prompts.raw["wnids"]),
            origin=o_prompts.origin, mirror=CB_MIRROR.format("imagenet-o"), native=_imagenet_o_native,
            expected_count=2_000, count_note="ImageNet-O's 2,000 images",
            manual="extract imagenet-o.tar (github.com/hendrycks/natural-adv-examples) into <data-root>/imagenet_o/ "
                   "so that imagenet-o/<wnid>/ exist, or download CLIP_benchmark's webdataset copy: `huggingface-cli "
                   "download --repo-type dataset clip-benchmark/wds_imagenet-o --local-dir <data-root>/imagenet_o`"),
        MirrorAdapter(
            name="objectnet", splits=("test",), folder="objectnet", expected="objectnet-1.0/images",
            classnames=list(objectnet.classnames), templates=list(objectnet.templates), origin=objectnet.origin,
            mirror=CB_MIRROR.format("objectnet"), native=_objectnet_native,
            expected_count=18_574, count_note="the 113 ImageNet-mapped classes of ObjectNet 1.0",
            manual="download objectnet-1.0.zip from objectnet.dev (licence: a test set only; its password is on the "
                   "download page) and unzip it into <data-root>/objectnet/ so that objectnet-1.0/images/<class>/ "
                   "exist, or download CLIP_benchmark's webdataset copy: `huggingface-cli download --repo-type "
                   "dataset clip-benchmark/wds_objectnet --local-dir <data-root>/objectnet`"),
    ]


#: DataComp's / CLIP_benchmark's spellings
IMAGENET_VARIANT_ALIASES = {"imagenet_o": ("imagenet-o", "wds/imagenet-o"), "objectnet": ("wds/objectnet",)}
