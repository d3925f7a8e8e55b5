"""Small deterministic fakes for engine tests: a linear 'CLIP' and synthetic datasets.

``FakeModel`` implements ``ImageTextModel`` with a fixed random linear image tower (8x8 RGB ->
pre-projection 16 -> projected 8) and a bag-of-token text tower; it counts encode_image calls.
``FakeAdapter`` is a ``DatasetAdapter`` whose images are class-dependent colour patterns plus
seeded noise, so zero-shot and the probe produce non-trivial, reproducible numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from clipbench.datasets.base import ClassificationAdapter, SplitData
from clipbench.foundations.errors import DataError
from clipbench.models.base import ImageTextModel


class FakeModel(ImageTextModel):
    family = "other"
    image_resolution = 8
    embed_dim = 8
    context_length = 16

    def __init__(self, seed: int = 0, name: str = "fake-model", nan: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.name = name
        self.weights_sha256 = f"fake{seed:060d}"
        self.w_image = torch.randn(3 * 8 * 8, 16, generator=g) / 8
        self.w_proj = torch.randn(16, 8, generator=g) / 4
        self.w_text = torch.randn(1000, 8, generator=g)
        self.preprocess = transforms.ToTensor()
        self.image_calls = 0
        self.nan = nan
        self._device = torch.device("cpu")

    @property
    def preprocess_id(self) -> str:
        return "totensor-8"

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [1 + (sum(map(ord, w)) % 999) for w in text.split()][: self.context_length]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        self.image_calls += 1
        hidden = images.flatten(1).float() @ self.w_image
        if self.nan:
            hidden[0, 0] = float("nan")
        return hidden @ self.w_proj if projected else hidden

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.w_text[tokens]  # [N, L, D]
        mask = (tokens > 0).unsqueeze(-1).float()
        return (emb * mask).sum(1) / mask.sum(1).clamp(min=1)

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device):
        self._device = torch.device(device)
        return self

    def num_params(self) -> dict[str, int]:
        image = self.w_image.numel() + self.w_proj.numel()
        return {"image": image, "text": self.w_text.numel(), "total": image + self.w_text.numel()}


class _PatternImages(Dataset):
    def __init__(self, labels: np.ndarray, seed: int, num_classes: int, transform, size: int) -> None:
        self.labels, self.seed, self.num_classes, self.transform, self.size = labels, seed, num_classes, transform, size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        label = int(self.labels[i])
        rng = np.random.default_rng(self.seed * 100003 + i)
        hue = np.array([label % 3, (label // 3) % 3, (label * 7) % 5], dtype=np.float32) / 4
        pixels = 255 * np.clip(hue[None, None, :] * 0.8 + 0.35 * rng.random((self.size, self.size, 3)), 0, 1)
        return self.transform(Image.fromarray(pixels.astype(np.uint8), "RGB")), label


class FakeSplit(SplitData):
    def __init__(self, dataset_name: str, split: str, labels: np.ndarray, seed: int, num_classes: int, size: int = 8):
        self.dataset_name, self.split = dataset_name, split
        self._labels, self.seed, self.num_classes, self.size = labels, seed, num_classes, size

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def torch_dataset(self, transform) -> Dataset:
        return _PatternImages(self._labels, self.seed, self.num_classes, transform, self.size)


class FakeAdapter(ClassificationAdapter):
    """Synthetic dataset; ``sizes`` maps split -> number of samples (labels cycle through the classes)."""

    def __init__(self, name: str = "fake10", num_classes: int = 10, sizes: dict[str, int] | None = None,
                 primary_metric: str = "top1", image_size: int = 8) -> None:
        sizes = sizes or {"train": 60, "test": 40}
        super().__init__(name=name, classnames=[f"class{c}" for c in range(num_classes)],
                         templates=["a photo of a {c}.", "a picture of {c}."], splits=tuple(sizes),
                         primary_metric=primary_metric, description="synthetic test data")
        self.sizes, self.image_size = sizes, image_size

    def load_split(self, split: str, data_root: Path) -> SplitData:
        if split not in self.sizes:
            raise DataError(f"{self.name} has no split {split!r}")
        n = self.sizes[split]
        seed = sorted(self.sizes).index(split) + 1
        labels = np.random.default_rng(seed).permutation(np.arange(n) % len(self.classnames)).astype(np.int64)
        return FakeSplit(self.name, split, labels, seed, len(self.classnames), self.image_size)

    def is_present(self, data_root: Path) -> bool:
        return True


def make_split(n: int = 40, num_classes: int = 10, name: str = "fake10", seed: int = 1) -> FakeSplit:
    labels = np.random.default_rng(seed).permutation(np.arange(n) % num_classes).astype(np.int64)
    return FakeSplit(name, "test", labels, seed, num_classes)


def write_tiny_clip(path: Path, seed: int = 0) -> Path:
    """A small random native CLIP (ViT, 32 px) saved as an OpenAI-format state dict."""
    from clipbench.models.architecture import CLIP, ClipConfig

    torch.manual_seed(seed)
    config = ClipConfig(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=8,
                        context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                        transformer_layers=1)
    module = CLIP(config)
    with torch.no_grad():
        for p in module.parameters():  # make sure nothing is left uninitialised or all-zero
            if not torch.isfinite(p).all() or p.abs().sum() == 0:
                p.copy_(0.02 * torch.randn_like(p))
    torch.save(module.state_dict(), path)
    return path
