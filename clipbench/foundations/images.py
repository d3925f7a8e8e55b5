"""The one RGB conversion every image path shares (models' preprocessing, backends, datasets' decoders).

CLIP was trained on 3-channel RGB: grey, palette, CMYK and RGBA images are converted (alpha is dropped,
as in CLIP), and an RGB image is passed through as it is, without a copy.
"""

from __future__ import annotations

from PIL import Image


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 3-channel RGB (itself when it already is)."""
    return image if image.mode == "RGB" else image.convert("RGB")
