"""CLIP's image preprocessing for a given input resolution, and a string that identifies it.

Bicubic resize of the shorter side to the resolution, center crop to a square, RGB, [0, 1] tensor,
normalised with the mean/std of CLIP's training images. The ``preprocess_id`` goes into feature
cache keys: two models share cached pixels-derived features only if their ids agree.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from clipbench.foundations.images import to_rgb

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_resize_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """(width, height) after CLIP's shorter-side resize: torchvision's size rule for ``Resize(int)``."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(resolution * long / short)
    return (resolution, new_long) if width <= height else (new_long, resolution)


class ClipPreprocess:
    """PIL image -> float32 tensor [3, r, r]: CLIP's transform, ``Compose([Resize(r, BICUBIC), CenterCrop(r),
    to_rgb, ToTensor(), Normalize(CLIP_MEAN, CLIP_STD)])``, computed as torchvision computes it on a PIL
    image (PIL's own bicubic resize and crop, then the same float32 operations in numpy), value for value;
    ``tests/models/test_models_preprocess.py`` holds it equal to torchvision's. Importing torchvision for it cost a
    cold run 1.5-2.5 s (``torchvision.ops`` pulls in ``torch._dynamo``)."""

    def __init__(self, resolution: int) -> None:
        self.resolution = int(resolution)
        self._mean = np.asarray(CLIP_MEAN, dtype=np.float32)
        self._std = np.asarray(CLIP_STD, dtype=np.float32)

    def __call__(self, image: Image.Image):
        import torch

        r = self.resolution
        size = clip_resize_size(*image.size, r)
        if size != image.size:
            image = image.resize(size, Image.BICUBIC)
        width, height = image.size
        top, left = int(round((height - r) / 2.0)), int(round((width - r) / 2.0))
        image = to_rgb(image.crop((left, top, left + r, top + r)))
        pixels = np.asarray(image, dtype=np.uint8).astype(np.float32) / np.float32(255)
        pixels = (pixels - self._mean) / self._std
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))

    @property
    def transforms(self) -> list:
        """The steps as torchvision transforms, the list OpenAI's ``Compose.transforms`` holds (scripts read it,
        e.g. ``transforms[0].size`` or ``transforms[-1].mean``); ``Compose(transforms)`` gives these pixels.
        A new list each time (change the steps by composing your own); imports torchvision on first use."""
        from torchvision import transforms as tv

        r = self.resolution
        return [tv.Resize(r, interpolation=tv.InterpolationMode.BICUBIC), tv.CenterCrop(r), to_rgb, tv.ToTensor(),
                tv.Normalize(CLIP_MEAN, CLIP_STD)]

    def __repr__(self) -> str:
        return f"ClipPreprocess({self.resolution})"


@functools.cache
def clip_preprocess(resolution: int) -> ClipPreprocess:
    """CLIP's transform PIL image -> float tensor [3, resolution, resolution] (imports neither torchvision
    nor, until called, torch)."""
    return ClipPreprocess(resolution)


def clip_preprocess_id(resolution: int) -> str:
    """Changes whenever ``clip_preprocess(resolution)`` could produce different pixels."""
    return f"clip-v1:resize{resolution}-bicubic:crop{resolution}:rgb:norm-openai"
