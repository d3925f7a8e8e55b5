"""How pixels reach the image encoder: CLIP's PIL transform (the reference), or decode and resize on the GPU.

``--decode pil`` (the default) is CLIP's own preprocessing, run per image in the DataLoader workers:
PIL decodes, PIL's bicubic resize, centre crop, normalise.

``--decode gpu`` (opt-in, CUDA only) moves the two costly steps onto the device, where a GPU run's
workers would otherwise have to do them at thousands of images/s:

* JPEG files reach the main process as their encoded bytes and are decoded in batches by nvjpeg
  (``torchvision.io.decode_jpeg(..., device="cuda")``); other formats, and images an adapter
  produces itself (arrays, crops, Hugging Face rows), are decoded by PIL in the workers as before;
* the resize reproduces PIL's: an antialiased bicubic (PIL's a = -0.5 kernel, which torch's
  antialias path uses) done as PIL does it, one axis at a time with the result rounded to 8 bits
  after each pass, in Pillow's order (horizontal first, except that Pillow 13 reduces an image
  more than twice as tall as wide vertically first; ``tests/features/test_decode_gpu.py`` checks the order
  against the installed Pillow); then CLIP's centre crop and normalisation.

On the CPU this resize differs from PIL in about 1 pixel value in 10,000, by 1 level
(``benchmarks/decode.py``); nvjpeg's IDCT and chroma upsampling can differ from libjpeg-turbo's,
which only a GPU run measures. The preprocess id names the decoder, so these features never share
a cache entry with the reference's, and the record says which path made them.

Test hook: ``CLIPBENCH_TEST_DECODE_ON_CPU=1`` lets ``--decode gpu`` run its pipeline on a CPU model
(decoding with libjpeg-turbo through torchvision.io), so the engine path is tested without a GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from clipbench.datasets.images import check_encoded, decode_error
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.images import to_rgb
from clipbench.models.preprocess import CLIP_MEAN, CLIP_STD, clip_preprocess_id, clip_resize_size

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from clipbench.datasets.base import SplitData
    from clipbench.models.base import ImageTextModel

log = logging.getLogger(__name__)

DECODES = ("pil", "gpu")
ENV_DECODE_ON_CPU = "CLIPBENCH_TEST_DECODE_ON_CPU"
JPEG_MAGIC = b"\xff\xd8\xff"


class DecodeSample(NamedTuple):
    """One image on its way to the device: encoded JPEG bytes (``kind`` "jpeg") or decoded RGB
    pixels (``kind`` "pixels", uint8 [3, H, W]); ``where`` names it in errors."""

    kind: str
    data: torch.Tensor
    where: str


class PilPipeline:
    """The reference: the model's own transform in the workers, batches stacked by torch's collate."""

    name = "pil"

    def __init__(self, model: ImageTextModel) -> None:
        self.model = model
        self.preprocess_id: str = model.preprocess_id
        self.collate_fn = None

    @property
    def transform(self) -> Callable:
        """The model's transform, asked for only when images are read (a cached run never builds it)."""
        return self.model.preprocess

    def transform_for(self, split: SplitData) -> Callable:
        """``transform``, with the split's ``pixel_overlay`` (ImageNet-W's watermark) inside it where it has one."""
        overlay = split.pixel_overlay
        return self.transform if overlay is None else overlaid_transform(self.transform, overlay, split.dataset_name)

    def to_device(self, batch: torch.Tensor, device: torch.device) -> torch.Tensor:
        return batch.to(device, non_blocking=True)


class GpuPipeline:
    """Decode (nvjpeg) and CLIP's resize, crop and normalisation on ``device``, a batch at a time.

    ``transform`` is what the dataset calls: with a PIL image it hands over the pixels; datasets that
    read encoded files call its ``from_encoded`` instead, so a JPEG travels as its bytes.
    """

    name = "gpu"

    def __init__(self, resolution: int, device_type: str) -> None:
        self.resolution = int(resolution)
        self.device_type = device_type
        self.decoder = "nvjpeg" if device_type == "cuda" else "libjpeg-turbo"
        self.preprocess_id = (f"{clip_preprocess_id(self.resolution)}:decode-{self.decoder}"
                              f":resize-torch-twopass-{device_type}")
        self.transform = _SampleTransform()
        self.collate_fn = collate_samples
        self._fallbacks = 0

    def transform_for(self, split: SplitData) -> Callable:
        if split.pixel_overlay is not None:
            raise ClipbenchError(f"{split.dataset_name}: --decode gpu cannot draw its pixel overlay "
                                 f"({split.pixel_overlay.name}) inside the preprocessing; use --decode pil")
        return self.transform

    def to_device(self, batch: tuple[Sequence[DecodeSample], Any], device: torch.device) -> torch.Tensor:
        """[B, 3, r, r] float32 CLIP-normalised pixels on ``device``, in the batch's order."""
        import torch

        images = self._decoded(batch, device)
        mean = torch.tensor(CLIP_MEAN, device=device).view(3, 1, 1)
        std = torch.tensor(CLIP_STD, device=device).view(3, 1, 1)
        out = torch.empty((len(images), 3, self.resolution, self.resolution), device=device)
        for i, image in enumerate(images):
            out[i] = (clip_resize_crop(image, self.resolution) / 255.0 - mean) / std
        return out

    def _decoded(self, samples: Sequence[DecodeSample], device: torch.device) -> list[torch.Tensor]:
        """uint8 [3, H, W] images on ``device``: JPEG bytes decoded together, pixels copied over."""
        from torchvision.io import ImageReadMode, decode_jpeg

        out: list[torch.Tensor | None] = [s.data.to(device, non_blocking=True) if s.kind == "pixels" else None
                                          for s in samples]
        jpegs = [i for i, s in enumerate(samples) if s.kind == "jpeg"]
        if jpegs:
            try:
                decoded = decode_jpeg([samples[i].data for i in jpegs], mode=ImageReadMode.RGB, device=device)
            except RuntimeError:  # one file the device decoder refuses: find it, decode it on the CPU
                decoded = [self._decode_one(samples[i], device) for i in jpegs]
            for i, image in zip(jpegs, decoded, strict=True):
                out[i] = image
        return out  # type: ignore[return-value]

    def _decode_one(self, sample: DecodeSample, device: torch.device) -> torch.Tensor:
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            return decode_jpeg(sample.data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            pass
        try:  # libjpeg-turbo, the decoder PIL uses: the same pixels the reference path would get
            image = decode_jpeg(sample.data, mode=ImageReadMode.RGB)
        except RuntimeError as exc:
            raise decode_error(exc, sample.where) from exc
        self._fallbacks += 1
        if self._fallbacks == 1:
            log.warning("%s: the %s decoder refused this JPEG, decoded on the CPU by libjpeg-turbo instead "
                        "(further ones are not reported)", sample.where, self.decoder)
        return image.to(device)


class _SampleTransform:
    """The per-sample step in the workers (picklable): no resize, no float conversion."""

    def __call__(self, image: Image.Image, where: str = "") -> DecodeSample:
        from torchvision.transforms.v2.functional import pil_to_tensor

        return DecodeSample("pixels", pil_to_tensor(to_rgb(image)), where)

    def from_encoded(self, data: bytes, where: str, decode: Callable[[], Image.Image]) -> DecodeSample:
        """A JPEG stays encoded for the device (after PIL's header checks: the decompression-bomb limit
        applies to it as to the reference path); anything else is decoded here by ``decode()`` (PIL)."""
        import torch

        if data[:3] == JPEG_MAGIC:
            check_encoded(data, where)
            return DecodeSample("jpeg", torch.frombuffer(bytearray(data), dtype=torch.uint8), where)
        return self(decode(), where)


def collate_samples(batch: list[tuple[DecodeSample, int]]) -> tuple[list[DecodeSample], Any]:
    """DataLoader collate: images stay a list (their sizes differ), labels become one tensor."""
    import torch

    return [sample for sample, _ in batch], torch.as_tensor(np.asarray([label for _, label in batch], dtype=np.int64))


def clip_resize_crop(image: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 [3, H, W] -> float [3, r, r] in 0..255: CLIP's bicubic shorter-side resize, computed as PIL
    does (one pass per axis, each rounded to 8 bits, in Pillow's order), then its centre crop."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    height, width = int(image.shape[-2]), int(image.shape[-1])
    new_w, new_h = clip_resize_size(width, height, resolution)
    pixels = image.float()
    passes = [(height, new_w), (new_h, new_w)]  # horizontal, then vertical; each pass back to 8 bits
    if new_h < height and height > 2 * width:  # Pillow 13 reduces a tall image vertically first (measured)
        passes[0] = (new_h, width)
    for size in passes:
        if tuple(pixels.shape[-2:]) != size:
            pixels = F.resize(pixels, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
            pixels = pixels.round_().clamp_(0, 255)
    return F.center_crop(pixels, [resolution, resolution])


def overlaid_transform(preprocess: Callable, overlay: Callable, where: str = "") -> Callable:
    """``preprocess`` with ``overlay`` run on its [0, 1] tensor just before its (last) ``Normalize``, or last where it
    has none: how CLIP_benchmark inserts ImageNet-W's ``AddWatermark``. ``preprocess`` must list its steps as
    ``transforms`` (torchvision's ``Compose``: open_clip's and Hugging Face's; ``ClipPreprocess`` lists the
    torchvision steps that give its pixels)."""
    from torchvision.transforms import Compose, Normalize
    from torchvision.transforms.v2 import Normalize as NormalizeV2

    steps = getattr(preprocess, "transforms", None)
    if not isinstance(steps, list) or not steps:
        raise ClipbenchError(f"{where}: its pixel overlay ({getattr(overlay, 'name', overlay)}) goes inside the "
                             f"model's preprocessing, which lists no steps ({type(preprocess).__name__})")
    steps = list(steps)
    normalize = [i for i, step in enumerate(steps) if isinstance(step, (Normalize, NormalizeV2))]
    steps.insert(normalize[-1] if normalize else len(steps), overlay)
    return Compose(steps)


def image_pipeline(model: ImageTextModel, decode: str = "pil") -> PilPipeline | GpuPipeline:
    """The pipeline ``--decode`` names for ``model``; a one-line error where it cannot run."""
    if decode == "pil":
        return PilPipeline(model)
    if decode != "gpu":
        raise ClipbenchError(f"unknown --decode {decode!r}; expected one of {', '.join(DECODES)}")
    device_type = model.device.type
    check_decode_device(decode, device_type)
    if model.preprocess_id != clip_preprocess_id(model.image_resolution):
        raise ClipbenchError(f"--decode gpu reproduces CLIP's own preprocessing, which {model.name} does not use "
                             f"({model.preprocess_id}); use --decode pil")
    return GpuPipeline(model.image_resolution, device_type)


def check_decode_device(decode: str, device_type: str) -> None:
    """``--decode gpu`` needs a CUDA device (or the CPU test hook): a one-line error otherwise."""
    if decode == "gpu" and device_type != "cuda" and os.environ.get(ENV_DECODE_ON_CPU) != "1":
        raise ClipbenchError(f"--decode gpu decodes and resizes on a CUDA device, but the device is {device_type}; "
                             "use --device cuda, or --decode pil")
