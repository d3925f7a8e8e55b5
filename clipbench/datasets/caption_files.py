"""Image-text sets in files the user points at: ``pairs:FILE`` and ``captions:DIR``.

* ``pairs:FILE.csv|.tsv|.jsonl``: one row per (image, caption) with an image column and a caption
  column; rows with the same image are grouped in first-appearance order; a caption cell may hold a
  list (a JSON list in jsonl, or a JSON-encoded list in csv/tsv); an optional ``split`` column.
* ``captions:DIR``: image files with same-named ``.txt`` files beside them, one caption per line.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.image_text import (
    CAPTION_COLUMNS,
    SPLIT_ALIASES,
    ImageTextAdapter,
    ImageTextSplit,
    caption_lines,
    cell_captions,
    image_text_fields,
)
from clipbench.datasets.images import images_in
from clipbench.datasets.user_data import comma_hint, ordered_splits, pick_column, read_csv
from clipbench.foundations.errors import DataError

IMAGE_COLUMNS = ("image", "image_path", "filepath", "file_name", "filename", "file", "path", "img")


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
            return read_csv(path, "\t" if suffix == ".tsv" else ",")[1]
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
            raise DataError(f"pairs file {file} does not exist (expected a .csv, .tsv or .jsonl of image, caption rows){comma_hint(file)}")
        rows = _read_rows(file)
        if not rows:
            raise DataError(f"{file} has no rows (expected image, caption rows)")
        columns = list(rows[0])
        image_col = pick_column(columns, None, IMAGE_COLUMNS, "image", file)
        caption_col = pick_column(columns, None, CAPTION_COLUMNS, "caption", file)
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
            groups.setdefault(split, {}).setdefault(image_path, []).extend(cell_captions(row.get(caption_col), where))
        splits = ordered_splits(sorted(groups))
        return cls(**image_text_fields(name or f"pairs:{file}", splits, f"image-caption pairs from {file}"),
                   path=file, groups=groups)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_file()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        group = self.groups[split]
        return ImageTextSplit(self.name, split, list(group), list(group.values()), root=self.path.parent)


# ------------------------------------------------------------------------------ captions:DIR


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
            raise DataError(f"caption folder {root} does not exist (expected images with same-named .txt files){comma_hint(root)}")
        return cls(**image_text_fields(name or f"captions:{root}", ("test",), f"images with .txt captions in {root}"),
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
