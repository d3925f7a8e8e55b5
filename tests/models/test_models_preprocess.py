"""CLIP's preprocessing, computed with PIL and numpy, equals torchvision's Compose value for value."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clipbench.models.preprocess import CLIP_MEAN, CLIP_STD, clip_preprocess, to_rgb

#: landscape, portrait, square, exact size, smaller than the resolution (upscaled), one pixel off, extreme
SIZES = [(500, 375), (375, 500), (300, 300), (224, 224), (100, 60), (225, 224), (224, 225), (1000, 90), (33, 700)]


def torchvision_clip(resolution: int):
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BICUBIC),
                               transforms.CenterCrop(resolution), to_rgb, transforms.ToTensor(),
                               transforms.Normalize(CLIP_MEAN, CLIP_STD)])


@pytest.mark.parametrize("resolution", [32, 224, 336])
def test_equals_torchvisions_transform(resolution):
    rng = np.random.default_rng(resolution)
    ours, reference = clip_preprocess(resolution), torchvision_clip(resolution)
    for size in SIZES:
        image = Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))
        got, want = ours(image), reference(image)
        assert got.dtype == want.dtype == torch.float32 and got.shape == want.shape == (3, resolution, resolution)
        assert torch.equal(got, want), (size, resolution, float((got - want).abs().max()))


def test_grey_and_palette_images_become_rgb_after_the_crop_as_before():
    ours, reference = clip_preprocess(32), torchvision_clip(32)
    base = Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))
    for image in (base.convert("L"), base.convert("RGB").quantize(16)):
        assert torch.equal(ours(image), reference(image)), image.mode
