"""The image-text dataset kind: images, each with one or more captions (retrieval's input).

An ``ImageTextSplit`` is a ``FileSplit`` whose "label" of image i is i (``np.arange``), so the image
feature store, ``--limit`` and torchrun sharding work unchanged; the captions ride beside it
(``captions[i]`` = the list of image i's captions, in the order the source gives them). Its
fingerprint is every kind's (``SplitData.fingerprint``): the image files' identity (manifest, or
their bytes with ``--verify-data``) plus the caption lists' digest as the kind's targets.

The sources of this kind: ``karpathy`` (Flickr/COCO), ``caption_files`` (``pairs:``, ``captions:``),
``hf`` (``hf:`` with captions), ``webdataset_source`` (``wds:`` with captions), ``shapes``.
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
from clipbench.datasets.images import FileSplit
from clipbench.foundations.errors import DataError

KIND = "image_text"
PRIMARY_METRIC = "mean_recall"
CAPTION_COLUMNS = ("caption", "captions", "text", "sentence", "sentences", "raw", "txt")
SPLIT_ALIASES = {"train": "train", "restval": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "dev": "val", "test": "test", "testing": "test"}


def captions_digest(captions: Sequence[Sequence[str]]) -> str:
    """SHA-256 of the ordered caption lists (image order, caption order within each image)."""
    payload = json.dumps([list(c) for c in captions], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def caption_lines(text: str) -> list[str]:
    """One caption per non-empty line, stripped (``captions:DIR`` files, ``wds:`` ``.txt`` members)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def cell_captions(value, where: str) -> list[str]:
    """A caption cell: a string, a list of strings, or a JSON-encoded list in a text cell."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return [text]
        else:
            return [text] if text else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise DataError(f"{where}: a caption must be a string or a list of strings, got {type(value).__name__}")


class Captions:
    """What every image-text split offers besides its images: ``captions[i]`` of image i."""

    kind = KIND
    captions: list[list[str]]

    @property
    def n_captions(self) -> int:
        return sum(len(c) for c in self.captions)

    def flat_captions(self) -> tuple[list[str], np.ndarray]:
        """All captions in image order, and the image index of each (int64)."""
        texts = [c for caps in self.captions for c in caps]
        owner = np.repeat(np.arange(len(self.captions), dtype=np.int64), [len(c) for c in self.captions])
        return texts, owner

    def targets_digest(self) -> str:
        return captions_digest(self.captions)


def checked_captions(captions, where: Sequence[str], dataset_name: str, split: str) -> list[list[str]]:
    """The caption lists as strings, one per image; an image without a caption is a one-line ``DataError``."""
    out = [[str(c) for c in caps] for caps in captions]
    if len(out) != len(where):
        raise ValueError("one caption list per image")
    empty = [w for w, caps in zip(where, out, strict=True) if not caps]
    if empty:
        raise DataError(f"{dataset_name}/{split}: image {empty[0]} has no caption ({len(empty)} such images; "
                        "every image needs at least one)")
    return out


class ImageTextSplit(Captions, FileSplit):
    """Image files and each image's captions; labels are the image indices (0..N-1).

    ``root``: the folder the manifest names files against (as ``FileSplit``).
    """

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike],
                 captions: Sequence[Sequence[str]], root: str | os.PathLike | None = None) -> None:
        super().__init__(dataset_name, split, paths, np.arange(len(paths), dtype=np.int64), root=root)
        self.captions = checked_captions(captions, self.paths, dataset_name, split)

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Images at ``indices`` with their captions (re-indexed 0..k-1)."""
        idx = [int(i) for i in indices]
        return self.derived(ImageTextSplit(self.dataset_name, self.split, [self.paths[i] for i in idx],
                                           [self.captions[i] for i in idx], self.root), spec)


def split_captions(split: SplitData) -> list[list[str]]:
    """The caption lists of an image-text split (a ``DataError`` for any other split)."""
    captions = getattr(split, "captions", None)
    if captions is None:
        raise DataError(f"{split.dataset_name}/{split.split} is not an image-text split (it carries no captions)")
    return captions


@dataclass
class ImageTextAdapter(DatasetAdapter):
    """An image-text dataset: no classnames or templates; splits of (image, captions)."""

    kind: ClassVar[str] = KIND
    #: the prefix the task prepends to every caption unless ``--caption-prefix`` says otherwise
    caption_prefix: str = ""
    origin: str = ""


def image_text_fields(name: str, splits: tuple[str, ...], description: str, **extra) -> dict:
    """The constructor fields every image-text adapter shares (no classes, the kind's metric)."""
    return dict(name=name, splits=splits, primary_metric=PRIMARY_METRIC,
                description=description, **extra)
