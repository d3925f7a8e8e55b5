"""``hf:NAME_OR_PATH``: a Hugging Face ``datasets`` dataset, of either kind.

A local folder written by ``save_to_disk`` is read with ``load_from_disk`` (offline), anything else
with ``load_dataset``. A dataset with a class-label column is a classification set (``HFAdapter``);
one with an image column and a caption (or caption-list) column and no label is an image-text set
(``HFCaptionAdapter``). A split's data identity is its Arrow files (whose cache path carries the
Hub revision) plus ``datasets``' own fingerprint and version as its ``source``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clipbench.datasets.base import ClassificationAdapter, DatasetAdapter, SplitData
from clipbench.datasets.image_text import (
    CAPTION_COLUMNS,
    Captions,
    ImageTextAdapter,
    cell_captions,
    checked_captions,
    image_text_fields,
)
from clipbench.datasets.image_text import SPLIT_ALIASES as IMAGE_TEXT_SPLITS
from clipbench.datasets.images import WrappedSplit
from clipbench.datasets.user_data import (
    DEFAULT_TEMPLATES,
    apply_prompt_file,
    ordered_splits,
    pick_column,
    require_classes,
    split_name,
)
from clipbench.foundations.errors import DataError

IMAGE_COLUMNS = ("image", "img", "image_path", "path", "filepath", "file", "filename")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "fine_label")


class HFItems:
    """``(image, label)`` items of a Hugging Face dataset (module-level so DataLoader workers can pickle it)."""

    def __init__(self, dataset: Any, image_column: str, label_column: str) -> None:
        self.dataset, self.image_column, self.label_column = dataset, image_column, label_column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        row = self.dataset[int(index)]
        return row[self.image_column], row[self.label_column]


def hf_source(dataset: Any) -> dict:
    """The dataset's own identity: ``datasets``' fingerprint (it changes with every transform and with
    the data files it was built from) and its declared version; the Arrow files themselves (whose cache
    path carries the Hub revision) enter the split's manifest."""
    version = getattr(dataset.info, "version", None)
    return {"hf_fingerprint": getattr(dataset, "_fingerprint", None), "hf_version": str(version) if version else None}


def _hf_sample(inner: HFItems, index: int) -> str:
    return f"row {index} (column {inner.image_column!r}) of Hugging Face dataset {inner.dataset.info.dataset_name or ''}".rstrip()


@dataclass
class HFAdapter(ClassificationAdapter):
    """A Hugging Face ``datasets`` dataset; built by ``HFAdapter.from_spec``."""

    spec: str = ""
    image_column: str = "image"
    label_column: str = "label"
    #: clipbench split -> the dataset's own split name
    split_names: dict[str, str] = field(default_factory=dict)
    source: Any = field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: str, name: str | None = None, image_column: str | None = None,
                  label_column: str | None = None) -> DatasetAdapter:
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DataError("hf: datasets need the 'datasets' package: pip install datasets") from exc
        if not spec.strip():
            raise DataError("hf: needs a dataset: hf:NAME (on the Hugging Face Hub) or hf:PATH (a save_to_disk folder)")
        local = Path(spec).expanduser()
        try:
            if local.exists():
                source = datasets.load_from_disk(str(local))
            else:
                source = datasets.load_dataset(spec)
        except FileNotFoundError as exc:
            raise DataError(f"hf:{spec}: {local} is not a dataset saved with save_to_disk ({exc})") from exc
        except Exception as exc:  # datasets raises many types for unreachable or malformed sources
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise DataError(f"hf:{spec}: cannot load it ({type(exc).__name__}: {first}); expected a local save_to_disk "
                            f"folder or a reachable dataset name") from exc
        if isinstance(source, datasets.Dataset):
            source = datasets.DatasetDict({"test": source})
        if not len(source):
            raise DataError(f"hf:{spec} has no splits")
        features = next(iter(source.values())).features
        columns = list(features)
        image_col = image_column or next((c for c in columns if isinstance(features[c], datasets.Image)), None)
        if image_col is None:
            image_col = pick_column(columns, None, IMAGE_COLUMNS, "image", local)
        label_col = label_column or next((c for c in columns if isinstance(features[c], datasets.ClassLabel)), None)
        if label_col is None and not any(c.lower() in LABEL_COLUMNS for c in columns):
            if any(c.lower() in CAPTION_COLUMNS for c in columns):  # an image-caption dataset
                return HFCaptionAdapter.from_source(spec, name, source, image_col, columns)
        if label_col is None:
            label_col = pick_column(columns, None, LABEL_COLUMNS, "label", local)
        for col in (image_col, label_col):
            if col not in columns:
                raise DataError(f"hf:{spec}: no column {col!r} (columns: {', '.join(columns)})")
        label_feature = features[label_col]
        if isinstance(label_feature, datasets.ClassLabel):
            classnames = [n.replace("_", " ") for n in label_feature.names]
        else:
            highest = max(int(max(ds[label_col])) for ds in source.values() if len(ds))
            classnames = [str(i) for i in range(highest + 1)]
        require_classes(classnames, name or f"hf:{spec}", "class")
        split_names = {split_name(s): s for s in source}
        adapter = cls(
            name=name or f"hf:{spec}", classnames=classnames, templates=list(DEFAULT_TEMPLATES),
            splits=ordered_splits(split_names),
            spec=spec, image_column=image_col, label_column=label_col, split_names=split_names, source=source,
        )
        return apply_prompt_file(adapter, local) if local.is_dir() else adapter

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.source is not None

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        if split not in self.split_names:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")
        dataset = self.source[self.split_names[split]]
        labels = np.asarray(dataset[self.label_column], dtype=np.int64)
        if len(labels) == 0:
            raise DataError(f"{self.name}: split {split!r} is empty")
        if labels.min() < 0 or labels.max() >= len(self.classnames):
            raise DataError(f"{self.name}: split {split!r} has labels outside 0..{len(self.classnames) - 1}")
        return WrappedSplit(self.name, split, HFItems(dataset, self.image_column, self.label_column), labels, _hf_sample,
                            data_files=[f["filename"] for f in dataset.cache_files], source=hf_source(dataset))


# ------------------------------------------------------------------------------ hf: with captions


class _HFImages:
    """Item i = (row i's image, i) of a Hugging Face dataset (picklable into DataLoader workers)."""

    def __init__(self, dataset, image_column: str) -> None:
        self.dataset, self.image_column = dataset, image_column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[int(index)][self.image_column], int(index)


def _hf_image_row(inner: _HFImages, index: int) -> str:
    return f"row {index} (column {inner.image_column!r}) of a Hugging Face dataset"


class HFImageTextSplit(Captions, WrappedSplit):
    """Rows of a Hugging Face dataset: an image column plus a caption (or caption-list) column."""

    def __init__(self, dataset_name: str, split: str, dataset, image_column: str,
                 captions: Sequence[Sequence[str]]) -> None:
        super().__init__(dataset_name, split, _HFImages(dataset, image_column), np.arange(len(dataset)), _hf_image_row,
                         data_files=[f["filename"] for f in dataset.cache_files], source=hf_source(dataset))
        self.dataset, self.image_column = dataset, image_column
        self.captions = checked_captions(captions, [f"row {i}" for i in range(len(dataset))], dataset_name, split)

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        idx = [int(i) for i in indices]
        return self.derived(HFImageTextSplit(self.dataset_name, self.split, self.dataset.select(idx),
                                             self.image_column, [self.captions[i] for i in idx]), spec)


@dataclass
class HFCaptionAdapter(ImageTextAdapter):
    """``hf:NAME_OR_PATH`` whose rows hold an image and a caption (or a list of captions) and no class label."""

    spec: str = ""
    image_column: str = "image"
    caption_column: str = "caption"
    split_names: dict | None = None
    source: object = None

    @classmethod
    def from_source(cls, spec: str, name: str | None, source, image_column: str, columns: Sequence[str]
                    ) -> HFCaptionAdapter:
        """Built by ``HFAdapter.from_spec`` when the loaded dataset has captions instead of labels."""
        caption_col = pick_column(columns, None, CAPTION_COLUMNS, "caption", f"hf:{spec}")
        split_names = {IMAGE_TEXT_SPLITS.get(s.lower(), s): s for s in source}
        splits = ordered_splits(split_names)
        return cls(**image_text_fields(name or f"hf:{spec}", splits, f"Hugging Face image-caption dataset {spec}"),
                   spec=spec, image_column=image_column, caption_column=caption_col, split_names=split_names,
                   source=source)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.source is not None

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        dataset = self.source[self.split_names[split]]
        if len(dataset) == 0:
            raise DataError(f"{self.name}: split {split!r} is empty")
        captions = [cell_captions(v, f"{self.name} {split} row {i}")
                    for i, v in enumerate(dataset[self.caption_column])]
        return HFImageTextSplit(self.name, split, dataset, self.image_column, captions)
