"""The compositional choices benchmarks: SugarCrepe, ARO's VG-Relation and VG-Attribution,
Winoground, and the offline shapes_compositional check (ARO's COCO/Flickr-Order: ``aro_order``).

* ``sugarcrepe``: SugarCrepe's 7 JSON files over COCO val2017 images (placed by hand);
* ``aro_vg_relation`` / ``aro_vg_attribution``: ARO's JSON files and VG images, each item a box crop;
* ``winoground``: a ``datasets.save_to_disk`` copy of the gated Hugging Face dataset (placed by hand);
  its data identity is the saved Arrow files;
* ``shapes_compositional``: hard negatives generated from the bundled shapes test split (offline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.datasets.choices import (
    DEFAULT_SUBSET,
    ChoicesAdapter,
    ChoicesSplit,
    ChoiceTexts,
    choices_fields,
)
from clipbench.datasets.images import WrappedSplit
from clipbench.datasets.local import DataFolder
from clipbench.foundations.errors import DataError

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
    return SugarCrepeAdapter(**choices_fields(
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
    return [AroVGAdapter(**choices_fields(name, description, origin="github.com/mertyg/vision-language-models-are-bows"),
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


class WinogroundSplit(ChoiceTexts, WrappedSplit):
    """Two items per Winoground example: image 0 with caption 0 (vs caption 1), image 1 with caption 1 (vs 0)."""

    def __init__(self, dataset_name: str, split: str, dataset, root: str, rows: Sequence[int] | None = None) -> None:
        self.rows = list(range(len(dataset))) if rows is None else [int(r) for r in rows]
        table = dataset if rows is None else dataset.select(self.rows)
        super().__init__(dataset_name, split, _WinoImages(table), np.arange(2 * len(table)), _wino_row, root=root,
                         data_files=[f["filename"] for f in getattr(dataset, "cache_files", [])] or None)
        self.dataset, self.table = dataset, table
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

    def subset(self, indices: Sequence[int], spec: str) -> SplitData:
        """Whole examples: every row that any chosen item belongs to (a group is never split)."""
        rows = sorted({self.rows[int(i) // 2] for i in indices})
        return self.derived(WinogroundSplit(self.dataset_name, self.split, self.dataset, self.root, rows), spec)


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
    return WinogroundAdapter(**choices_fields(
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
        out = ChoicesSplit(self.name, split, [base.paths[i] for i, *_ in items], [p for _, p, _, _ in items],
                           [[n] for *_, n, _ in items], [s for *_, s in items], root=base.root)
        out.verify_data = base.verify_data  # generated files: their bytes, whatever --verify-data says
        return out


def shapes_compositional_adapter() -> ShapesCompositionalAdapter:
    from clipbench.datasets.shapes import COMPOSITIONAL_SUBSETS, VERSION

    return ShapesCompositionalAdapter(**choices_fields(
        "shapes_compositional",
        f"shapes test images with one generated hard negative per subset ({', '.join(COMPOSITIONAL_SUBSETS)})",
        origin=f"clipbench.datasets.shapes v{VERSION} test split"))
