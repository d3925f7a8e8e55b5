"""CLIP's image preprocessing for a given input resolution, and a string that identifies it.

Bicubic resize of the shorter side to the resolution, center crop to a square, RGB, [0, 1] tensor,
normalised with the mean/std of CLIP's training images. The ``preprocess_id`` goes into feature
cache keys: two models share cached pixels-derived features only if their ids agree.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:  # torchvision loads when a transform is built: a run served from the cache never needs it
    from torchvision import transforms

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_rgb(image: Image.Image) -> Image.Image:
    """Grey, palette, CMYK and RGBA images all become 3-channel RGB (alpha is dropped, as in CLIP)."""
    return image if image.mode == "RGB" else image.convert("RGB")


@functools.cache
def clip_preprocess(resolution: int) -> transforms.Compose:
    """The torchvision transform PIL image -> float tensor [3, resolution, resolution]."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(resolution),
            to_rgb,
            transforms.ToTensor(),
            transforms.Normalize(CLIP_MEAN, CLIP_STD),
        ]
    )


def clip_preprocess_id(resolution: int) -> str:
    """Changes whenever ``clip_preprocess(resolution)`` could produce different pixels."""
    return f"clip-v1:resize{resolution}-bicubic:crop{resolution}:rgb:norm-openai"
