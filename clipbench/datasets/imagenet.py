"""ImageNet-1k (ILSVRC2012 val) and its distribution-shift test sets, from the folder layouts they ship in.

Label i is the i-th wnid of the 1000 ILSVRC2012 synsets in sorted order (``imagenet1k.yaml``);
classnames are CLIP's 1000 curated names, templates CLIP's 80 (``imagenet1k``) or the notebook's
7-template subset (``imagenet1k_7t``, same images, same split fingerprint, so features are shared).
ImageNet-A and ImageNet-R cover 200 of the 1000 classes: their labels are 0..199 in the order of
their sorted wnids, their classnames CLIP's names for those wnids (and, in another language, that language's
ImageNet names for them: ``prompt_classes``, ``datasets.languages``).

Their published sizes (ILSVRC2012 val 50,000; ImageNetV2 matched-frequency 10,000; ImageNet-Sketch 50,889;
ImageNet-A 7,500; ImageNet-R 30,000, as DataComp's tasklist.yml lists them) are checked before any model
loads (``datasets.counts``). None of these can be downloaded automatically (ImageNet needs a licence; the others publish no
checksum we could verify), so the adapters say what to place where.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.images import FileSplit, images_in, list_class_folders
from clipbench.datasets.local import LocalAdapter
from clipbench.datasets.prompts import packaged_prompts
from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)


@functools.cache
def imagenet_wnids() -> tuple[str, ...]:
    return tuple(packaged_prompts("imagenet1k").raw["wnids"])


def imagenet_classes(wnids) -> tuple[int, ...]:
    """ImageNet-1k's label of each wnid (a subset's classes among ImageNet's, for its translated classnames)."""
    index = {w: i for i, w in enumerate(imagenet_wnids())}
    return tuple(index[w] for w in wnids)


def _subset_wnids(name: str) -> tuple[str, ...]:
    return tuple(packaged_prompts(name, require_classnames=False).raw["wnids"])


def read_class_folders(dataset: str, split: str, root: Path, class_index: dict[str, int]) -> FileSplit:
    """Images in ``root/<class-key>/`` with labels from ``class_index``; unknown folders are an error."""
    folders = list_class_folders(root, dataset)
    unknown = [f.name for f in folders if f.name not in class_index]
    if unknown:
        raise DataError(
            f"{dataset}: {root / unknown[0]} is not a known class folder (expected folders named like "
            f"{next(iter(class_index))}; {len(unknown)} unknown)"
        )
    if len(folders) < len(class_index):
        log.warning("%s: %s has %d of %d class folders", dataset, root, len(folders), len(class_index))
    paths, labels = [], []
    for folder in sorted(folders, key=lambda f: class_index[f.name]):
        files = images_in(folder)
        paths += files
        labels += [class_index[folder.name]] * len(files)
    if not paths:
        raise DataError(f"{dataset}: no images under {root} (expected image files in its class folders)")
    return FileSplit(dataset, split, paths, labels, root=root)


@dataclass
class ImageFolderVariantAdapter(LocalAdapter):
    """One split in class folders under ``<data-root>/<folder>/<one of subdirs>/``.

    ``keys`` are the folder names in label order (wnids, or "0".."999" for ImageNetV2).
    ``data_name`` names the images (split fingerprints) when it differs from the adapter name.
    """

    subdirs: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    data_name: str = ""
    #: published size of the split (``datasets.counts``: checked before any model loads)
    expected_count: int = 0

    def _split_root(self, data_root: Path) -> Path | None:
        base = self.root(data_root)
        for sub in self.subdirs:
            if (base / sub).is_dir():
                return base / sub
        return None

    def is_present(self, data_root: Path) -> bool:
        try:
            return self._split_root(data_root) is not None
        except OSError:
            return False

    def require(self, data_root: Path) -> Path:
        super().require(data_root)  # data root exists; ``expected`` is only used in its message
        return self._split_root(data_root)

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        root = self.require(data_root)
        index = {key: i for i, key in enumerate(self.keys)}
        return read_class_folders(self.data_name or self.name, split, root, index)


@dataclass
class ImageNet1kAdapter(ImageFolderVariantAdapter):
    """ILSVRC2012 val: synset folders (``val/n01440764/...``, also torchvision's ImageNet layout) or a
    Hugging Face ``datasets`` copy saved with ``save_to_disk`` in ``hf/`` (its ``validation`` split)."""

    def _hf_root(self, data_root: Path) -> Path | None:
        hf = self.root(data_root) / "hf"
        return hf if hf.is_dir() else None

    def is_present(self, data_root: Path) -> bool:
        return super().is_present(data_root) or self._hf_root(data_root) is not None

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        super(ImageFolderVariantAdapter, self).require(data_root)
        if self._split_root(data_root) is None and (hf := self._hf_root(data_root)) is not None:
            from clipbench.datasets.hf import HFAdapter

            adapter = HFAdapter.from_spec(str(hf), name=self.data_name or self.name)
            if len(adapter.classnames) != len(self.classnames):
                raise DataError(f"{self.name}: {hf} has {len(adapter.classnames)} classes, expected {len(self.classnames)}")
            return adapter.load_split(split, data_root)
        return super().load_split(split, data_root)


_IMAGENET_MANUAL = (
    "ImageNet needs a licence, so it cannot be downloaded for you: get ILSVRC2012_img_val.tar from image-net.org, "
    "put the 50,000 images into one folder per synset as <data-root>/imagenet1k/val/n01440764/*.JPEG (torchvision's "
    "ImageNet val layout), or save a Hugging Face copy with save_to_disk to <data-root>/imagenet1k/hf"
)


def imagenet_adapters() -> list[LocalAdapter]:
    prompts = packaged_prompts("imagenet1k")
    wnids = imagenet_wnids()
    names = dict(zip(wnids, prompts.classnames, strict=True))
    common = dict(classnames=list(prompts.classnames), templates=list(prompts.templates), origin=prompts.origin)
    adapters: list[LocalAdapter] = [
        ImageNet1kAdapter(name="imagenet1k", splits=("val",), folder="imagenet1k", expected="val",
                          subdirs=("val",), keys=wnids, manual=_IMAGENET_MANUAL, expected_count=50_000, **common),
        ImageNet1kAdapter(name="imagenet1k_7t", splits=("val",), folder="imagenet1k", expected="val",
                          subdirs=("val",), keys=wnids, manual=_IMAGENET_MANUAL, data_name="imagenet1k", expected_count=50_000,
                          description="imagenet1k with the CLIP notebook's 7-template subset",
                          **{**common, "templates": list(prompts.template_sets["simple"])}),
        ImageFolderVariantAdapter(
            name="imagenet_v2", splits=("test",), folder="imagenet_v2",
            expected="imagenetv2-matched-frequency-format-val",
            subdirs=("imagenetv2-matched-frequency-format-val",), keys=tuple(str(i) for i in range(1000)),
            expected_count=10_000,
            manual="extract imagenetv2-matched-frequency.tar.gz (github.com/modestyachts/ImageNetV2) into "
                   "<data-root>/imagenet_v2/ so that imagenetv2-matched-frequency-format-val/0/ ... /999/ exist",
            prompts_of="imagenet1k", **common),
        ImageFolderVariantAdapter(
            name="imagenet_sketch", splits=("test",), folder="imagenet_sketch", expected="sketch",
            subdirs=("sketch",), keys=wnids, expected_count=50_889,
            manual="extract ImageNet-Sketch (github.com/HaohanWang/ImageNet-Sketch) into <data-root>/imagenet_sketch/ "
                   "so that sketch/n01440764/ ... exist", prompts_of="imagenet1k", **common),
    ]
    for short, sub, repo, n in (("a", "imagenet-a", "hendrycks/natural-adv-examples", 7_500),
                                ("r", "imagenet-r", "hendrycks/imagenet-r", 30_000)):
        name = f"imagenet_{short}"
        sub_wnids = _subset_wnids(name)
        adapters.append(ImageFolderVariantAdapter(
            name=name, splits=("test",), folder=name, expected=sub, subdirs=(sub,), keys=sub_wnids,
            classnames=[names[w] for w in sub_wnids], templates=list(prompts.templates),
            prompts_of="imagenet1k", prompt_classes=imagenet_classes(sub_wnids),
            origin=packaged_prompts(name, require_classnames=False).origin, expected_count=n,
            manual=f"extract {sub}.tar (github.com/{repo}) into <data-root>/{name}/ so that {sub}/<wnid>/ exist",
        ))
    return adapters
