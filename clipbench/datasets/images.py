"""Split implementations shared by the adapters: image files on disk, in-memory pixel arrays, wrapped datasets.

Corrupt images: a sample that cannot be decoded stops the run with a one-line ``DataError`` naming
the file (or the sample), never a silent skip. Skipping would change the sample set behind a
fingerprint that was computed from the labels up front, so scores would no longer be comparable
across runs or models; stopping makes the user fix or remove the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from clipbench.datasets.base import SplitData
from clipbench.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: what PIL raises for unreadable or truncated image files
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an RGB image, or raise ``DataError`` naming it."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise DataError(f"image file {path} is missing (expected a readable image)") from exc
    except DECODE_ERRORS as exc:
        raise DataError(f"corrupt image {path}: cannot decode it ({type(exc).__name__}); expected a readable image") from exc


def to_rgb(image: Any, where: str) -> Image.Image:
    """A PIL image, array or tensor from some library -> RGB PIL image."""
    if isinstance(image, Image.Image):
        try:
            return image.convert("RGB")
        except DECODE_ERRORS as exc:
            raise DataError(f"corrupt image {where}: cannot decode it ({type(exc).__name__})") from exc
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(array).convert("RGB")


class _FileDataset(Dataset):
    def __init__(self, paths: Sequence[str], labels: np.ndarray, transform: Callable) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.transform(open_rgb(self.paths[index])), int(self.labels[index])


class FileSplit(SplitData):
    """Images listed as file paths with their labels (class folders, CSVs, torchvision file lists)."""

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike], labels: Sequence[int]) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.paths = [os.fspath(p) for p in paths]
        self._labels = np.asarray(labels, dtype=np.int64)
        if len(self.paths) != len(self._labels):
            raise ValueError("one label per path")

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _FileDataset(self.paths, self._labels, transform)


class _ArrayDataset(Dataset):
    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index]).convert("RGB")), int(self.labels[index])


class ArraySplit(SplitData):
    """Pixels already in memory as uint8 [N, H, W] or [N, H, W, 3] (digits, CIFAR-style batches)."""

    def __init__(self, dataset_name: str, split: str, images: np.ndarray, labels: Sequence[int]) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self._labels = np.asarray(labels, dtype=np.int64)
        if len(self.images) != len(self._labels):
            raise ValueError("one label per image")

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _ArrayDataset(self.images, self._labels, transform)


class _WrappedDataset(Dataset):
    def __init__(self, split: WrappedSplit, transform: Callable) -> None:
        self.inner, self.labels, self.transform = split.inner, split.labels, transform
        self.sample_path, self.where = split.sample_path, f"{split.dataset_name}/{split.split}"

    def __len__(self) -> int:
        return len(self.labels)

    def _describe(self, index: int) -> str:
        path = self.sample_path(self.inner, index) if self.sample_path else None
        return str(path) if path else f"sample {index} of {self.where}"

    def __getitem__(self, index: int):
        try:
            image = self.inner[index][0]
        except DataError:
            raise
        except FileNotFoundError as exc:
            raise DataError(f"image file {self._describe(index)} is missing (expected a readable image)") from exc
        except DECODE_ERRORS as exc:
            raise DataError(
                f"corrupt image {self._describe(index)}: cannot decode it ({type(exc).__name__}); expected a readable image"
            ) from exc
        return self.transform(to_rgb(image, self._describe(index))), int(self.labels[index])


class WrappedSplit(SplitData):
    """Another library's map-style dataset (torchvision, Hugging Face) whose labels were read up front.

    ``inner[i]`` must give ``(image, anything)``; ``sample_path(inner, i)`` (a module-level function,
    so the split pickles into DataLoader workers) names sample i's file in error messages.
    """

    def __init__(
        self,
        dataset_name: str,
        split: str,
        inner: Any,
        labels: Sequence[int],
        sample_path: Callable[[Any, int], str | None] | None = None,
    ) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.inner = inner
        self._labels = np.asarray(labels, dtype=np.int64)
        self.sample_path = sample_path

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    def torch_dataset(self, transform: Callable) -> Dataset:
        return _WrappedDataset(self, transform)


def list_class_folders(root: Path, what: str) -> list[Path]:
    """The sub-folders of ``root`` (sorted by name); DataError if ``root`` is missing or has none."""
    if not root.is_dir():
        raise DataError(f"{what}: folder {root} does not exist (expected one sub-folder per class)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{what}: folder {root} has no class sub-folders (expected one sub-folder per class)")
    return folders


def images_in(folder: Path) -> list[Path]:
    """Image files directly or below ``folder``, sorted for a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p) and not p.name.startswith("."))
