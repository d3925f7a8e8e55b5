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
* ``aro_vg_relation`` / ``aro_vg_attribution``: ARO's JSON files and VG images, each item a box crop;
* ``aro_coco_order`` / ``aro_flickr30k_order``: in ``clipbench.datasets.aro_order`` (generated negatives);
* ``winoground``: a ``datasets.save_to_disk`` copy of the gated Hugging Face dataset (placed by hand);
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
from clipbench.datasets.image_text import file_manifest
from clipbench.datasets.images import FileSplit, WrappedSplit, open_rgb
from clipbench.datasets.local import DataFolder
from clipbench.foundations.errors import DataError

KIND = "choices"
PRIMARY_METRIC = "accuracy"
DEFAULT_SUBSET = "all"


def _str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


class _ChoiceTexts:
    """What every choices split offers besides its images: each item's captions, subset and group."""

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

    def texts_digest(self) -> str:
        payload = json.dumps([self.positives, self.negatives, self.subsets, self.groups], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ChoicesSplit(_ChoiceTexts, FileSplit):
    """Items (image, positive, negatives, subset, group); labels are the item indices (0..N-1)."""

    def __init__(self, dataset_name: str, split: str, paths: Sequence[str | os.PathLike], positives: Sequence[str],
                 negatives: Sequence[Sequence[str]], subsets: Sequence[str] | None = None,
                 groups: Sequence[str | None] | None = None, root: str | os.PathLike | None = None,
                 content_hash: bool = False, subset_spec: str = "",
                 boxes: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__(dataset_name, split, paths, np.arange(len(paths), dtype=np.int64))
        self._set_texts(len(self.paths), self.paths, positives, negatives, subsets, groups)
        #: optional (left, top, right, bottom) crop of each item's image (ARO's VG regions)
        self.boxes = [tuple(float(v) for v in b) for b in boxes] if boxes is not None else None
        if self.boxes is not None and len(self.boxes) != len(self.paths):
            raise ValueError("one box per image")
        self.root = os.fspath(root) if root is not None else None
        self.content_hash = content_hash
        self.subset_spec = subset_spec
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            unique = list(dict.fromkeys(self.paths))
            payload = json.dumps({
                "kind": KIND, "dataset": self.dataset_name, "split": self.split, "subset": self.subset_spec,
                "n": len(self.paths), "paths": [os.path.relpath(p, self.root) if self.root else p for p in self.paths],
                "images_sha256": hashlib.sha256(json.dumps(file_manifest(unique, self.root, self.content_hash)
                                                           ).encode()).hexdigest(),
                "texts_sha256": self.texts_digest(), "boxes": self.boxes,
            }, sort_keys=True)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:32]
        return self._fingerprint

    def torch_dataset(self, transform):
        if self.boxes is None:
            return super().torch_dataset(transform)
        return _CroppedDataset(self.paths, self.boxes, transform)

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Items at ``indices``, plus the other members of any group they belong to (a group is never split)."""
        chosen = {int(i) for i in indices}
        groups = {self.groups[i] for i in chosen} - {None}
        idx = [i for i in range(len(self.paths)) if i in chosen or (self.groups[i] is not None and self.groups[i] in groups)]
        return ChoicesSplit(self.dataset_name, self.split, [self.paths[i] for i in idx],
                            [self.positives[i] for i in idx], [self.negatives[i] for i in idx],
                            [self.subsets[i] for i in idx], [self.groups[i] for i in idx], self.root,
                            self.content_hash, f"{self.subset_spec}|{spec}" if self.subset_spec else spec,
                            [self.boxes[i] for i in idx] if self.boxes is not None else None)


class _CroppedDataset:
    """Item i = (the ``boxes[i]`` region of image i, transformed, i): a map-style dataset for DataLoader."""

    def __init__(self, paths: Sequence[str], boxes: Sequence[tuple], transform) -> None:
        self.paths, self.boxes, self.transform = paths, boxes, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.transform(open_rgb(self.paths[index]).crop(self.boxes[index])), int(index)


def split_choices(split: SplitData) -> _ChoiceTexts:
    if not isinstance(split, _ChoiceTexts):
        raise DataError(f"{split.dataset_name}/{split.split} is not a choices split (it carries no candidate captions)")
    return split


@dataclass
class ChoicesAdapter(DatasetAdapter):
    """A choices dataset: no classnames or templates; one ``test`` split of items."""

    kind: ClassVar[str] = KIND
    origin: str = ""



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
class SugarCrepeAdapter(DataFolder, ChoicesAdapter):
    """SugarCrepe (Hsieh et al., 2023): ``<data-root>/sugarcrepe/<subset>.json`` + COCO val2017 images.

    Each JSON file maps an id to ``{"filename": "000000xxxxxx.jpg", "caption": positive,
    "negative_caption": negative}``; one item per entry, its subset the file's name.
    """

    folder: str = "sugarcrepe"
    image_dirs: tuple[str, ...] = ("val2017", "images")

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
        manual = self.manual_for(data_root)
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


# ------------------------------------------------------------------------------ ARO (VG-Relation, VG-Attribution)


@dataclass
class AroVGAdapter(DataFolder, ChoicesAdapter):
    """ARO's VG-Relation or VG-Attribution (Yuksekgonul et al., 2023): ``<data-root>/aro/<json_name>`` + images/.

    The JSON is a list of ``{"image_path", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption",
    "false_caption", ...}``; each item is the box's region of the image (as ARO crops it), the true
    caption against the false one (the relation's or attributes' order swapped).
    """

    folder: str = "aro"
    json_name: str = ""
    subset_name: str = ""

    def is_present(self, data_root: str | Path) -> bool:
        base = self.root(data_root)
        return (base / self.json_name).is_file() and (base / "images").is_dir()

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        base = self.root(data_root)
        if not self.is_present(data_root):
            raise DataError(f"{self.name}: {base / self.json_name} or {base / 'images'} not found; "
                            f"{self.manual_for(data_root)}")
        file = base / self.json_name
        try:
            entries = json.loads(file.read_text(encoding="utf-8"))
            rows = [(str(e["image_path"]), float(e["bbox_x"]), float(e["bbox_y"]), float(e["bbox_w"]),
                     float(e["bbox_h"]), str(e["true_caption"]), str(e["false_caption"])) for e in entries]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{file} is not an ARO file ({type(exc).__name__}); expected a list of "
                            '{"image_path", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption", '
                            '"false_caption"}') from exc
        if not rows:
            raise DataError(f"{file} lists no items")
        return ChoicesSplit(self.name, split, [str(base / "images" / r[0]) for r in rows], [r[5] for r in rows],
                            [[r[6]] for r in rows], [self.subset_name] * len(rows), root=base,
                            boxes=[(x, y, x + w, y + h) for _, x, y, w, h, _, _ in rows])


def aro_adapters() -> list[AroVGAdapter]:
    manual = ("ARO is placed by hand (github.com/mertyg/vision-language-models-are-bows, dataset_zoo/aro_datasets.py "
              "names the Google Drive files): put visual_genome_relation.json and visual_genome_attribution.json in "
              "<data-root>/aro/ and extract vgr_vga_images.zip so that <data-root>/aro/images/*.jpg exist")
    return [AroVGAdapter(**_choices_fields(name, description, origin="github.com/mertyg/vision-language-models-are-bows"),
                         json_name=json_name, subset_name=subset, manual=manual)
            for name, json_name, subset, description in (
                ("aro_vg_relation", "visual_genome_relation.json", "vg_relation",
                 "ARO VG-Relation: a Visual Genome region, its relation caption vs the objects swapped"),
                ("aro_vg_attribution", "visual_genome_attribution.json", "vg_attribution",
                 "ARO VG-Attribution: a Visual Genome region, its attributes caption vs the attributes swapped"))]


# ------------------------------------------------------------------------------ Winoground


class _WinoImages:
    """Item k = (image ``k % 2`` of row ``k // 2``, k) of the Winoground table (picklable into workers)."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return 2 * len(self.dataset)

    def __getitem__(self, k: int):
        return self.dataset[int(k) // 2][f"image_{int(k) % 2}"], int(k)


def _wino_row(inner: _WinoImages, k: int) -> str:
    return f"row {k // 2} (column 'image_{k % 2}') of the Winoground dataset"


class WinogroundSplit(_ChoiceTexts, WrappedSplit):
    """Two items per Winoground example: image 0 with caption 0 (vs caption 1), image 1 with caption 1 (vs 0)."""

    def __init__(self, dataset_name: str, split: str, dataset, root: str, subset_spec: str = "",
                 rows: Sequence[int] | None = None) -> None:
        self.rows = list(range(len(dataset))) if rows is None else [int(r) for r in rows]
        table = dataset if rows is None else dataset.select(self.rows)
        super().__init__(dataset_name, split, _WinoImages(table), np.arange(2 * len(table)), _wino_row, root=root,
                         data_files=[f["filename"] for f in getattr(dataset, "cache_files", [])] or None)
        self.dataset, self.table, self.subset_spec = dataset, table, subset_spec
        try:
            cols = {c: table[c] for c in ("caption_0", "caption_1")}
        except KeyError as exc:
            raise DataError(f"{dataset_name}: the dataset has no column {exc} (expected Winoground's image_0, "
                            "image_1, caption_0, caption_1)") from exc
        ids = table["id"] if "id" in table.column_names else self.rows
        tags = table["collapsed_tag"] if "collapsed_tag" in table.column_names else [DEFAULT_SUBSET] * len(table)
        positives, negatives, subsets, groups = [], [], [], []
        for c0, c1, gid, tag in zip(cols["caption_0"], cols["caption_1"], ids, tags, strict=True):
            positives += [c0, c1]
            negatives += [[c1], [c0]]
            subsets += [str(tag or DEFAULT_SUBSET)] * 2
            groups += [str(gid)] * 2
        self._set_texts(2 * len(table), [f"row {r}" for r in self.rows for _ in range(2)], positives, negatives,
                        subsets, groups)

    @property
    def fingerprint(self) -> str:
        files = [str(f) for f in (self.data_files or [])]
        payload = json.dumps({"kind": KIND, "dataset": self.dataset_name, "split": self.split,
                              "subset": self.subset_spec, "n": len(self.positives),
                              "files_sha256": hashlib.sha256(json.dumps(file_manifest(files, self.root)).encode()
                                                             ).hexdigest(),
                              "texts_sha256": self.texts_digest()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Whole examples: every row that any chosen item belongs to (a group is never split)."""
        rows = sorted({self.rows[int(i) // 2] for i in indices})
        return WinogroundSplit(self.dataset_name, self.split, self.dataset, self.root,
                               f"{self.subset_spec}|{spec}" if self.subset_spec else spec, rows)


@dataclass
class WinogroundAdapter(DataFolder, ChoicesAdapter):
    """Winoground (Thrush et al., 2022), a ``datasets.save_to_disk`` copy at ``<data-root>/winoground/``."""

    folder: str = "winoground"

    def is_present(self, data_root: str | Path) -> bool:
        base = self.root(data_root)
        return (base / "dataset_info.json").is_file() or (base / "dataset_dict.json").is_file()

    def load_split(self, split: str, data_root: Path) -> SplitData:
        self.check_split(split)
        base = self.root(data_root)
        if not self.is_present(data_root):
            raise DataError(f"{self.name}: no saved dataset at {base}; "
                            f"{self.manual_for(data_root)}")
        import datasets

        try:
            table = datasets.load_from_disk(str(base))
        except (OSError, ValueError, FileNotFoundError) as exc:
            raise DataError(f"{self.name}: {base} is not a datasets.save_to_disk folder ({exc})") from exc
        if isinstance(table, datasets.DatasetDict):
            if "test" not in table:
                raise DataError(f"{self.name}: {base} holds splits {', '.join(table)}; expected 'test'")
            table = table["test"]
        return WinogroundSplit(self.name, split, table, str(base))


def winoground_adapter() -> WinogroundAdapter:
    return WinogroundAdapter(**_choices_fields(
        "winoground", "Winoground: 400 examples x 2 images x 2 captions (text, image and group scores)",
        origin="huggingface.co/datasets/facebook/winoground (gated)",
        manual="Winoground is gated on Hugging Face: accept its terms at huggingface.co/datasets/facebook/winoground, "
               "then run python -c \"import datasets; datasets.load_dataset('facebook/winoground', split='test', "
               "token=True).save_to_disk('<data-root>/winoground')\" (after huggingface-cli login)"))


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
           "AroVGAdapter", "ShapesCompositionalAdapter", "aro_adapters", "SugarCrepeAdapter", "read_choices_file", "shapes_compositional_adapter",
           "split_choices", "sugarcrepe_adapter", "winoground_adapter"]
