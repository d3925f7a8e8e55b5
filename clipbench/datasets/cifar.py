"""CIFAR-10 / CIFAR-100 read straight from the python-pickle batches in the official tar.gz.

Read here rather than through torchvision because torchvision re-checks every batch file against
its MD5 on each load; the archive's MD5 is verified once at download instead. The batches are read
with ``safe_pickle`` (containers and numpy arrays only), so a file planted in the data root runs nothing.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.datasets.images import ArraySplit
from clipbench.datasets.local import LocalAdapter
from clipbench.datasets.safe_pickle import load as load_pickle
from clipbench.foundations.errors import DataError


@dataclass
class CifarAdapter(LocalAdapter):
    """``<data-root>/<name>/<batches_dir>/`` holding the pickled batches of one CIFAR variant."""

    batches_dir: str = ""
    train_files: tuple[str, ...] = ()
    test_files: tuple[str, ...] = ()
    label_key: str = "labels"
    #: published size of the test split, checked before any model loads (``datasets.counts``)
    expected_count: int = 0

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        try:
            with open(path, "rb") as fh:
                batch = load_pickle(fh, f"{self.name}: batch file {path}")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = np.asarray(batch[self.label_key], dtype=np.int64)
        except FileNotFoundError as exc:
            raise DataError(f"{self.name}: batch file {path} is missing (expected the files of the official archive)") from exc
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
            raise DataError(f"{self.name}: batch file {path} is corrupt ({type(exc).__name__}); expected a CIFAR python batch") from exc
        if len(data) != len(labels):
            raise DataError(f"{self.name}: batch file {path} has {len(data)} images but {len(labels)} labels")
        return data, labels

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        folder = self.require(data_root) / self.batches_dir
        parts = [self._read(folder / f) for f in (self.train_files if split == "train" else self.test_files)]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classnames)):
            raise DataError(f"{self.name}: labels in {folder} fall outside 0..{len(self.classnames) - 1}")
        return ArraySplit(self.name, split, images, labels, source=self.data_source(data_root))
