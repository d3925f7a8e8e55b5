"""The interface every dataset adapter presents: facts about the dataset plus split loaders.

An adapter never knows about models: it hands the engine (image, label) pairs through whatever
transform the engine passes in.
"""

from __future__ import annotations

import abc
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from clipbench.errors import DataError

PRIMARY_METRICS = ("top1", "mean_per_class_recall")


class SplitData(abc.ABC):
    """One split (or a deterministic subset of one) of one dataset, with its labels known up front."""

    dataset_name: str
    split: str

    @property
    @abc.abstractmethod
    def labels(self) -> np.ndarray:
        """int64 label per sample, in the order ``torch_dataset`` yields them."""

    @abc.abstractmethod
    def torch_dataset(self, transform: Callable) -> Dataset:
        """A map-style Dataset whose item i is (transform(PIL RGB image i), int label i)."""

    #: Describes any subsetting (carved val split, --limit); part of the fingerprint.
    subset_spec: str = ""

    def __len__(self) -> int:
        return int(len(self.labels))

    @property
    def fingerprint(self) -> str:
        """Stable id of exactly these samples: name, split, subset, size and a hash of the labels."""
        labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        payload = json.dumps(
            {
                "dataset": self.dataset_name,
                "split": self.split,
                "subset": self.subset_spec,
                "n": int(labels.shape[0]),
                "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """A deterministic subset (by position); ``spec`` names it, e.g. 'val:seed=0:frac=0.2'."""
        return SubsetSplit(self, np.asarray(indices, dtype=np.int64), spec)


class SubsetSplit(SplitData):
    def __init__(self, parent: SplitData, indices: np.ndarray, spec: str) -> None:
        self.parent = parent
        self.indices = indices
        self.dataset_name = parent.dataset_name
        self.split = parent.split
        self.subset_spec = f"{parent.subset_spec}|{spec}" if parent.subset_spec else spec

    @property
    def labels(self) -> np.ndarray:
        return self.parent.labels[self.indices]

    def torch_dataset(self, transform: Callable) -> Dataset:
        return torch.utils.data.Subset(self.parent.torch_dataset(transform), self.indices.tolist())


@dataclass
class DatasetAdapter(abc.ABC):
    """Facts (classnames, templates, splits, metric) and loaders for one dataset."""

    name: str
    classnames: list[str]
    templates: list[str]  # format strings with "{c}"
    splits: tuple[str, ...]  # e.g. ("train", "test") or ("train", "val", "test")
    primary_metric: str = "top1"
    description: str = ""
    #: Optional per-class prompt lists that replace ``templates`` (e.g. CLIP's hand-written prompts).
    per_class_prompts: dict[str, list[str]] | None = field(default=None)

    def class_prompts(self) -> list[list[str]]:
        """The prompts for each class, in label order: what the zero-shot classifier encodes."""
        if self.per_class_prompts is not None:
            return [list(self.per_class_prompts[c]) for c in self.classnames]
        return [[t.format(c=c) for t in self.templates] for c in self.classnames]

    @abc.abstractmethod
    def load_split(self, split: str, data_root: Path) -> SplitData:
        """Load ``split`` from under ``data_root``; raise DataError with a one-line message if absent."""

    @property
    def evaluation_split(self) -> str:
        """The split scores are reported on: ``test``, else ``val`` (ImageNet); never a training split."""
        for name in ("test", "val"):
            if name in self.splits:
                return name
        raise DataError(f"{self.name} has no test or val split to evaluate on (splits: {', '.join(self.splits)})")

    def is_present(self, data_root: Path) -> bool:
        """Whether the data appears to be on disk (for `clipbench list datasets`)."""
        return False
