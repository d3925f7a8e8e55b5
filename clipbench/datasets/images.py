"""Split implementations shared by the adapters: image files on disk, in-memory pixel arrays, wrapped datasets.

Corrupt images: a sample that cannot be decoded stops the run with a one-line ``DataError`` naming
the file (or the sample), never a silent skip. Skipping would change the sample set behind a
fingerprint that was computed up front (from the labels and the files' manifest), so scores would
no longer be comparable across runs or models; stopping makes the user fix or remove the file.

Very large images: PIL refuses images over twice ``PIL.Image.MAX_IMAGE_PIXELS`` (about 179 million
pixels by default) as possible decompression bombs, and warns above the limit itself. The refusal
is a ``DataError`` that says so and names ``CLIPBENCH_MAX_IMAGE_PIXELS`` (which sets PIL's limit;
``none`` lifts it); the warning becomes one clipbench log line per process instead of PIL's raw
warning text for every image.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from clipbench.datasets.base import Dataset, SplitData
from clipbench.datasets.identity import array_identity, files_identity, relative_paths, tree_files
from clipbench.foundations.errors import DataError
from clipbench.foundations.images import to_rgb

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: what PIL raises for unreadable or truncated image files
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


#: environment variable that sets ``PIL.Image.MAX_IMAGE_PIXELS`` (a pixel count, or ``none`` for no limit)
MAX_PIXELS_ENV = "CLIPBENCH_MAX_IMAGE_PIXELS"
_large_image_logged = False


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def apply_pixel_limit() -> None:
    """Set PIL's decompression-bomb limit from ``CLIPBENCH_MAX_IMAGE_PIXELS`` when it is set (read at
    every decode, so DataLoader workers and later changes see it); unset leaves PIL's limit alone."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return
    if raw.lower() in ("none", "off", "0"):
        Image.MAX_IMAGE_PIXELS = None
        return
    try:
        limit = int(raw.replace("_", ""))
    except ValueError:
        limit = -1
    if limit < 1:
        raise DataError(f"{MAX_PIXELS_ENV}={raw!r} is not a pixel count (expected a positive integer, or 'none')")
    Image.MAX_IMAGE_PIXELS = limit


def _pixels(message: str) -> int | None:
    """The pixel count in PIL's "Image size (N pixels) exceeds limit ..." message."""
    found = re.search(r"\((\d+) pixels\)", message)
    return int(found.group(1)) if found else None


def _log_large_image(caught: list[warnings.WarningMessage], where: str) -> None:
    """PIL's DecompressionBombWarning (an image over the limit, under twice it) as one log line per process."""
    global _large_image_logged
    bombs = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    if _large_image_logged or not bombs:
        return
    _large_image_logged = True
    pixels = _pixels(str(bombs[0].message))
    log.warning("large image %s%s: over PIL's decompression-bomb warning limit of %s pixels, decoded anyway "
                "(%s sets the limit; further large images are not reported)", where,
                f" ({pixels:,} pixels)" if pixels else "", f"{Image.MAX_IMAGE_PIXELS:,}", MAX_PIXELS_ENV)


def decode_error(exc: BaseException, where: str) -> DataError:
    """The one-line DataError for an image PIL could not decode (a decompression bomb is said as such)."""
    if isinstance(exc, Image.DecompressionBombError):
        pixels = _pixels(str(exc))
        limit = Image.MAX_IMAGE_PIXELS
        return DataError(
            f"image {where} is too large: {f'{pixels:,}' if pixels else 'its'} pixels are over PIL's "
            f"decompression-bomb limit{f' of {2 * limit:,} pixels' if limit else ''} (twice PIL.Image.MAX_IMAGE_PIXELS); "
            f"if you trust the file, allow it with {MAX_PIXELS_ENV}={pixels or 'N'} ('none' lifts the limit), "
            f"or downscale it"
        )
    return DataError(f"corrupt image {where}: cannot decode it ({type(exc).__name__}); expected a readable image")


@contextmanager
def _pixel_limit(where: str) -> Iterator[None]:
    """PIL's decompression-bomb limit (from ``CLIPBENCH_MAX_IMAGE_PIXELS``) for the images opened inside;
    its warning becomes the one log line; anything else PIL warned about goes on as it would have."""
    apply_pixel_limit()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", Image.DecompressionBombWarning)
        yield
    _log_large_image(caught, where)
    for w in caught:
        if not issubclass(w.category, Image.DecompressionBombWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _decoded_rgb(source: str | os.PathLike | io.BytesIO, where: str) -> Image.Image:
    try:
        with _pixel_limit(where), Image.open(source) as img:
            img.load()
            return img.convert("RGB")  # a copy even for RGB: closing ``img`` frees its pixels
    except DECODE_ERRORS as exc:
        raise decode_error(exc, where) from exc


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully into an RGB image, or raise ``DataError`` naming it."""
    try:
        return _decoded_rgb(path, str(path))
    except FileNotFoundError as exc:
        raise DataError(f"image file {path} is missing (expected a readable image)") from exc


def decode_bytes(data: bytes, where: str) -> Image.Image:
    """``open_rgb`` for an image already read into memory (a tar shard's member), named ``where`` in errors."""
    return _decoded_rgb(io.BytesIO(data), where)


def check_encoded(data: bytes, where: str) -> None:
    """``open_rgb``'s refusals for an image another decoder will decode (``--decode gpu``'s nvjpeg): PIL
    parses only its header, so an image over the decompression-bomb limit, or one whose header is not an
    image, is the same ``DataError`` on both paths, for ~40 us per image (a full decode of a 500x375 JPEG
    takes 3.3 ms)."""
    try:
        with _pixel_limit(where), Image.open(io.BytesIO(data)):
            pass
    except DECODE_ERRORS as exc:
        raise decode_error(exc, where) from exc


def any_image_rgb(image: Any, where: str) -> Image.Image:
    """A PIL image, array or tensor from some library -> RGB PIL image (``foundations.images.to_rgb``)."""
    if isinstance(image, Image.Image):
        try:
            return to_rgb(image)
        except DECODE_ERRORS as exc:
            raise decode_error(exc, where) from exc
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return to_rgb(Image.fromarray(array))


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's encoded bytes, or a ``DataError`` naming it."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise DataError(f"image file {path} is missing (expected a readable image)") from exc
    except OSError as exc:
        raise DataError(f"image file {path} cannot be read ({type(exc).__name__}: {exc})") from exc


def transformed(transform: Callable, where: str, read: Callable[[], bytes], decode: Callable[[], Image.Image]):
    """One image of a dataset that reads encoded files: ``transform(decode())``, or, when the transform
    takes encoded images (``from_encoded``, e.g. ``--decode gpu``'s, which hands JPEGs to the device
    decoder), the file's bytes."""
    from_encoded = getattr(transform, "from_encoded", None)
    if from_encoded is None:
        return transform(decode())
    return from_encoded(read(), where, decode)


class _FileDataset(Dataset):
    def __init__(self, paths: Sequence[str], labels: np.ndarray, transform: Callable) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        return (transformed(self.transform, path, lambda: read_bytes(path), lambda: open_rgb(path)),
                int(self.labels[index]))


class FileSplit(SplitData):
    """Images listed as file paths with their labels (class folders, CSVs, torchvision file lists).

    ``root``: the dataset's folder, against which the fingerprint's manifest names files (default:
    the folder all paths share).
    """

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike], labels: Sequence[int],
                 root: str | os.PathLike | None = None, source: dict | None = None) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.paths = [os.fspath(p) for p in paths]
        self._labels = np.asarray(labels, dtype=np.int64)
        self.root, self.source = (os.fspath(root) if root is not None else None), source
        if len(self.paths) != len(self._labels):
            raise ValueError("one label per path")

    def data_identity(self, indices: np.ndarray | None, verify_data: bool) -> dict:
        paths = self.paths if indices is None else [self.paths[int(i)] for i in indices]
        return files_identity(self.root, paths, verify_data)

    def sample_names(self) -> list[str] | None:
        return relative_paths(self.root, self.paths)

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
        return self.transform(to_rgb(Image.fromarray(self.images[index]))), int(self.labels[index])


class ArraySplit(SplitData):
    """Pixels already in memory as uint8 [N, H, W] or [N, H, W, 3] (digits, CIFAR-style batches)."""

    def __init__(self, dataset_name: str, split: str, images: np.ndarray, labels: Sequence[int],
                 source: dict | None = None) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.images = np.ascontiguousarray(images, dtype=np.uint8)
        self._labels = np.asarray(labels, dtype=np.int64)
        self.source = source
        if len(self.images) != len(self._labels):
            raise ValueError("one label per image")

    def data_identity(self, indices: np.ndarray | None, verify_data: bool) -> dict:
        """The pixels are in memory, so their exact bytes are hashed whatever ``verify_data`` says."""
        return array_identity(self.images if indices is None else self.images[indices])

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
        apply_pixel_limit()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", Image.DecompressionBombWarning)
                image = self.inner[index][0]
                rgb = any_image_rgb(image, self._describe(index))
        except DataError:
            raise
        except FileNotFoundError as exc:
            raise DataError(f"image file {self._describe(index)} is missing (expected a readable image)") from exc
        except DECODE_ERRORS as exc:
            raise decode_error(exc, self._describe(index)) from exc
        _log_large_image(caught, self._describe(index))
        for w in caught:
            if not issubclass(w.category, Image.DecompressionBombWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return self.transform(rgb), int(self.labels[index])


class WrappedSplit(SplitData):
    """Another library's map-style dataset (torchvision, Hugging Face) whose labels were read up front.

    ``inner[i]`` must give ``(image, anything)``; ``sample_path(inner, i)`` (a module-level function,
    so the split pickles into DataLoader workers) names sample i's file in error messages.

    Fingerprint: a manifest of ``data_files`` when given (the files the library reads the split
    from, e.g. a Hugging Face dataset's Arrow files; any subset shares it); else, when
    ``sample_path`` names a file for every sample, of those files in sample order (subsets cover
    only their own files); else of every file under ``root``.
    """

    def __init__(
        self,
        dataset_name: str,
        split: str,
        inner: Any,
        labels: Sequence[int],
        sample_path: Callable[[Any, int], str | None] | None = None,
        root: str | os.PathLike | None = None,
        data_files: Sequence[str] | None = None,
        source: dict | None = None,
    ) -> None:
        self.dataset_name, self.split = dataset_name, split
        self.inner = inner
        self._labels = np.asarray(labels, dtype=np.int64)
        self.sample_path = sample_path
        self.root, self.data_files, self.source = root, data_files, source

    def sample_names(self) -> list[str] | None:
        if "_files" not in self.__dict__:
            self._files = self._sample_files()
        return None if self._files is None else relative_paths(self.root, self._files)

    def _sample_files(self) -> list[str] | None:
        if self.sample_path is None or not len(self._labels):
            return None
        files = [self.sample_path(self.inner, i) for i in range(len(self._labels))]
        return None if any(f is None for f in files) else [str(f) for f in files]

    def data_identity(self, indices: np.ndarray | None, verify_data: bool) -> dict:
        if self.data_files is not None:
            return files_identity(self.root, list(self.data_files), verify_data)
        if "_files" not in self.__dict__:
            self._files = self._sample_files()
        files = self._files
        if files is not None:
            chosen = files if indices is None else [files[int(i)] for i in indices]
            return files_identity(self.root, chosen, verify_data)
        if self.root is not None:
            return files_identity(self.root, tree_files(self.root), verify_data)
        return super().data_identity(indices, verify_data)

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
    """Image files directly or below ``folder``, sorted for a stable order.

    An image name whose symlink points nowhere is a DataError naming it, like a corrupt image: skipping
    it would silently drop a sample."""
    found = sorted(p for p in folder.rglob("*") if is_image_file(p) and not p.name.startswith("."))
    for p in found:
        if p.is_symlink() and not p.exists():
            raise DataError(f"broken symlink {p}: it points to {os.readlink(p)}, which does not exist "
                            f"(fix or remove the link; an image is never skipped)")
    return [p for p in found if p.is_file()]
