"""The choices dataset kind: images, each with one correct caption and hard negatives (caption selection).

An item is (image, positive caption, negative captions, subset name, optional group id). A
``ChoicesSplit`` is a ``FileSplit`` whose "label" of item i is i, so the image feature store,
``--limit`` and sharding work unchanged; an image may appear in several items (SugarCrepe and the
shapes check pair one image with one negative per subset). Its fingerprint is every kind's
(``SplitData.fingerprint``): the image files' identity, item by item, plus the digest of the items'
texts, subsets, groups and crop boxes as the kind's targets.

Groups (Winoground): items sharing a ``group`` id are the images of one example; each item's
negatives are the other items' positives (for 2 x 2: image 0 with caption 0 vs caption 1, image 1
with caption 1 vs caption 0). ``image_caption_selection`` then also scores text/image/group scores.

The sources of this kind: ``choices_files`` (``choices:FILE.jsonl``), ``compositional``
(SugarCrepe, ARO VG, Winoground, shapes_compositional) and ``aro_order`` (COCO/Flickr30k-Order).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.images import FileSplit, open_rgb
from clipbench.foundations.errors import DataError

KIND = "choices"
PRIMARY_METRIC = "accuracy"
DEFAULT_SUBSET = "all"


def str_list(value) -> bool:
    """A list of non-empty strings."""
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


class ChoiceTexts:
    """What every choices split offers besides its images: each item's captions, subset and group."""

    kind = KIND
    positives: list[str]
    negatives: list[list[str]]
    subsets: list[str]
    groups: list[str | None]

    def _set_texts(self, n: int, where: Sequence[str], positives, negatives, subsets, groups) -> None:
        self.positives = [str(p) for p in positives]
        self.negatives = [[str(c) for c in negs] for negs in negatives]
        self.subsets = [str(s) for s in subsets] if subsets is not None else [DEFAULT_SUBSET] * n
        self.groups = [None if g is None else str(g) for g in groups] if groups is not None else [None] * n
        if not (len(self.positives) == len(self.negatives) == len(self.subsets) == len(self.groups) == n):
            raise ValueError("one positive, negative list, subset and group per image")
        empty = [w for w, negs in zip(where, self.negatives, strict=True) if not negs]
        if empty:
            raise DataError(f"{self.dataset_name}/{self.split}: item of image {empty[0]} has no negative caption "
                            f"({len(empty)} such items; every item needs at least one)")

    def candidates(self, i: int) -> list[str]:
        """Item i's captions: the positive first, then its negatives."""
        return [self.positives[i], *self.negatives[i]]

    def targets_digest(self) -> str:
        """SHA-256 of every item's candidate texts, subset and group (and crop box, where items have one)."""
        texts = [self.positives, self.negatives, self.subsets, self.groups]
        boxes = getattr(self, "boxes", None)
        payload = json.dumps(texts if boxes is None else [*texts, boxes], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ChoicesSplit(ChoiceTexts, FileSplit):
    """Items (image, positive, negatives, subset, group); labels are the item indices (0..N-1)."""

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike], positives: Sequence[str],
                 negatives: Sequence[Sequence[str]], subsets: Sequence[str] | None = None,
                 groups: Sequence[str | None] | None = None, root: str | os.PathLike | None = None,
                 boxes: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__(dataset_name, split, paths, np.arange(len(paths), dtype=np.int64), root=root)
        self._set_texts(len(self.paths), self.paths, positives, negatives, subsets, groups)
        #: optional (left, top, right, bottom) crop of each item's image (ARO's VG regions)
        self.boxes = [tuple(float(v) for v in b) for b in boxes] if boxes is not None else None
        if self.boxes is not None and len(self.boxes) != len(self.paths):
            raise ValueError("one box per image")

    def torch_dataset(self, transform):
        if self.boxes is None:
            return super().torch_dataset(transform)
        return _CroppedDataset(self.paths, self.boxes, transform)

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Items at ``indices``, plus the other members of any group they belong to (a group is never split)."""
        chosen = {int(i) for i in indices}
        groups = {self.groups[i] for i in chosen} - {None}
        idx = [i for i in range(len(self.paths)) if i in chosen or (self.groups[i] is not None and self.groups[i] in groups)]
        return self.derived(ChoicesSplit(self.dataset_name, self.split, [self.paths[i] for i in idx],
                                         [self.positives[i] for i in idx], [self.negatives[i] for i in idx],
                                         [self.subsets[i] for i in idx], [self.groups[i] for i in idx], self.root,
                                         [self.boxes[i] for i in idx] if self.boxes is not None else None), spec)


class _CroppedDataset:
    """Item i = (the ``boxes[i]`` region of image i, transformed, i): a map-style dataset for DataLoader."""

    def __init__(self, paths: Sequence[str], boxes: Sequence[tuple], transform) -> None:
        self.paths, self.boxes, self.transform = paths, boxes, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.transform(open_rgb(self.paths[index]).crop(self.boxes[index])), int(index)


def split_choices(split: SplitData) -> ChoiceTexts:
    """The candidate texts of a choices split (a ``DataError`` for any other split)."""
    if not isinstance(split, ChoiceTexts):
        raise DataError(f"{split.dataset_name}/{split.split} is not a choices split (it carries no candidate captions)")
    return split


@dataclass
class ChoicesAdapter(DatasetAdapter):
    """A choices dataset: no classnames or templates; one ``test`` split of items."""

    kind: ClassVar[str] = KIND
    origin: str = ""



def choices_fields(name: str, description: str, **extra) -> dict:
    """The constructor fields every choices adapter shares (no classes, one test split, the kind's metric)."""
    return dict(name=name, splits=("test",), primary_metric=PRIMARY_METRIC,
                description=description, **extra)
