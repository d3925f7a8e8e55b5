"""``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, bundled, so offline runs have real data.

Images: the 0..16 ink values scaled to 0..255 (bright ink on black, like MNIST), upscaled 4x with
nearest neighbour to 32x32 (exact pixel blocks, no interpolation to argue about; the model's own
preprocessing resizes from there), replicated to RGB. Split: per class, a seeded shuffle
(numpy ``default_rng(0)``) and the first 100 images go to ``train``, the rest (797 in all) to ``test``.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import ClassificationAdapter, SplitData
from clipbench.datasets.images import ArraySplit
from clipbench.datasets.local import prompt_fields
from clipbench.datasets.splits import stratified_indices
from clipbench.foundations.errors import DataError

SCALE = 4
TRAIN_PER_CLASS = 100
SEED = 0
SPLIT_SIZES = {"train": 1000, "test": 797}


def digits_file() -> Path:
    """scikit-learn's bundled ``digits.csv.gz``, located without importing scikit-learn (1.8 s of a warm run)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DataError("digits ships inside scikit-learn, which is not installed (pip install scikit-learn)")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DataError(f"digits: {path} is missing from this scikit-learn install (reinstall scikit-learn)")
    return path


def read_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ink 0..16 as float [1797, 8, 8], labels): what ``sklearn.datasets.load_digits`` reads from the file,
    one row per image, 64 pixel values then the label (tests/datasets/test_datasets_contract.py checks the equality)."""
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    ink, labels = read_digits(digits_file())
    pixels = np.rint(ink * (255.0 / 16.0)).astype(np.uint8)  # [1797, 8, 8]
    pixels = pixels.repeat(SCALE, axis=1).repeat(SCALE, axis=2)  # nearest-neighbour upscale to 32x32
    return np.ascontiguousarray(pixels), labels


@dataclass
class DigitsAdapter(ClassificationAdapter):
    origin: str = ""

    def is_present(self, data_root: Path | None = None) -> bool:
        return True  # ships inside scikit-learn

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        if split not in self.splits:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")
        images, labels = _digits()
        test_idx, train_idx = stratified_indices(labels, per_class=TRAIN_PER_CLASS, seed=SEED)
        idx = train_idx if split == "train" else test_idx
        return ArraySplit(self.name, split, images[idx], labels[idx])


def digits_adapter() -> DigitsAdapter:
    return DigitsAdapter(
        name="digits", splits=("train", "test"), primary_metric="top1",
        description="scikit-learn's 8x8 handwritten digits (bundled, no download)", **prompt_fields("digits"),
    )
