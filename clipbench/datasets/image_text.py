"""The image-text dataset kind: images, each with one or more captions (retrieval's input).

An ``ImageTextSplit`` is a ``FileSplit`` whose "label" of image i is i (``np.arange``), so the image
feature store, ``--limit`` and torchrun sharding work unchanged; the captions ride beside it
(``captions[i]`` = the list of image i's captions, in the order the source gives them).
Its fingerprint covers a manifest of the image files (path relative to the split's root, size, and
mtime or, where cheap, SHA-256) and the exact caption lists, so editing a caption or replacing an
image gives a new cache key.

Adapters here:

* ``flickr30k`` / ``flickr8k`` / ``mscoco_captions``: images plus Karpathy's split JSON
  (``dataset_flickr30k.json``, ``dataset_flickr8k.json``, ``dataset_coco.json``:
  ``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw"}]}]}``); Karpathy's
  ``restval`` images count as ``train``. Placed by hand (``clipbench download NAME`` says where).
* ``pairs:FILE.csv|.tsv|.jsonl``: one row per (image, caption) with an image column and a caption
  column; rows with the same image are grouped in first-appearance order; a caption cell may hold a
  list (a JSON list in jsonl, or a JSON-encoded list in csv/tsv); an optional ``split`` column.
* ``captions:DIR``: image files with same-named ``.txt`` files beside them, one caption per line.
* ``hf:NAME_OR_PATH`` with an image column and a caption (or caption-list) column but no class
  label: ``HFAdapter.from_spec`` hands such a dataset to ``HFCaptionAdapter``.
* ``wds:PATTERN`` whose samples carry captions (``.txt`` / ``.json``): ``webdataset_source``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.images import FileSplit, WrappedSplit, images_in
from clipbench.datasets.local import DataFolder
from clipbench.foundations.errors import DataError

KIND = "image_text"
PRIMARY_METRIC = "mean_recall"
IMAGE_COLUMNS = ("image", "image_path", "filepath", "file_name", "filename", "file", "path", "img")
CAPTION_COLUMNS = ("caption", "captions", "text", "sentence", "sentences", "raw", "txt")
SPLIT_ALIASES = {"train": "train", "restval": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "dev": "val", "test": "test", "testing": "test"}


def captions_digest(captions: Sequence[Sequence[str]]) -> str:
    """SHA-256 of the ordered caption lists (image order, caption order within each image)."""
    payload = json.dumps([list(c) for c in captions], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def file_manifest(paths: Sequence[str], root: str | os.PathLike | None, content_hash: bool = False) -> list[list]:
    """[relative path, size, mtime_ns | sha256] per image; a missing image is a one-line ``DataError``."""
    rows, missing = [], []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            missing.append(path)
            continue
        rel = os.path.relpath(path, root) if root is not None else path
        if content_hash:
            with open(path, "rb") as fh:
                stamp: int | str = hashlib.sha256(fh.read()).hexdigest()
        else:
            stamp = st.st_mtime_ns
        rows.append([rel, st.st_size, stamp])
    if missing:
        raise DataError(f"image file {missing[0]} is missing ({len(missing)} of {len(paths)} listed images absent; "
                        "expected every image the caption file names)")
    return rows


class _Captions:
    """What every image-text split offers besides its images: ``captions[i]`` of image i."""

    captions: list[list[str]]

    @property
    def n_captions(self) -> int:
        return sum(len(c) for c in self.captions)

    def flat_captions(self) -> tuple[list[str], np.ndarray]:
        """All captions in image order, and the image index of each (int64)."""
        texts = [c for caps in self.captions for c in caps]
        owner = np.repeat(np.arange(len(self.captions), dtype=np.int64), [len(c) for c in self.captions])
        return texts, owner


def _checked_captions(captions, where: Sequence[str], dataset_name: str, split: str) -> list[list[str]]:
    out = [[str(c) for c in caps] for caps in captions]
    if len(out) != len(where):
        raise ValueError("one caption list per image")
    empty = [w for w, caps in zip(where, out, strict=True) if not caps]
    if empty:
        raise DataError(f"{dataset_name}/{split}: image {empty[0]} has no caption ({len(empty)} such images; "
                        "every image needs at least one)")
    return out


class ImageTextSplit(_Captions, FileSplit):
    """Image files and each image's captions; labels are the image indices (0..N-1)."""

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike],
                 captions: Sequence[Sequence[str]], root: str | os.PathLike | None = None,
                 content_hash: bool = False, subset_spec: str = "") -> None:
        super().__init__(dataset_name, split, paths, np.arange(len(paths), dtype=np.int64))
        self.captions = _checked_captions(captions, self.paths, dataset_name, split)
        self.root = os.fspath(root) if root is not None else None
        self.content_hash = content_hash
        self.subset_spec = subset_spec
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            payload = json.dumps({
                "kind": KIND, "dataset": self.dataset_name, "split": self.split, "subset": self.subset_spec,
                "n": len(self.paths),
                "images_sha256": hashlib.sha256(json.dumps(file_manifest(self.paths, self.root, self.content_hash)
                                                           ).encode()).hexdigest(),
                "captions_sha256": captions_digest(self.captions),
            }, sort_keys=True)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:32]
        return self._fingerprint

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Images at ``indices`` with their captions (re-indexed 0..k-1)."""
        idx = [int(i) for i in indices]
        return ImageTextSplit(self.dataset_name, self.split, [self.paths[i] for i in idx],
                              [self.captions[i] for i in idx], self.root, self.content_hash,
                              f"{self.subset_spec}|{spec}" if self.subset_spec else spec)


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



def _image_text_fields(name: str, splits: tuple[str, ...], description: str, **extra) -> dict:
    return dict(name=name, classnames=[], templates=[], splits=splits, primary_metric=PRIMARY_METRIC,
                description=description, **extra)


# ------------------------------------------------------------------------------ Karpathy splits


@dataclass
class KarpathyAdapter(DataFolder, ImageTextAdapter):
    """Images under ``<data-root>/<folder>/<one of image_dirs>/`` and Karpathy's split JSON beside them."""

    json_name: str = ""
    #: candidate image folders (the first that exists is used); COCO's entries carry their own ``filepath``
    image_dirs: tuple[str, ...] = ()

    def is_present(self, data_root: str | Path) -> bool:
        try:
            return (self.root(data_root) / self.json_name).is_file() and self._image_root(data_root) is not None
        except OSError:
            return False

    def _image_root(self, data_root: str | Path) -> Path | None:
        base = self.root(data_root)
        for sub in self.image_dirs:
            if (base / sub).is_dir():
                return base / sub
        return None

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        base = self.root(data_root)
        json_path = base / self.json_name
        if not json_path.is_file():
            raise DataError(f"{self.name}: {json_path} not found; {self.manual_for(data_root)}")
        image_root = self._image_root(data_root)
        if image_root is None:
            raise DataError(f"{self.name}: none of {', '.join(str(base / d) for d in self.image_dirs)} exists; "
                            f"{self.manual_for(data_root)}")
        try:
            entries = json.loads(json_path.read_text(encoding="utf-8"))["images"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise DataError(f"{json_path} is not a Karpathy split file ({type(exc).__name__}); expected "
                            '{"images": [{"filename", "split", "sentences": [{"raw"}]}]}') from exc
        paths, captions = [], []
        for entry in entries:
            try:
                if SPLIT_ALIASES.get(str(entry["split"]), entry["split"]) != split:
                    continue
                parts = [entry["filepath"], entry["filename"]] if entry.get("filepath") else [entry["filename"]]
                sentences = [s["raw"].strip() for s in entry["sentences"]]
            except (KeyError, TypeError, AttributeError) as exc:
                raise DataError(f"{json_path}: an image entry lacks {exc} (expected filename, split and "
                                "sentences with raw)") from exc
            paths.append(str(image_root.joinpath(*parts)))
            captions.append(sentences)
        if not paths:
            raise DataError(f"{self.name}: {json_path} lists no {split!r} images")
        return ImageTextSplit(self.name, split, paths, captions, root=image_root)


_KARPATHY = "Andrej Karpathy's splits (cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip)"


def karpathy_adapters() -> list[KarpathyAdapter]:
    """flickr30k, flickr8k and mscoco_captions with Karpathy's train/val/test splits."""
    splits = ("train", "val", "test")
    return [
        KarpathyAdapter(**_image_text_fields(
            "flickr30k", splits, "Flickr30k images with Karpathy's split (test: 1,000 images x 5 captions)",
            folder="flickr30k", json_name="dataset_flickr30k.json", image_dirs=("flickr30k-images", "images", "Images"),
            origin=_KARPATHY,
            manual="Flickr30k's images need the request form at shannon.cs.illinois.edu/DenotationGraph/, so they "
                   "cannot be downloaded for you: extract flickr30k-images.tar.gz so that <data-root>/flickr30k/"
                   f"flickr30k-images/*.jpg exist, and put dataset_flickr30k.json from {_KARPATHY} at "
                   "<data-root>/flickr30k/dataset_flickr30k.json")),
        KarpathyAdapter(**_image_text_fields(
            "flickr8k", splits, "Flickr8k images with Karpathy's split (test: 1,000 images x 5 captions)",
            folder="flickr8k", json_name="dataset_flickr8k.json",
            image_dirs=("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images"), origin=_KARPATHY,
            manual="Flickr8k's images come from a request form (or the Flickr8k_Dataset.zip mirrors), so they cannot "
                   "be downloaded for you: extract them so that <data-root>/flickr8k/Flicker8k_Dataset/*.jpg (or "
                   f"Images/*.jpg) exist, and put dataset_flickr8k.json from {_KARPATHY} at "
                   "<data-root>/flickr8k/dataset_flickr8k.json")),
        KarpathyAdapter(**_image_text_fields(
            "mscoco_captions", splits, "MSCOCO 2014 images with Karpathy's split (test: 5,000 images, ~25k captions)",
            folder="mscoco_captions", json_name="dataset_coco.json", image_dirs=(".",), origin=_KARPATHY,
            manual="download the COCO 2014 images from images.cocodataset.org/zips/train2014.zip and val2014.zip "
                   "(Karpathy's test and val images are all in val2014) and extract them so that "
                   "<data-root>/mscoco_captions/val2014/*.jpg and train2014/*.jpg exist, and put dataset_coco.json "
                   f"from {_KARPATHY} at <data-root>/mscoco_captions/dataset_coco.json")),
    ]


# ------------------------------------------------------------------------------ pairs:FILE


def _cell_captions(value, where: str) -> list[str]:
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


def _pick_column(columns: Sequence[str], candidates: Sequence[str], what: str, where: str) -> str:
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise DataError(f"{where} has no {what} column (columns: {', '.join(columns)}; expected one of "
                    f"{', '.join(candidates)})")


def _read_rows(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = []
            for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}:{lineno} is not a JSON object ({exc.msg})") from exc
                    if not isinstance(row, dict):
                        raise DataError(f"{path}:{lineno} is not a JSON object")
                    rows.append(row)
            return rows
        if suffix in (".csv", ".tsv"):
            with open(path, newline="", encoding="utf-8") as fh:
                return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text") from exc
    raise DataError(f"pairs:{path}: expected a .csv, .tsv or .jsonl file")


@dataclass
class PairsAdapter(ImageTextAdapter):
    """``pairs:FILE``: (image, caption) rows grouped by image; relative paths resolve against the file's folder."""

    path: Path = Path(".")
    groups: dict | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike, name: str | None = None) -> PairsAdapter:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"pairs file {file} does not exist (expected a .csv, .tsv or .jsonl of image, caption rows)")
        rows = _read_rows(file)
        if not rows:
            raise DataError(f"{file} has no rows (expected image, caption rows)")
        columns = list(rows[0])
        image_col = _pick_column(columns, IMAGE_COLUMNS, "image", str(file))
        caption_col = _pick_column(columns, CAPTION_COLUMNS, "caption", str(file))
        split_col = next((c for c in columns if c.lower() == "split"), None)
        groups: dict[str, dict[str, list[str]]] = {}
        for i, row in enumerate(rows):
            where = f"{file} row {i + 1}"
            image = row.get(image_col)
            if not isinstance(image, str) or not image.strip():
                raise DataError(f"{where}: empty image path")
            split = SPLIT_ALIASES.get(str(row.get(split_col, "test")).strip().lower(),
                                      str(row.get(split_col, "test")).strip()) if split_col else "test"
            image_path = str((file.parent / image.strip()).resolve()) if not os.path.isabs(image) else image
            groups.setdefault(split, {}).setdefault(image_path, []).extend(_cell_captions(row.get(caption_col), where))
        splits = tuple(s for s in ("train", "val", "test") if s in groups) + tuple(
            sorted(s for s in groups if s not in ("train", "val", "test")))
        return cls(**_image_text_fields(name or f"pairs:{file}", splits, f"image-caption pairs from {file}"),
                   path=file, groups=groups)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_file()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        group = self.groups[split]
        return ImageTextSplit(self.name, split, list(group), list(group.values()), root=self.path.parent)


# ------------------------------------------------------------------------------ captions:DIR


def caption_lines(text: str) -> list[str]:
    """One caption per non-empty line, stripped (``captions:DIR`` files, ``wds:`` ``.txt`` members)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _read_caption_file(path: Path) -> list[str]:
    try:
        return caption_lines(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"caption file {path} is not UTF-8 text") from exc


@dataclass
class CaptionFolderAdapter(ImageTextAdapter):
    """``captions:DIR``: ``x.jpg`` + ``x.txt`` (one caption per line), anywhere below ``DIR``; one ``test`` split."""

    path: Path = Path(".")

    @classmethod
    def from_path(cls, path: str | os.PathLike, name: str | None = None) -> CaptionFolderAdapter:
        root = Path(path).expanduser()
        if not root.is_dir():
            raise DataError(f"caption folder {root} does not exist (expected images with same-named .txt files)")
        return cls(**_image_text_fields(name or f"captions:{root}", ("test",), f"images with .txt captions in {root}"),
                   path=root)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_dir()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        paths, captions, uncaptioned = [], [], []
        for image in images_in(self.path):
            text = image.with_suffix(".txt")
            if not text.is_file():
                uncaptioned.append(image)
                continue
            paths.append(str(image))
            captions.append(_read_caption_file(text))
        if uncaptioned:
            raise DataError(f"captions:{self.path}: {uncaptioned[0]} has no {uncaptioned[0].with_suffix('.txt').name} "
                            f"beside it ({len(uncaptioned)} images without captions)")
        if not paths:
            raise DataError(f"captions:{self.path}: no images with same-named .txt caption files")
        return ImageTextSplit(self.name, split, paths, captions, root=self.path)


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


class HFImageTextSplit(_Captions, WrappedSplit):
    """Rows of a Hugging Face dataset: an image column plus a caption (or caption-list) column."""

    def __init__(self, dataset_name: str, split: str, dataset, image_column: str, captions: Sequence[Sequence[str]],
                 subset_spec: str = "") -> None:
        from clipbench.datasets.generic import hf_source

        super().__init__(dataset_name, split, _HFImages(dataset, image_column), np.arange(len(dataset)), _hf_image_row,
                         data_files=[f["filename"] for f in dataset.cache_files], source=hf_source(dataset))
        self.dataset, self.image_column = dataset, image_column
        self.captions = _checked_captions(captions, [f"row {i}" for i in range(len(dataset))], dataset_name, split)
        self.subset_spec = subset_spec

    @property
    def fingerprint(self) -> str:
        """Covers the dataset's own content fingerprint (``datasets`` keeps one per table) and the captions."""
        payload = json.dumps({"kind": KIND, "dataset": self.dataset_name, "split": self.split,
                              "subset": self.subset_spec, "n": len(self.captions),
                              "hf_fingerprint": getattr(self.dataset, "_fingerprint", None),
                              "captions_sha256": captions_digest(self.captions)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        idx = [int(i) for i in indices]
        return HFImageTextSplit(self.dataset_name, self.split, self.dataset.select(idx), self.image_column,
                                [self.captions[i] for i in idx],
                                f"{self.subset_spec}|{spec}" if self.subset_spec else spec)


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
        caption_col = _pick_column(columns, CAPTION_COLUMNS, "caption", f"hf:{spec}")
        split_names = {SPLIT_ALIASES.get(s.lower(), s): s for s in source}
        splits = tuple(s for s in ("train", "val", "test") if s in split_names) + tuple(
            s for s in split_names if s not in ("train", "val", "test"))
        return cls(**_image_text_fields(name or f"hf:{spec}", splits, f"Hugging Face image-caption dataset {spec}"),
                   spec=spec, image_column=image_column, caption_column=caption_col, split_names=split_names,
                   source=source)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.source is not None

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        dataset = self.source[self.split_names[split]]
        if len(dataset) == 0:
            raise DataError(f"{self.name}: split {split!r} is empty")
        captions = [_cell_captions(v, f"{self.name} {split} row {i}")
                    for i, v in enumerate(dataset[self.caption_column])]
        return HFImageTextSplit(self.name, split, dataset, self.image_column, captions)


#: ``get_dataset`` spec prefixes of image-text data the user points at
SPEC_BUILDERS: dict[str, Callable[..., DatasetAdapter]] = {
    "pairs": PairsAdapter.from_path,
    "captions": CaptionFolderAdapter.from_path,
}

__all__ = ["KIND", "SPEC_BUILDERS", "CaptionFolderAdapter", "HFCaptionAdapter", "HFImageTextSplit", "ImageTextAdapter",
           "ImageTextSplit", "KarpathyAdapter",
           "PairsAdapter", "caption_lines", "captions_digest", "file_manifest", "karpathy_adapters", "split_captions"]
