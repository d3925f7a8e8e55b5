"""The choices dataset kind: images, each with one correct caption and hard negatives (caption selection).

An item is (image, positive caption, negative captions, subset name, optional group id). A
``ChoicesSplit`` is a ``FileSplit`` whose "label" of item i is i, so the image feature store,
``--limit`` and sharding work unchanged; an image may appear in several items (SugarCrepe and the
shapes check pair one image with one negative per subset). Its fingerprint covers a manifest of
the image files (as ``image_text``: relative path, size, mtime or SHA-256) and the exact texts,
subsets and groups, so editing a caption or replacing an image gives a new cache key.

Groups (Winoground): items sharing a ``group`` id are the images of one example; each item's
negatives are the other items' positives (for 2 x 2: image 0 with caption 0 vs caption 1, image 1
with caption 1 vs caption 0). ``image_caption_selection`` then also scores text/image/group scores.

Adapters here:

* ``choices:FILE.jsonl``: one JSON object per line, ``{"image": path relative to the file,
  "positive": str, "negatives": [str, ...], "subset": optional str, "group": optional str}``;
* ``sugarcrepe``: SugarCrepe's 7 JSON files over COCO val2017 images (placed by hand);
* ``shapes_compositional``: hard negatives generated from the bundled shapes test split (offline).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.download import Archive
from clipbench.datasets.image_text import file_manifest
from clipbench.datasets.images import FileSplit
from clipbench.errors import DataError

KIND = "choices"
PRIMARY_METRIC = "accuracy"
DEFAULT_SUBSET = "all"


def _str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


class ChoicesSplit(FileSplit):
    """Items (image, positive, negatives, subset, group); labels are the item indices (0..N-1)."""

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike], positives: Sequence[str],
                 negatives: Sequence[Sequence[str]], subsets: Sequence[str] | None = None,
                 groups: Sequence[str | None] | None = None, root: str | os.PathLike | None = None,
                 content_hash: bool = False, subset_spec: str = "") -> None:
        super().__init__(dataset_name, split, paths, np.arange(len(paths), dtype=np.int64))
        n = len(self.paths)
        self.positives = [str(p) for p in positives]
        self.negatives = [[str(c) for c in negs] for negs in negatives]
        self.subsets = [str(s) for s in subsets] if subsets is not None else [DEFAULT_SUBSET] * n
        self.groups = [None if g is None else str(g) for g in groups] if groups is not None else [None] * n
        if not (len(self.positives) == len(self.negatives) == len(self.subsets) == len(self.groups) == n):
            raise ValueError("one positive, negative list, subset and group per image")
        empty = [p for p, negs in zip(self.paths, self.negatives, strict=True) if not negs]
        if empty:
            raise DataError(f"{dataset_name}/{split}: item of image {empty[0]} has no negative caption "
                            f"({len(empty)} such items; every item needs at least one)")
        self.root = os.fspath(root) if root is not None else None
        self.content_hash = content_hash
        self.subset_spec = subset_spec
        self._fingerprint: str | None = None

    def candidates(self, i: int) -> list[str]:
        """Item i's captions: the positive first, then its negatives."""
        return [self.positives[i], *self.negatives[i]]

    def texts_digest(self) -> str:
        payload = json.dumps([self.positives, self.negatives, self.subsets, self.groups], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            unique = list(dict.fromkeys(self.paths))
            payload = json.dumps({
                "kind": KIND, "dataset": self.dataset_name, "split": self.split, "subset": self.subset_spec,
                "n": len(self.paths), "paths": [os.path.relpath(p, self.root) if self.root else p for p in self.paths],
                "images_sha256": hashlib.sha256(json.dumps(file_manifest(unique, self.root, self.content_hash)
                                                           ).encode()).hexdigest(),
                "texts_sha256": self.texts_digest(),
            }, sort_keys=True)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:32]
        return self._fingerprint

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        idx = [int(i) for i in indices]
        return ChoicesSplit(self.dataset_name, self.split, [self.paths[i] for i in idx],
                            [self.positives[i] for i in idx], [self.negatives[i] for i in idx],
                            [self.subsets[i] for i in idx], [self.groups[i] for i in idx], self.root,
                            self.content_hash, f"{self.subset_spec}|{spec}" if self.subset_spec else spec)


def split_choices(split: SplitData) -> ChoicesSplit:
    if not isinstance(split, ChoicesSplit):
        raise DataError(f"{split.dataset_name}/{split.split} is not a choices split (it carries no candidate captions)")
    return split


@dataclass
class ChoicesAdapter(DatasetAdapter):
    """A choices dataset: no classnames or templates; one ``test`` split of items."""

    kind: ClassVar[str] = KIND
    origin: str = ""

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")


def _choices_fields(name: str, description: str, **extra) -> dict:
    return dict(name=name, classnames=[], templates=[], splits=("test",), primary_metric=PRIMARY_METRIC,
                description=description, **extra)


# ------------------------------------------------------------------------------ choices:FILE.jsonl


def read_choices_file(file: Path, name: str) -> ChoicesSplit:
    paths, positives, negatives, subsets, groups = [], [], [], [], []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{file} is not UTF-8 text") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} is not a JSON object ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{where} is not a JSON object")
        image, positive, negs = row.get("image"), row.get("positive"), row.get("negatives")
        if not isinstance(image, str) or not image.strip():
            raise DataError(f'{where}: "image" must be a non-empty path')
        if not isinstance(positive, str) or not positive.strip():
            raise DataError(f'{where}: "positive" must be a non-empty caption')
        if isinstance(negs, str):
            negs = [negs]
        if not _str_list(negs) or not negs:
            raise DataError(f'{where}: "negatives" must be a non-empty list of captions')
        subset, group = row.get("subset", DEFAULT_SUBSET), row.get("group")
        if not isinstance(subset, str) or not subset.strip():
            raise DataError(f'{where}: "subset" must be a non-empty string')
        paths.append(image if os.path.isabs(image) else str((file.parent / image).resolve()))
        positives.append(positive.strip())
        negatives.append([n.strip() for n in negs])
        subsets.append(subset.strip())
        groups.append(None if group is None else str(group))
    if not paths:
        raise DataError(f"{file} has no items (expected one JSON object per line: image, positive, negatives)")
    return ChoicesSplit(name, "test", paths, positives, negatives, subsets, groups, root=file.parent)


@dataclass
class ChoicesFileAdapter(ChoicesAdapter):
    """``choices:FILE.jsonl``: relative image paths resolve against the file's folder."""

    path: Path = Path(".")

    @classmethod
    def from_path(cls, path: str | os.PathLike, name: str | None = None) -> ChoicesFileAdapter:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"choices file {file} does not exist (expected a .jsonl of image, positive, negatives)")
        if file.suffix.lower() != ".jsonl":
            raise DataError(f"choices:{file}: expected a .jsonl file")
        return cls(**_choices_fields(name or f"choices:{file}", f"image-caption choices from {file}"), path=file)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_file()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        return read_choices_file(self.path, self.name)


# ------------------------------------------------------------------------------ SugarCrepe

SUGARCREPE_SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att")


@dataclass
class SugarCrepeAdapter(ChoicesAdapter):
    """SugarCrepe (Hsieh et al., 2023): ``<data-root>/sugarcrepe/<subset>.json`` + COCO val2017 images.

    Each JSON file maps an id to ``{"filename": "000000xxxxxx.jpg", "caption": positive,
    "negative_caption": negative}``; one item per entry, its subset the file's name.
    """

    folder: str = "sugarcrepe"
    image_dirs: tuple[str, ...] = ("val2017", "images")
    downloads: tuple[Archive, ...] = ()
    manual: str = ""

    def root(self, data_root: str | Path) -> Path:
        return Path(data_root).expanduser() / self.folder

    def _image_root(self, data_root: str | Path) -> Path | None:
        return next((self.root(data_root) / d for d in self.image_dirs if (self.root(data_root) / d).is_dir()), None)

    def is_present(self, data_root: str | Path) -> bool:
        try:
            base = self.root(data_root)
            return all((base / f"{s}.json").is_file() for s in SUGARCREPE_SUBSETS) and \
                self._image_root(data_root) is not None
        except OSError:
            return False

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        base = self.root(data_root)
        manual = self.manual.replace("<data-root>", str(data_root))
        image_root = self._image_root(data_root)
        if image_root is None:
            raise DataError(f"{self.name}: none of {', '.join(str(base / d) for d in self.image_dirs)} exists; {manual}")
        paths, positives, negatives, subsets = [], [], [], []
        for subset in SUGARCREPE_SUBSETS:
            file = base / f"{subset}.json"
            if not file.is_file():
                raise DataError(f"{self.name}: {file} not found; {manual}")
            try:
                entries = json.loads(file.read_text(encoding="utf-8"))
                rows = [(str(e["filename"]), str(e["caption"]), str(e["negative_caption"])) for e in entries.values()]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise DataError(f"{file} is not a SugarCrepe file ({type(exc).__name__}); expected "
                                '{"<id>": {"filename", "caption", "negative_caption"}}') from exc
            for filename, positive, negative in rows:
                paths.append(str(image_root / filename))
                positives.append(positive)
                negatives.append([negative])
                subsets.append(subset)
        return ChoicesSplit(self.name, split, paths, positives, negatives, subsets, root=base)


def sugarcrepe_adapter() -> SugarCrepeAdapter:
    return SugarCrepeAdapter(**_choices_fields(
        "sugarcrepe", "SugarCrepe: 7 hard-negative subsets (replace/swap/add obj/att/rel) over COCO val2017 images",
        origin="github.com/RAIVNLab/sugar-crepe (data/*.json)",
        manual="SugarCrepe is placed by hand: put the 7 JSON files of github.com/RAIVNLab/sugar-crepe/tree/main/data "
               f"({', '.join(s + '.json' for s in SUGARCREPE_SUBSETS)}) in <data-root>/sugarcrepe/, and extract "
               "COCO val2017 (images.cocodataset.org/zips/val2017.zip) so that <data-root>/sugarcrepe/val2017/"
               "000000xxxxxx.jpg exist"))


# ------------------------------------------------------------------------------ shapes_compositional


@dataclass
class ShapesCompositionalAdapter(ChoicesAdapter):
    """Hard negatives for every shapes test image (``clipbench.datasets.shapes.compositional_items``)."""

    def is_present(self, data_root: Path | None = None) -> bool:
        return True  # generated on first use

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        from clipbench.datasets.shapes import compositional_items, shapes_adapter

        self.check_split(split)
        base = shapes_adapter().load_split("test", data_root)
        items = compositional_items(base.captions)
        return ChoicesSplit(self.name, split, [base.paths[i] for i, *_ in items], [p for _, p, _, _ in items],
                            [[n] for *_, n, _ in items], [s for *_, s in items], root=base.root, content_hash=True)


def shapes_compositional_adapter() -> ShapesCompositionalAdapter:
    from clipbench.datasets.shapes import COMPOSITIONAL_SUBSETS, VERSION

    return ShapesCompositionalAdapter(**_choices_fields(
        "shapes_compositional",
        f"shapes test images with one generated hard negative per subset ({', '.join(COMPOSITIONAL_SUBSETS)})",
        origin=f"clipbench.datasets.shapes v{VERSION} test split"))


SPEC_BUILDERS = {"choices": ChoicesFileAdapter.from_path}

__all__ = ["KIND", "SPEC_BUILDERS", "SUGARCREPE_SUBSETS", "ChoicesAdapter", "ChoicesFileAdapter", "ChoicesSplit",
           "ShapesCompositionalAdapter", "SugarCrepeAdapter", "read_choices_file", "shapes_compositional_adapter",
           "split_choices", "sugarcrepe_adapter"]
