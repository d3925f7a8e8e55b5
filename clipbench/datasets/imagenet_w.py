"""ImageNet-W (Li et al., "A Whac-A-Mole Dilemma", CVPR 2023): ImageNet-1k's validation images with a watermark.

The watermark is the ``imagenet_w`` package's ``AddWatermark`` (PyPI ``imagenet-w``; the ``imagenet-w`` extra):
a translucent white line of Chinese text drawn on the model's input crop, its font size set by the crop size
(224 -> 36 px, else ``int(size / 6.22)``). CLIP_benchmark's ``imagenet-w`` (1.5.0 on) builds it the same way:
ImageNet val through the model's transform with ``AddWatermark(<CenterCrop size>)`` inserted just before
``Normalize``, ImageNet's classnames and CLIP's 80 templates, scored like every classification set (top-1,
top-5, mean per-class recall). Here the split carries the watermark as its ``pixel_overlay`` and
``features.pixel_overlay`` inserts it into the model's own preprocessing at that point; the crop size is the
size of the tensor it receives (the crop, square in CLIP's transforms).

Neither CLIP_benchmark 1.6.2's ``imagenet_robustness`` nor its ``vtab+`` collection lists ``imagenet-w``, and
DataComp does not score it, so no suite averages it in. The images are ``imagenet1k``'s own
(``<data-root>/imagenet1k/val/<wnid>/``, or its Hugging Face copy); the overlay's name and the package version
join the split's ``source``, so its fingerprint (and every feature-cache key) differs from ImageNet's and changes
with the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.imagenet import ImageNet1kAdapter
from clipbench.foundations.errors import DataError

PACKAGE = "imagenet-w"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError as exc:
        raise DataError("imagenet_w draws ImageNet-W's watermark with the imagenet_w package: "
                        "pip install 'clipbench[imagenet-w]' (or imagenet-w)") from exc


class ImageNetWatermark:
    """``imagenet_w.AddWatermark`` for the size of the crop it is given: float [3, H, W] in [0, 1] -> the same.

    Picklable (DataLoader workers): the fonts are loaded per process, on first use."""

    def __init__(self) -> None:
        self.version = _package_version()
        self._marks: dict = {}

    @property
    def name(self) -> str:
        return f"imagenet_w-{self.version}:AddWatermark(crop size)"

    def __call__(self, pixels):
        size = min(int(pixels.shape[-2]), int(pixels.shape[-1]))
        mark = self._marks.get(size)
        if mark is None:
            from imagenet_w import AddWatermark

            mark = self._marks[size] = AddWatermark(size)
        return mark(pixels)

    def __getstate__(self) -> dict:
        return {"version": self.version, "_marks": {}}

    def __repr__(self) -> str:
        return f"ImageNetWatermark({self.version})"


@dataclass
class ImageNetWAdapter(ImageNet1kAdapter):
    """ImageNet-1k val as ``imagenet1k`` reads it, each image watermarked inside the model's preprocessing."""

    def load_split(self, split: str, data_root: Path) -> SplitData:
        overlay = ImageNetWatermark()  # a missing package is one line before any image is listed
        return super().load_split(split, data_root).overlaid(overlay)


def imagenet_w_adapter(imagenet: ImageNet1kAdapter) -> ImageNetWAdapter:
    """ImageNet-W over ``imagenet``'s images, classes, templates and instructions."""
    return ImageNetWAdapter(
        name="imagenet_w", splits=imagenet.splits, folder=imagenet.folder, expected=imagenet.expected,
        subdirs=imagenet.subdirs, keys=imagenet.keys, classnames=list(imagenet.classnames),
        templates=list(imagenet.templates), origin=imagenet.origin, expected_count=imagenet.expected_count,
        prompts_of="imagenet1k",
        description="ImageNet-W: ImageNet-1k val with imagenet_w's watermark on the model's input crop "
                    "(needs pip install imagenet-w)",
        manual=imagenet.manual + "; ImageNet-W reads those images and draws its watermark with the imagenet_w "
                                 "package (pip install imagenet-w)")
